"""Reading calls: pages, one call, the recently finished ones.

An unfiltered page is a `seq` range (seq is dense 0..n-1 in CSV order), so page 50,000
costs what page 1 does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.states import CallState
from dialbatch.store import _dialect
from dialbatch.store.tables import calls

_COLUMNS = (
    calls.c.id,
    calls.c.batch_id,
    calls.c.seq,
    calls.c.phone_number,
    calls.c.metadata,
    calls.c.status,
    calls.c.attempt,
    calls.c.started_at,
    calls.c.ended_at,
    calls.c.duration_s,
    calls.c.error,
    calls.c.result,
    calls.c.provider_call_id,
)


@dataclass(frozen=True)
class CallRow:
    id: int
    batch_id: str
    seq: int
    phone_number: str
    metadata: str
    status: str
    attempt: int
    started_at: int | None
    ended_at: int | None
    duration_s: float | None
    error: str | None
    result: dict[str, Any] | None
    provider_call_id: str | None
    gate_decision: dict[str, Any] | None = None  # read by `get` only: one call's detail
    timezone: str | None = None  # read by `get` only
    consent_basis: str | None = None  # read by `get` only
    consent_at: int | None = None  # read by `get` only


async def page(
    conn: AsyncConnection,
    batch_id: str,
    *,
    states: tuple[CallState, ...] | None,
    offset: int,
    limit: int,
) -> list[CallRow]:
    """A page of the batch's calls; `states` None means all, in CSV order.

    Calls that left `waiting` are listed in CSV order through the partial index
    ix_calls_batch_status_seq. Waiting calls are not in that index (an upload would have
    to write it for every row); they are listed in the order they will be dialed, through
    the claim index. A filter that spans both lists the indexed states first.
    """
    c = calls.c
    base = sa.select(*_COLUMNS).where(c.batch_id == batch_id)
    if states is None:
        rows = await conn.execute(
            base.where(c.seq >= offset, c.seq < offset + limit).order_by(c.seq)
        )
        return [CallRow(**r._mapping) for r in rows]
    indexed = [s.value for s in states if s is not CallState.WAITING]
    out: list[CallRow] = []
    if indexed:
        rows = await conn.execute(
            base.where(sa.text("calls.status <> 'waiting'"), c.status.in_(indexed))
            .order_by(c.seq)
            .offset(offset)
            .limit(limit)
        )
        out = [CallRow(**r._mapping) for r in rows]
        if CallState.WAITING in states:
            before = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(calls)
                .where(c.batch_id == batch_id, sa.text("calls.status <> 'waiting'"))
                .where(c.status.in_(indexed))
            )
            offset = max(0, offset - int(before or 0))
    if CallState.WAITING in states and len(out) < limit:
        rows = await conn.execute(
            base.where(c.status == CallState.WAITING.value)
            .order_by(c.next_attempt_at, c.id)
            .offset(offset)
            .limit(limit - len(out))
        )
        out.extend(CallRow(**r._mapping) for r in rows)
    return out


async def get(conn: AsyncConnection, batch_id: str, seq: int) -> CallRow | None:
    row = (
        await conn.execute(
            sa.select(
                *_COLUMNS,
                calls.c.gate_decision,
                calls.c.timezone,
                calls.c.consent_basis,
                calls.c.consent_at,
            ).where(calls.c.batch_id == batch_id, calls.c.seq == seq)
        )
    ).first()
    return CallRow(**row._mapping) if row else None


async def recent_finished(conn: AsyncConnection, batch_id: str, limit: int = 10) -> list[CallRow]:
    """The last `limit` calls to finish (completed or failed), newest first.

    The predicate matches the partial index ix_calls_recent exactly, so this is an index
    range scan from the end whatever the batch size.
    """
    c = calls.c
    rows = await conn.execute(
        sa.select(*_COLUMNS)
        .where(
            c.batch_id == batch_id,
            sa.text("calls.status IN ('completed', 'failed')"),
        )
        .order_by(c.ended_at.desc())
        .limit(limit)
    )
    return [CallRow(**r._mapping) for r in rows]


async def live_provider_call_ids(
    conn: AsyncConnection, workspace_id: str, batch_id: str
) -> list[str]:
    """The provider's ids of the batch's calls that are up or ringing (dialing, or being
    reconciled), for a cancel that hangs them up. A dial whose provider id is not known
    yet is not among them."""
    c = calls.c
    rows = await conn.execute(
        sa.select(c.provider_call_id)
        .where(
            c.batch_id == batch_id,
            c.workspace_id == workspace_id,
            sa.text("calls.status <> 'waiting'"),  # lets SQLite use the partial index
            c.status.in_([CallState.DIALING.value, CallState.UNKNOWN.value]),
            c.provider_call_id.is_not(None),
        )
        .order_by(c.seq)
    )
    return [r[0] for r in rows]


# -- export -------------------------------------------------------------------------------

_EXPORT_COLUMNS = (
    calls.c.seq,
    calls.c.phone_number,
    calls.c.metadata,
    calls.c.status,
    calls.c.attempt,
    calls.c.started_at,
    calls.c.ended_at,
    calls.c.duration_s,
    calls.c.error,
)
# Last in an export row: the recipient's own zone and consent record (extension).
_RECIPIENT_COLUMNS = (calls.c.timezone, calls.c.consent_basis, calls.c.consent_at)
# The result's fields a CSV export shows, extracted by the database (JSON_EXTRACT on
# SQLite, ->> on PostgreSQL): parsing every result in Python was most of an export's time.
RESULT_FIELDS = ("outcome", "transcript", "summary", "data")


async def after(
    conn: AsyncConnection,
    batch_id: str,
    *,
    after_seq: int,
    states: tuple[CallState, ...] | None,
    limit: int,
    result_fields: bool = False,
) -> list[Sequence[Any]]:
    """The next `limit` calls of the batch past `after_seq`, in CSV order, optionally only
    those in `states`: one keyset step of an export, through the (batch_id, seq) key, so
    each step costs the same at row 10 and at row 1,000,000 and nothing holds the batch.

    Each row carries the result as JSON text (`result`), or with `result_fields` its
    RESULT_FIELDS instead: those of a completed call (text, an object as JSON text, or a
    number on SQLite), an empty text for a missing one and for any other call, whose
    result an export does not show (the database skips extracting them, and the caller
    does not have to check each cell); then timezone, consent_basis and consent_at.

    The rows are the driver's own (tuples, asyncpg records), read as one step each
    (`_dialect.read_chunk`, which says why), so an export can read the next chunk while
    it formats this one."""
    c = calls.c
    source: sa.FromClause = calls
    if result_fields:
        completed = c.status == CallState.COMPLETED.value
        fields, source = _dialect.json_text_fields(conn, calls, c.result, completed, RESULT_FIELDS)
        extra = [
            sa.func.coalesce(f, "").label(n) for f, n in zip(fields, RESULT_FIELDS, strict=True)
        ]
    else:
        extra = [sa.cast(c.result, sa.Text).label("result")]
    query = (
        sa.select(*_EXPORT_COLUMNS, *extra, *_RECIPIENT_COLUMNS)
        .select_from(source)
        .where(c.batch_id == sa.bindparam("batch_id"), c.seq > sa.bindparam("after_seq"))
    )
    if states is not None:
        # Inline: the statement is compiled once for its shape (states and limit in `shape`
        # below), and a state is one of CallState's fixed names.
        query = query.where(c.status.in_([sa.literal_column(f"'{s.value}'") for s in states]))
    query = query.order_by(c.seq).limit(limit)
    shape = ("calls.after", _dialect.dialect_name(conn), states, limit, result_fields)
    return await _dialect.read_chunk(
        conn, query, shape, {"batch_id": batch_id, "after_seq": after_seq}
    )
