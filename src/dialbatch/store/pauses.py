"""Pausing and resuming a batch, or every batch of a workspace (an emergency stop).

A pause is a timestamp beside the batch's status (`batches.paused_at`, or
`workspaces.paused_at` for all of them), never a status of its own: the status a batch had
(queued, processing) comes back untouched on resume, and a paused batch is simply one that
the claim skips and the intent step refuses (store/queue.py, DESIGN.md §4 invariants 3 and
5). Calls already dialing run to their end; a claimed call of a paused batch goes back to
`waiting` at its intent step; retries that fall due meanwhile wait, because nothing of the
batch is claimed. Each change writes its outbox event in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.states import RUNNING_BATCH_STATES
from dialbatch.store import outbox
from dialbatch.store._dialect import now_ms_sql
from dialbatch.store.batches import Batch, get_batch
from dialbatch.store.engine import Database
from dialbatch.store.notify import notify
from dialbatch.store.tables import batches, workspaces


class BatchNotRunning(Exception):
    """The batch finished or was cancelled: there is nothing to pause or resume."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def may_dial() -> sa.ColumnElement[bool]:
    """SQL: neither the batch (the `batches` row in scope) nor its workspace is paused.
    The claim and the intent step both filter on it."""
    w = workspaces.c
    return sa.and_(
        batches.c.paused_at.is_(None),
        ~sa.exists().where(w.id == batches.c.workspace_id, w.paused_at.is_not(None)),
    )


def is_paused() -> sa.ColumnElement[bool]:
    """SQL: the batch in scope or its workspace is paused."""
    return sa.not_(may_dial())


@dataclass(frozen=True)
class PauseResult:
    batch: Batch
    changed: bool  # False: it already was in the state asked for (the request is idempotent)


async def pause_batch(db: Database, workspace_id: str, batch_id: str) -> PauseResult | None:
    """Pause the batch; None if it is not the workspace's. Raises BatchNotRunning for a
    finished or cancelled batch. Pausing a paused batch changes nothing."""
    return await _set_batch_pause(db, workspace_id, batch_id, paused=True)


async def resume_batch(db: Database, workspace_id: str, batch_id: str) -> PauseResult | None:
    """Resume the batch; None if it is not the workspace's. Raises BatchNotRunning for a
    finished or cancelled batch. Resuming a batch that is not paused changes nothing."""
    return await _set_batch_pause(db, workspace_id, batch_id, paused=False)


async def _set_batch_pause(
    db: Database, workspace_id: str, batch_id: str, *, paused: bool
) -> PauseResult | None:
    b = batches.c
    async with db.write() as conn:
        batch = await get_batch(conn, workspace_id, batch_id)
        if batch is None:
            return None
        if batch.status not in RUNNING_BATCH_STATES:
            raise BatchNotRunning(batch.status)
        changed = (batch.paused_at is None) == paused
        if changed:
            row = (
                await conn.execute(
                    batches.update()
                    .where(
                        b.id == batch_id,
                        b.status.in_(RUNNING_BATCH_STATES),
                        b.paused_at.is_(None) if paused else b.paused_at.is_not(None),
                    )
                    .values(
                        paused_at=now_ms_sql(conn) if paused else None,
                        pause_reason=None,  # a pause by hand says no more than that
                        **({} if paused else {"resumed_at": now_ms_sql(conn)}),
                    )
                    .returning(b.status)
                )
            ).first()
            if row is None:  # it finished (or changed) since it was read: read it again
                batch = await get_batch(conn, workspace_id, batch_id)
                assert batch is not None
                if batch.status not in RUNNING_BATCH_STATES:
                    raise BatchNotRunning(batch.status)
                changed = False
            else:
                event = "batch.paused" if paused else "batch.resumed"
                await outbox.emit(conn, workspace_id, event, {"batchId": batch_id})
                if not paused:
                    await notify(conn, batch_id)  # workers wake and claim at once
                batch = await get_batch(conn, workspace_id, batch_id)
                assert batch is not None
    return PauseResult(batch, changed)


async def auto_pause(conn: AsyncConnection, workspace_id: str, batch_id: str, reason: str) -> bool:
    """Pause a running batch by itself (the automatic stop on failure spikes), with the
    reason shown on it, in `conn`'s transaction; False if it was paused or ended already.
    Resuming is by hand, as after any pause."""
    b = batches.c
    row = (
        await conn.execute(
            batches.update()
            .where(
                b.id == batch_id,
                b.workspace_id == workspace_id,
                b.status.in_(RUNNING_BATCH_STATES),
                b.paused_at.is_(None),
            )
            .values(paused_at=now_ms_sql(conn), pause_reason=reason)
            .returning(b.id)
        )
    ).first()
    if row is None:
        return False
    await outbox.emit(
        conn,
        workspace_id,
        "batch.paused",
        {"batchId": batch_id, "automatic": True, "reason": reason},
    )
    return True


async def workspace_paused_at(conn: AsyncConnection, workspace_id: str) -> int | None:
    """When the workspace was paused, or None when it is not."""
    value = await conn.scalar(
        sa.select(workspaces.c.paused_at).where(workspaces.c.id == workspace_id)
    )
    return None if value is None else int(value)


async def set_workspace_pause(
    conn: AsyncConnection, workspace_id: str, *, paused: bool
) -> tuple[int | None, bool]:
    """Pause (or resume) every batch of the workspace, in `conn`'s transaction. Returns
    (paused_at now, whether anything changed); repeating a request changes nothing."""
    w = workspaces.c
    row = (
        await conn.execute(
            workspaces.update()
            .where(
                w.id == workspace_id, w.paused_at.is_(None) if paused else w.paused_at.is_not(None)
            )
            .values(paused_at=now_ms_sql(conn) if paused else None)
            .returning(w.paused_at)
        )
    ).first()
    if row is None:
        return await workspace_paused_at(conn, workspace_id), False
    event = "workspace.paused" if paused else "workspace.resumed"
    await outbox.emit(conn, workspace_id, event, {"workspaceId": workspace_id})
    if not paused:
        await notify(conn, workspace_id)
    return (None if row.paused_at is None else int(row.paused_at)), True
