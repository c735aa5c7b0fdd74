"""A new batch of a batch's failed calls: the same numbers and row variables, the same agent
and settings, linked both ways (`batches.parent_batch_id`).

Each new call is built from what was uploaded (its E.164 number and the metadata written
once at ingest), never from the old call's status, error or result. Rows are read in `seq`
chunks inside the transaction that inserts them, so a 1M-call parent is never held at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.states import CallState
from dialbatch.store._dialect import CallRow
from dialbatch.store.batches import Batch, insert_batch
from dialbatch.store.tables import attempts, batches, calls

CHUNK = 10_000


@dataclass(frozen=True)
class FailedFilter:
    """Which failed calls to retry: by the outcome of their last dial (any of `outcomes`)
    and/or by a piece of their error text (case-insensitive). Empty: every failed call."""

    outcomes: tuple[str, ...] = ()
    error_contains: str | None = None


def _failed(parent: Batch, wanted: FailedFilter) -> sa.Select[tuple[int, str, str]]:
    c = calls.c
    query = sa.select(
        c.seq, c.phone_number, c.metadata, c.timezone, c.consent_basis, c.consent_at
    ).where(
        c.batch_id == parent.id,
        c.status == CallState.FAILED.value,
        # Through ix_calls_batch_status_seq, whose predicate this repeats.
        sa.text("calls.status <> 'waiting'"),
    )
    if wanted.outcomes:
        a = attempts.c
        query = query.where(
            sa.exists().where(a.call_id == c.id, a.n == c.attempt, a.outcome.in_(wanted.outcomes))
        )
    if wanted.error_contains:
        needle = wanted.error_contains.lower()
        query = query.where(sa.func.lower(c.error).contains(needle, autoescape=True))
    return query


async def count_failed(conn: AsyncConnection, parent: Batch, wanted: FailedFilter) -> int:
    """How many calls the filter selects now."""
    n = await conn.scalar(
        sa.select(sa.func.count()).select_from(_failed(parent, wanted).subquery())
    )
    return int(n or 0)


async def create_retry_batch(
    conn: AsyncConnection,
    parent: Batch,
    wanted: FailedFilter,
    *,
    batch_id: str,
) -> int:
    """Insert the retry batch in `conn`'s transaction; returns its number of calls (0: the
    caller should roll back, there was nothing to retry)."""

    async def rows() -> AsyncIterator[list[CallRow]]:
        after, seq = -1, 0
        while True:
            chunk = (
                await conn.execute(
                    _failed(parent, wanted)
                    .where(calls.c.seq > after)
                    .order_by(calls.c.seq)
                    .limit(CHUNK)
                )
            ).all()
            if not chunk:
                return
            after = chunk[-1].seq
            # The retry keeps each call's own zone and consent record.
            yield [
                (seq + i, r.phone_number, r.metadata, (r.timezone, r.consent_basis, r.consent_at))
                for i, r in enumerate(chunk)
            ]
            seq += len(chunk)

    return await insert_batch(
        conn,
        batch_id=batch_id,
        workspace_id=parent.workspace_id,
        agent_id=parent.agent_id,
        scheduled_at=None,
        callback_policy=parent.callback_policy,
        source_name=f"retry of {parent.id}"[:255],
        rows=rows(),
        parent_batch_id=parent.id,
        failure_stop=parent.failure_stop,
        calling_window=parent.calling_window,  # the same hours as the calls it retries
        retry_policy=parent.retry_policy,  # and the same retry rules
        require_consent=parent.require_consent,
        compliance_profile=parent.compliance_profile,  # and the same rule packs
        max_concurrency=parent.max_concurrency,  # and the same share of the workspace
        priority=parent.priority,
    )


async def retry_batch_ids(conn: AsyncConnection, workspace_id: str, batch_id: str) -> list[str]:
    """The batches made from this one's failed calls, oldest first."""
    b = batches.c
    rows = await conn.execute(
        sa.select(b.id)
        .where(b.parent_batch_id == batch_id, b.workspace_id == workspace_id)
        .order_by(b.created_at, b.id)
    )
    return [r[0] for r in rows]
