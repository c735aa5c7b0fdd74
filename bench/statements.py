"""What one writer statement costs on SQLite, by how it is executed: built each time and run
by SQLAlchemy (the dial path before store/_prepared.py), built once and run by SQLAlchemy,
and built once and run on aiosqlite's connection (store/_prepared.run). The CPU is the
process's (the event loop's thread and aiosqlite's), per statement.

    .venv/bin/python bench/statements.py [--n 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.store._prepared import Prepared, run
from dialbatch.store.engine import Database

META = sa.MetaData()
T = sa.Table(
    "t",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("status", sa.String),
    sa.Column("n", sa.Integer),
)
PREPARED = Prepared(
    "bench_update",
    lambda conn: (
        T.update()
        .where(T.c.id == sa.bindparam("_id"), T.c.status != sa.bindparam("_not"))
        .values(n=T.c.n + 1, status=sa.bindparam("_status"))
    ),
)


async def timed(label: str, n: int, step: Callable[[int], Awaitable[object]]) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        await step(i)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<34} {wall / n * 1e6:7.0f} us wall {cpu / n * 1e6:7.0f} us CPU a statement")


async def main(n: int) -> None:
    folder = tempfile.mkdtemp(prefix="dialbatch-bench-statements-")
    db = Database(f"sqlite+aiosqlite:///{folder}/s.db")
    async with db.write() as conn:
        await conn.run_sync(META.create_all)
        await conn.execute(T.insert(), [{"id": i, "status": "a", "n": 0} for i in range(1000)])
    stmt = PREPARED.statement

    async with db.write() as conn:

        async def built_each_time(i: int, conn: AsyncConnection = conn) -> object:
            return await conn.execute(
                T.update()
                .where(T.c.id == i % 1000, T.c.status != "x")
                .values(n=T.c.n + 1, status="b")
            )

        async def built_once(i: int, conn: AsyncConnection = conn) -> object:
            return await conn.execute(stmt(conn), {"_id": i % 1000, "_not": "x", "_status": "c"})

        async def on_the_driver(i: int, conn: AsyncConnection = conn) -> object:
            return await run(conn, PREPARED, {"_id": i % 1000, "_not": "x", "_status": "d"})

        await on_the_driver(0)  # compiled once, outside the timing
        await timed("built each time, SQLAlchemy runs it", n, built_each_time)
        await timed("built once, SQLAlchemy runs it", n, built_once)
        await timed("built once, run on the driver", n, on_the_driver)
    await db.dispose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000)
    asyncio.run(main(ap.parse_args().n))
