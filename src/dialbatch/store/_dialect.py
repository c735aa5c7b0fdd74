"""Everything that differs between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from dialbatch.store.engine import Database


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


@asynccontextmanager
async def single_statement(db: Database) -> AsyncIterator[AsyncConnection]:
    """A connection for one self-contained write statement. PostgreSQL: autocommit, one
    round trip with no BEGIN/COMMIT of its own. SQLite: the writer's usual transaction,
    whose BEGIN IMMEDIATE is what serialises writers there."""
    if db.is_sqlite:
        async with db.write() as conn:
            yield conn
        return
    async with db.writer.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")
