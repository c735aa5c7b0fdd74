"""The API rate limits' buckets in the database: one atomic UPSERT ... RETURNING a request.

The bucket arithmetic (domain/ratelimit.take) runs inside the statement on the database's
clock, so every API process, on any host, draws from one budget without clock skew, and two
requests at once are serialised by the row's lock, never both admitted from one token.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.ratelimit import Limit, Verdict, refused
from dialbatch.store._dialect import dialect_name, greatest, now_ms_sql, single_statement, upsert
from dialbatch.store.engine import Database
from dialbatch.store.tables import rate_buckets

b = rate_buckets.c


async def take(db: Database, key: str, limit: Limit) -> tuple[Verdict, float]:
    """One request against bucket `key`: (the verdict, the database's now in ms).

    On PostgreSQL it runs in autocommit: one round trip, no BEGIN/COMMIT of its own.
    """
    params = {"key": key, "interval": limit.interval_ms, "tolerance": limit.tolerance_ms}
    async with single_statement(db) as conn:
        row = (await conn.execute(_statement(conn), params)).one()
    tat, now_ms = float(row.tat), float(row.seen_at)
    if row.refused:
        return refused(limit, tat, now_ms), now_ms
    return Verdict(allowed=True, tat=tat), now_ms


_STATEMENTS: dict[str, Any] = {}


def _statement(conn: AsyncConnection) -> Any:
    """The UPSERT, built once per dialect (its compiled form is then cached too)."""
    found = _STATEMENTS.get(dialect_name(conn))
    if found is not None:
        return found
    interval = sa.bindparam("interval", type_=sa.Float)
    tolerance = sa.bindparam("tolerance", type_=sa.Float)
    clock = sa.select(now_ms_sql(conn).label("n")).subquery("clock")
    fresh = (
        sa.select(sa.bindparam("key", type_=sa.String), clock.c.n + interval, clock.c.n, sa.false())
        .select_from(clock)
        .where(sa.true())  # SQLite: INSERT ... SELECT ... ON CONFLICT needs a WHERE
    )
    insert = upsert(conn, rate_buckets).from_select(["key", "tat", "seen_at", "refused"], fresh)
    now = insert.excluded.seen_at
    start = greatest(conn, b.tat, now)
    over = (start - now) > tolerance
    stmt = insert.on_conflict_do_update(
        index_elements=[b.key],
        set_={
            "refused": over,
            "tat": sa.case((over, b.tat), else_=start + interval),
            "seen_at": now,
        },
    ).returning(b.tat, b.seen_at, b.refused)
    _STATEMENTS[dialect_name(conn)] = stmt
    return stmt


async def prune(db: Database) -> int:
    """Delete the buckets that are full again (their `tat` has passed): the same as no row."""
    async with db.write() as conn:
        result = await conn.execute(rate_buckets.delete().where(b.tat < now_ms_sql(conn)))
    return int(result.rowcount or 0)
