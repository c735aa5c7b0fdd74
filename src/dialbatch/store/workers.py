"""Worker heartbeats: each process that dispatches writes its row every HEARTBEAT_S, so
that anyone can tell whether a worker is alive (a queued batch with none will not move).
Times are the database's clock, so hosts with skewed clocks agree."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.store._dialect import now_ms_sql, upsert
from dialbatch.store.tables import workers

HEARTBEAT_S = 15.0
# Seen within this long: alive. Four missed beats, so a busy database does not make a
# live worker look dead.
ALIVE_WITHIN_MS = 60_000


@dataclass(frozen=True)
class Worker:
    id: str
    host: str
    pid: int
    started_at: int
    seen_at: int


async def beat(conn: AsyncConnection, worker_id: str, host: str, pid: int) -> None:
    """Say `worker_id` is alive now (first beat: its row is created)."""
    now = now_ms_sql(conn)
    stmt = upsert(conn, workers).values(
        id=worker_id, host=host[:255], pid=pid, started_at=now, seen_at=now
    )
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=["id"], set_={"seen_at": now_ms_sql(conn)})
    )


async def gone(conn: AsyncConnection, worker_id: str) -> None:
    """A worker that stops says so, rather than ageing out a minute later."""
    await conn.execute(workers.delete().where(workers.c.id == worker_id))


async def alive(conn: AsyncConnection, within_ms: int = ALIVE_WITHIN_MS) -> list[Worker]:
    """Workers seen within `within_ms`, most recently seen first; older rows are pruned
    now and then by `prune`."""
    w = workers.c
    rows = await conn.execute(
        sa.select(w.id, w.host, w.pid, w.started_at, w.seen_at)
        .where(w.seen_at >= now_ms_sql(conn) - within_ms)
        .order_by(w.seen_at.desc(), w.id)
    )
    return [Worker(*r) for r in rows]


async def prune(conn: AsyncConnection, older_than_ms: int = 24 * 3600 * 1000) -> int:
    """Forget workers not seen for a day (killed processes never say goodbye)."""
    result = await conn.execute(
        workers.delete().where(workers.c.seen_at < now_ms_sql(conn) - older_than_ms)
    )
    return int(result.rowcount or 0)
