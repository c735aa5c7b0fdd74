"""Batches: creation with all their calls in one transaction, reads, and cancel."""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.ids import now_ms
from dialbatch.domain.states import RUNNING_BATCH_STATES, BatchState, CallState
from dialbatch.store import counters, outbox
from dialbatch.store._dialect import CallRow, bulk_insert_calls, now_ms_sql
from dialbatch.store._prepared import Prepared, run
from dialbatch.store.engine import Database
from dialbatch.store.notify import notify
from dialbatch.store.tables import batches, calls, workspace_limiter

CANCEL_CHUNK = 5000


@dataclass(frozen=True)
class Batch:
    id: str
    workspace_id: str
    agent_id: str
    status: str
    total_calls: int
    scheduled_at: int
    callback_policy: dict[str, Any]
    source_name: str | None
    created_at: int
    started_at: int | None
    completed_at: int | None
    cancelled_at: int | None
    error: str | None
    last_claimed_at: int
    paused_at: int | None = None  # extension: paused (store/pauses.py)
    parent_batch_id: str | None = None  # extension: the batch this one retries
    failure_stop: dict[str, Any] | None = None  # extension: its own failureStop rule
    pause_reason: str | None = None  # extension: why it paused itself
    resumed_at: int | None = None  # extension: when it was last resumed
    calling_window: dict[str, Any] | None = None  # extension: domain/windows.py's JSON
    retry_policy: dict[str, Any] | None = None  # extension: domain/retry_policy.py's JSON
    require_consent: bool = False  # extension: rows without consent were refused
    compliance_profile: str = "none"  # extension: the profile it was created under
    max_concurrency: int | None = None  # extension: its own cap on live calls
    priority: int = 0  # extension: higher is served first in its workspace


async def insert_batch(
    conn: AsyncConnection,
    *,
    batch_id: str,
    workspace_id: str,
    agent_id: str,
    scheduled_at: int | None,
    callback_policy: dict[str, Any],
    source_name: str | None,
    rows: AsyncIterable[Sequence[CallRow]],
    parent_batch_id: str | None = None,
    failure_stop: dict[str, Any] | None = None,
    calling_window: dict[str, Any] | None = None,
    retry_policy: dict[str, Any] | None = None,
    require_consent: bool = False,
    compliance_profile: str = "none",
    max_concurrency: int | None = None,
    priority: int = 0,
) -> int:
    """Insert the batch and its calls (chunks of (seq, e164, metadata_json), with the row's
    timezone and consent as a fourth item when it has them) in `conn`'s transaction; the
    caller commits or rolls back the whole. Returns the number of calls."""
    now = now_ms()
    due = scheduled_at if scheduled_at is not None else now
    await conn.execute(
        batches.insert().values(
            id=batch_id,
            workspace_id=workspace_id,
            agent_id=agent_id,
            status=BatchState.QUEUED.value,
            total_calls=0,
            scheduled_at=due,
            callback_policy=callback_policy,
            source_name=source_name,
            created_at=now,
            parent_batch_id=parent_batch_id,
            failure_stop=failure_stop,
            calling_window=calling_window,
            retry_policy=retry_policy,
            require_consent=require_consent,
            compliance_profile=compliance_profile,
            max_concurrency=max_concurrency,
            priority=priority,
        )
    )
    total = 0
    async for chunk in rows:
        await bulk_insert_calls(conn, batch_id, workspace_id, due, chunk)
        total += len(chunk)
    await conn.execute(batches.update().where(batches.c.id == batch_id).values(total_calls=total))
    await counters.move(conn, batch_id, {CallState.WAITING: total})
    await outbox.emit(
        conn,
        workspace_id,
        "batch.created",
        {"batchId": batch_id, "status": BatchState.QUEUED.value, "totalCalls": total},
    )
    await notify(conn, batch_id)
    return total


async def get_batch(conn: AsyncConnection, workspace_id: str, batch_id: str) -> Batch | None:
    """The batch, or None when it does not exist *or belongs to another workspace*."""
    row = (
        await conn.execute(
            sa.select(batches).where(
                batches.c.id == batch_id, batches.c.workspace_id == workspace_id
            )
        )
    ).first()
    return Batch(**row._mapping) if row else None


