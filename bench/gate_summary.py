"""What the batch's `gate` summary costs on a 300k-call batch (issue 10, item 7).

    python bench/gate_summary.py [--calls 300000] [--pg-url postgresql://root@127.0.0.1:5432/test]

One batch of `--calls` calls on SQLite and on PostgreSQL (a scratch database), asked for its
summary (store/gate_summary.py, the query `GET /v1/api/batch-calls/{id}` runs) three ways:
nothing held (a fresh upload), every call held for its window (a batch uploaded at night),
and one call in a thousand held. Prints the median of 5 reads each, and the same COUNT over
the batch's waiting calls without the index (what the summary would cost read from the
decision JSON of each row), for scale. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pg import create_database, drop_database
from dialbatch.domain.ids import new_batch_id
from dialbatch.settings import to_async_url
from dialbatch.store import batches, gate_summary, migrate, workspaces
from dialbatch.store.engine import Database
from dialbatch.store.tables import calls

WS = "ws_bench"
FUTURE = 4_102_444_800_000  # 2100: a hold still standing by the database's clock


async def make(db: Database, n: int) -> str:
    async def rows() -> AsyncIterator[list[tuple[int, str, str]]]:
        for start in range(0, n, 50_000):
            yield [
                (i, f"+1212{5_000_000 + i:07d}", "{}") for i in range(start, min(n, start + 50_000))
            ]

    batch_id = new_batch_id()
    async with db.write() as conn:
        await batches.insert_batch(
            conn,
            batch_id=batch_id,
            workspace_id=WS,
            agent_id="agent_bench",
            scheduled_at=None,
            callback_policy={"enabled": False, "maxAttempts": 1, "gaps": []},
            source_name=None,
            rows=rows(),
        )
    return batch_id


async def median_ms(db: Database, batch_id: str) -> tuple[float, gate_summary.GateSummary]:
    took = []
    got = gate_summary.GateSummary()
    for _ in range(5):
        start = time.perf_counter()
        async with db.read() as conn:
            got = await gate_summary.gate_summary(conn, batch_id)
        took.append((time.perf_counter() - start) * 1000)
    return statistics.median(took), got


async def unindexed_ms(db: Database, batch_id: str) -> float:
    took = []
    c = calls.c
    for _ in range(3):
        start = time.perf_counter()
        async with db.read() as conn:
            await conn.execute(
                sa.select(sa.func.count())
                .where(c.batch_id == batch_id, c.status == "waiting", c.gate_decision.is_not(None))
                .group_by(c.status)
            )
        took.append((time.perf_counter() - start) * 1000)
    return statistics.median(took)


async def vacuum(plain_url: str) -> None:
    """VACUUM ANALYZE (outside a transaction): what autovacuum does after a mass update, so
    that PostgreSQL can answer from the index alone (its visibility map)."""
    conn = await asyncpg.connect(plain_url)
    try:
        await conn.execute("VACUUM ANALYZE calls")
    finally:
        await conn.close()


async def run(label: str, url: str, n: int, plain_url: str | None = None) -> None:
    db = Database(url)
    async with db.write() as conn:
        await workspaces.create_workspace(
            conn, workspace_id=WS, max_concurrent_calls=10, calls_per_second=10
        )
        await workspaces.create_agent(
            conn, WS, name="b", provider="simulated", agent_id="agent_bench"
        )
    batch_id = await make(db, n)
    c = calls.c
    held = {"kind": "outside_window", "message": "bench", "until": FUTURE, "at": 0}
    for case, every in (("nothing held", 0), ("1 in 1000 held", 1000), ("all held", 1)):
        async with db.write() as conn:
            await conn.execute(calls.update().where(c.batch_id == batch_id).values(gate_hold=None))
            if every:
                await conn.execute(
                    calls.update()
                    .where(c.batch_id == batch_id, c.seq % every == 0)
                    .values(gate_hold="outside_window", next_attempt_at=FUTURE, gate_decision=held)
                )
        if plain_url is not None:
            async with db.write() as conn:
                await conn.execute(sa.text("ANALYZE calls"))
        ms, got = await median_ms(db, batch_id)
        print(
            f"{label:>10} {n:,} calls, {case:>15}: summary in {ms:7.1f} ms"
            f" (waitingForWindow {got.waiting_for_window:,})"
        )
        if plain_url is not None:
            await vacuum(plain_url)
            ms, got = await median_ms(db, batch_id)
            print(f"{label:>10} {n:,} calls, {case:>15}: after VACUUM {ms:7.1f} ms")
    print(
        f"{label:>10} the same count without the index: {await unindexed_ms(db, batch_id):.1f} ms"
    )
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300_000)
    parser.add_argument("--pg-url", default="postgresql://root@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        migrate.upgrade(url)
        asyncio.run(run("SQLite", url, args.calls))
    name = f"dialbatch_bench_{os.getpid()}_gate"
    pg = create_database(args.pg_url, name)
    try:
        migrate.upgrade(to_async_url(pg))
        asyncio.run(run("PostgreSQL", to_async_url(pg), args.calls, pg))
    finally:
        drop_database(args.pg_url, name)


if __name__ == "__main__":
    main()
