"""Engines and transactions.

On SQLite every write transaction starts with BEGIN IMMEDIATE (no lock-upgrade deadlocks)
through a single pooled writer connection, and runs with synchronous=FULL: in WAL mode with
NORMAL a commit can be lost on power failure, which could erase an intent to dial after the
phone rang. Readers use their own connections and never block on the writer (WAL).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from dialbatch.store import _dialect, outbox

SQLITE_BUSY_TIMEOUT_MS = 30_000
# The writer's page cache. 16 MiB holds the pages an upload keeps touching (each index of
# `calls` grows at one place per batch), so a 300k-row insert costs the same CPU as with
# 64 MiB, and the server's peak during it is ~50 MB lower (bench/memory.py).
WRITER_CACHE_KIB = 16 * 1024


class Database:
    """A pair of engines: `write()` for transactions that change state, `read()` for queries."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = _dialect.is_sqlite_url(url)
        # What code outside the store may ask of the database (store/_dialect.py).
        self.wakes_other_processes = _dialect.wakes_other_processes(url)
        self.writers_are_serial = _dialect.writers_are_serial(url)
        if self.is_sqlite:
            prepare_sqlite_dir(url)
            self.writer = _sqlite_engine(url, immediate=True, pool_size=1)
            self.reader = _sqlite_engine(url, immediate=False, pool_size=4)
        else:
            self.writer = create_async_engine(
                url, pool_size=10, max_overflow=10, pool_pre_ping=True
            )
            self.reader = self.writer

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with self.writer.begin() as conn:
            outbox.discard(conn)
            try:
                yield conn
                # Last, just before the commit: outbox ids must commit in order.
                await outbox.flush(conn)
            finally:
                outbox.discard(conn)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.reader.connect() as conn:
            yield conn

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncConnection]:
        """A read whose statements all see the database as of its first one, for an answer
        assembled from several queries (a call, its dials and its gate log must agree).
        SQLite: a reader's transaction already holds one WAL snapshot from its first read.
        PostgreSQL: READ COMMITTED takes a snapshot per statement, so REPEATABLE READ (a
        read-only transaction there never fails to serialise)."""
        if self.is_sqlite:
            async with self.read() as conn:
                yield conn
            return
        async with self.reader.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                yield conn

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


def prepare_sqlite_dir(url: str) -> None:
    """Create the folder of a SQLite file, so a fresh checkout starts without set-up."""
    parsed = make_url(url)
    if _dialect.is_sqlite_url(url) and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_engine(url: str, *, immediate: bool, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(
        url,
        poolclass=AsyncAdaptedQueuePool,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=60,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over transaction control from the driver so BEGIN is ours to write.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if immediate:
            # Room for the pages a large upload keeps dirtying, so they are written to the
            # WAL once instead of spilling and being rewritten (the default 2 MiB cost
            # ~20% of a 300k insert when measured; see WRITER_CACHE_KIB).
            cur.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