async def list_batches(
    conn: AsyncConnection, workspace_id: str, *, limit: int = 50, offset: int = 0
) -> list[Batch]:
    rows = await conn.execute(
        sa.select(batches)
        .where(batches.c.workspace_id == workspace_id)
        .order_by(batches.c.created_at.desc(), batches.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [Batch(**r._mapping) for r in rows]


async def count_batches(conn: AsyncConnection, workspace_id: str) -> int:
    n = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(batches)
        .where(batches.c.workspace_id == workspace_id)
    )
    return int(n or 0)


class BatchAlreadyFinished(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


async def set_limits(
    db: Database, workspace_id: str, batch_id: str, changes: dict[str, int | None]
) -> Batch | None:
    """Change a running (or paused) batch's `max_concurrency` and/or `priority`; the next
    claim applies them. None when there is no such batch in the workspace;
    BatchAlreadyFinished when it no longer runs."""
    b = batches.c
    async with db.write() as conn:
        row = (
            await conn.execute(
                batches.update()
                .where(
                    b.id == batch_id,
                    b.workspace_id == workspace_id,
                    b.status.in_(RUNNING_BATCH_STATES),
                )
                .values(**changes)
                .returning(*batches.c)
            )
        ).first()
        if row is not None:
            return Batch(**row._mapping)
        found = await get_batch(conn, workspace_id, batch_id)
    if found is None:
        return None
    raise BatchAlreadyFinished(found.status)


async def cancel_batch(db: Database, workspace_id: str, batch_id: str) -> Batch | None:
    """Stop the batch: no new dial from now on, waiting calls cancelled in chunks.

    The status flip commits first, so a claim racing the cancel is refused at its intent
    step; then waiting (and claimed, never-dialed) calls move to `cancelled` in chunks, each
    chunk adjusting counters and releasing the concurrency slots of claimed ones.
    Active calls run to their end. Cancelling an already cancelled batch is a no-op.
    """
    async with db.write() as conn:
        batch = await get_batch(conn, workspace_id, batch_id)
        if batch is None:
            return None
        if batch.status in (BatchState.COMPLETED, BatchState.FAILED):
            raise BatchAlreadyFinished(batch.status)
        if batch.status != BatchState.CANCELLED:
            await conn.execute(
                batches.update()
                .where(batches.c.id == batch_id)
                .values(status=BatchState.CANCELLED.value, cancelled_at=now_ms_sql(conn))
            )
            await outbox.emit(
                conn, workspace_id, "batch.cancelled", {"batchId": batch_id, "status": "cancelled"}
            )
            await notify(conn, batch_id)
    for state in (CallState.CLAIMED, CallState.WAITING):
        while True:
            async with db.write() as conn:
                moved = await _cancel_chunk(conn, workspace_id, batch_id, state)
                await mark_done_if_drained(conn, batch_id)
            if moved < CANCEL_CHUNK:
                break
    async with db.read() as conn:
        return await get_batch(conn, workspace_id, batch_id)


async def _cancel_chunk(
    conn: AsyncConnection, workspace_id: str, batch_id: str, state: CallState
) -> int:
    """Cancel up to CANCEL_CHUNK calls of `batch_id` that are in `state`.

    Claimed calls were never dialed (their intent step will now find them cancelled), so
    they are cancelled too and give their concurrency slot back.
    """
    c = calls.c
    ids = sa.select(c.id).where(c.batch_id == batch_id, c.status == state.value)
    if state is not CallState.WAITING:
        ids = ids.where(sa.text("calls.status <> 'waiting'"))  # lets SQLite use the partial index
    result = await conn.execute(
        calls.update()
        .where(c.id.in_(ids.limit(CANCEL_CHUNK).scalar_subquery()), c.status == state.value)
        .values(
            status=CallState.CANCELLED.value,
            ended_at=now_ms_sql(conn),
            lease_owner=None,
            lease_expires=None,
        )
    )
    moved = int(result.rowcount or 0)
    if moved:
        if state is CallState.CLAIMED:
            await release_slots(conn, workspace_id, moved)
        await counters.move(conn, batch_id, {state: -moved, CallState.CANCELLED: moved})
    return moved


async def release_slots(conn: AsyncConnection, workspace_id: str, n: int) -> None:
    await run(conn, _RELEASE, {"_ws": workspace_id, "_n": n})


def _build_release(conn: AsyncConnection) -> Any:
    lim = workspace_limiter.c
    n = sa.bindparam("_n", type_=sa.Integer)
    return (
        workspace_limiter.update()
        .where(lim.workspace_id == sa.bindparam("_ws"))
        .values(active=sa.case((lim.active >= n, lim.active - n), else_=0))
    )


_RELEASE = Prepared("release_slots", _build_release)


async def mark_done_if_drained(conn: AsyncConnection, batch_id: str) -> bool:
    """Close the batch when no call of it can run any more. Safe to call repeatedly."""
    if await counters.open_calls(conn, batch_id):
        return False
    b = batches.c
    row = (
        await conn.execute(
            batches.update()
            .where(b.id == batch_id, b.completed_at.is_(None))
            .values(
                status=sa.case(
                    (
                        b.status.in_(RUNNING_BATCH_STATES),
                        BatchState.COMPLETED.value,
                    ),
                    else_=b.status,
                ),
                completed_at=now_ms_sql(conn),
            )
            .returning(b.workspace_id, b.status)
        )
    ).first()
    if row is not None and row.status == BatchState.COMPLETED:
        # A cancelled batch reported `batch.cancelled` when it was cancelled.
        await outbox.emit(
            conn, row.workspace_id, "batch.completed", {"batchId": batch_id, "status": row.status}
        )
    return row is not None
