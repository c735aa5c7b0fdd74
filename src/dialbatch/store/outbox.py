"""The outbox: events written in the same transaction as the change they report, so a
webhook or a live stream can never announce what did not happen, nor miss what did.

Rows are read in id order by readers that resume "after id N" (Server-Sent Events,
webhook fan-out), so an id must never become visible after a larger one. PostgreSQL
hands out BIGSERIAL values at insert time, not at commit, so two transactions could
commit their rows out of id order and a reader would skip the smaller one for good.
Hence the events of a transaction are held back (`emit` only buffers them on the
connection) and written at its very end by `flush`, which `Database.write` calls just
before the commit: it first takes one transaction-scoped lock (`_dialect.
lock_outbox_order`), then inserts, then the transaction commits and the lock goes.
Outbox ids are therefore assigned and committed one transaction at a time, in order.
The lock is the last one a transaction takes and nothing is waited for while holding
it, so it cannot deadlock; what it costs is that the commits of event-writing
transactions queue behind one another (docs/architecture.md). On SQLite the one writer
already commits in order.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.ids import now_ms
from dialbatch.store._dialect import lock_outbox_order
from dialbatch.store._prepared import Prepared, run
from dialbatch.store.tables import outbox

_PENDING = "dialbatch.outbox.pending"

Event = tuple[str, str, dict[str, Any]]  # (workspace_id, event name, payload)


async def emit(
    conn: AsyncConnection, workspace_id: str, event: str, payload: dict[str, Any]
) -> None:
    """Report `event` when `conn`'s transaction commits (written by `flush`)."""
    _pending(conn).append((workspace_id, event, payload))


async def emit_many(conn: AsyncConnection, events: list[Event]) -> None:
    """(workspace_id, event, payload) rows, reported when the transaction commits."""
    _pending(conn).extend(events)


def _pending(conn: AsyncConnection) -> list[Event]:
    found: list[Event] | None = conn.info.get(_PENDING)
    if found is None:
        found = conn.info[_PENDING] = []
    return found


def discard(conn: AsyncConnection) -> None:
    """Forget events of a transaction that will not commit (the buffer lives on the pooled
    connection, which outlives the transaction)."""
    conn.info.pop(_PENDING, None)


async def flush(conn: AsyncConnection) -> None:
    """Write the buffered events, in order, as the last act of the transaction."""
    events = conn.info.pop(_PENDING, None)
    if not events:
        return
    await lock_outbox_order(conn)
    at = now_ms()
    await run(
        conn,
        _INSERT,
        [
            {
                "workspace_id": w,
                "batch_id": p.get("batchId"),
                "event": e,
                "payload": p,
                "created_at": at,
            }
            for w, e, p in events
        ],
    )


_INSERT = Prepared(
    "outbox_insert",
    lambda conn: outbox.insert(),
    keys=("workspace_id", "batch_id", "event", "payload", "created_at"),
)


# --- Reading (events/stream.py, events/webhooks.py) ------------------------------------------

ROW_COLUMNS = (
    outbox.c.id,
    outbox.c.workspace_id,
    outbox.c.batch_id,
    outbox.c.event,
    outbox.c.payload,
    outbox.c.created_at,
)


async def read_after(
    conn: AsyncConnection,
    after_id: int,
    *,
    limit: int,
    up_to: int | None = None,
    workspace_id: str | None = None,
    batch_id: str | None = None,
) -> list[Any]:
    """Events with `after_id < id (<= up_to)`, in id order, of one workspace or batch (or
    all). Every id up to the largest one returned is final: ids commit in order."""
    o = outbox.c
    stmt = sa.select(*ROW_COLUMNS).where(o.id > after_id).order_by(o.id).limit(limit)
    if up_to is not None:
        stmt = stmt.where(o.id <= up_to)
    if batch_id is not None:
        stmt = stmt.where(o.batch_id == batch_id)
    if workspace_id is not None:
        stmt = stmt.where(o.workspace_id == workspace_id)
    return list(await conn.execute(stmt))


async def last_id(conn: AsyncConnection) -> int:
    """The largest outbox id committed so far (0 for none)."""
    return int(await conn.scalar(sa.select(sa.func.max(outbox.c.id))) or 0)
