"""Everything that differs between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def is_sqlite(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "sqlite"


def now_ms_sql(conn: AsyncConnection) -> sa.ColumnElement[int]:
    """The database's clock in ms, so workers on several hosts agree on time."""
    if is_sqlite(conn):
        return sa.cast(
            sa.func.round((sa.func.julianday("now") - 2440587.5) * 86400000.0), sa.BigInteger
        )
    return sa.cast(
        sa.func.floor(sa.extract("epoch", sa.func.clock_timestamp()) * 1000), sa.BigInteger
    )


async def db_now_ms(conn: AsyncConnection) -> int:
    return int((await conn.execute(sa.select(now_ms_sql(conn)))).scalar_one())


def greatest(conn: AsyncConnection, a: Any, b: Any) -> sa.ColumnElement[Any]:
    """max(a, b) ignoring NULLs, which both engines spell differently."""
    if is_sqlite(conn):
        return sa.func.max(sa.func.coalesce(a, b), sa.func.coalesce(b, a))
    return sa.func.greatest(a, b)


def upsert(conn: AsyncConnection, table: sa.Table) -> Any:
    """An INSERT that supports ON CONFLICT on both engines."""
    if is_sqlite(conn):
        return sqlite.insert(table)
    return postgresql.insert(table)


def for_update(
    conn: AsyncConnection,
    stmt: sa.Select[Any],
    *,
    skip_locked: bool = False,
    of: sa.Table | None = None,
) -> Any:
    """Row locks on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers.

    With a join, name the table to lock (`of`): locking every joined row (a batch row
    FOR UPDATE) conflicts with the key-share locks of foreign-key checks, and deadlocks.
    """
    if is_sqlite(conn):
        return stmt
    return stmt.with_for_update(skip_locked=skip_locked, of=of)


# An arbitrary constant naming the outbox's ordering lock (store/outbox.py).
OUTBOX_ORDER_LOCK = 0x6469616C_6F627800  # "dialobx"


async def lock_outbox_order(conn: AsyncConnection) -> None:
    """Serialise outbox inserts until the transaction ends, so ids commit in order.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: nothing, its single writer
    (BEGIN IMMEDIATE) already commits one transaction at a time.
    """
    if is_sqlite(conn):
        return
    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(OUTBOX_ORDER_LOCK)))
