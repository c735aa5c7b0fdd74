"""Webhook delivery throughput: can the workers keep up with >= 500 events/s?

A receiver (a minimal asyncio HTTP server, in its own process so it does not share the
deliverers' CPU) answers 200 to everything and counts. Events are written to the
outbox at a steady rate (`--rate`, in transactions of `--group` events, as the engine
writes them) for `--seconds`; `--workers` deliverers (WebhookDeliverer, the code `serve`
and `worker` run, each with its own connection pool) deliver them. Printed: events
written and delivered per second, and the delay from an event's commit to its delivery
(p50/p99/max). A second phase measures the drain rate of a backlog (`--backlog` events
written at once).

    .venv/bin/python bench/webhooks.py                      # SQLite, 1 deliverer
    .venv/bin/python bench/webhooks.py --pg --workers 2     # PostgreSQL, 2 deliverers
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import secrets
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _pg
from _server import print_load, print_machine
from dialbatch.events.webhooks import WebhookDeliverer
from dialbatch.server import SWITCH_INTERVAL_S
from dialbatch.settings import Settings, to_async_url
from dialbatch.store import migrate, outbox, webhooks, workspaces
from dialbatch.store.engine import Database
from dialbatch.store.tables import webhook_deliveries

ADMIN_URL = os.environ.get("DIALBATCH_TEST_PG_URL", "postgresql://127.0.0.1:5432/test")
WS = "ws_bench"


def _receiver(port: int, counter: Any, stamps: Any) -> None:
    """A bare HTTP/1.1 server: read a request, answer 200, keep the connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                with counter.get_lock():
                    counter.value += 1
                    if counter.value <= len(stamps):
                        stamps[counter.value - 1] = time.time()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def delivered(db: Database) -> list[tuple[int, int]]:
    """(event time, delivered time) of each delivered delivery, ms."""
    d = webhook_deliveries.c
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(d.created_at, d.delivered_at).where(d.status == "delivered")
        )
        return [(int(a), int(b)) for a, b in rows]


async def count_delivered(db: Database) -> int:
    d = webhook_deliveries.c
    async with db.read() as conn:
        return int(
            await conn.scalar(sa.select(sa.func.count()).where(d.status == "delivered")) or 0
        )


async def write_events(db: Database, n: int, group: int, start: int) -> None:
    for i in range(0, n, group):
        async with db.write() as conn:
            for k in range(min(group, n - i)):
                seq = start + i + k
                payload = {
                    "batchId": "batch_bench",
                    "jobId": f"call_bench_{seq}",
                    "status": "completed",
                }
                await outbox.emit(conn, WS, "call.completed", payload)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def run(args: argparse.Namespace, url: str) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL_S)  # as server.Runtime sets it
    port = free_port()
    counter = multiprocessing.Value("q", 0)
    stamps = multiprocessing.Array("d", 1)
    receiver = multiprocessing.Process(target=_receiver, args=(port, counter, stamps), daemon=True)
    receiver.start()
    time.sleep(0.5)
    db = Database(url)
    settings = Settings(
        database_url=url,
        webhooks_allow_private=True,
        webhook_concurrency=args.concurrency,
        webhook_poll_s=0.05,
    )
    async with db.write() as conn:
        await workspaces.create_workspace(conn, workspace_id=WS)
        await webhooks.create_endpoint(
            conn,
            WS,
            url=f"http://127.0.0.1:{port}/hook",
            events=["call.completed"],
            description="bench",
        )
    pools = [Database(url) for _ in range(args.workers)]
    workers = [WebhookDeliverer(p, settings, b"b" * 32) for p in pools]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        # Phase 1: a steady stream.
        total = int(args.rate * args.seconds)
        t0 = time.monotonic()
        written = 0
        while written < total:
            due = int((time.monotonic() - t0) * args.rate) - written
            if due > 0:
                n = min(due, total - written)
                await write_events(db, n, args.group, written)
                written += n
            else:
                await asyncio.sleep(0.01)
        wrote_s = time.monotonic() - t0
        deadline = time.monotonic() + 120
        while counter.value < total and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        done_s = time.monotonic() - t0
        lags = [float(b - a) for a, b in await delivered(db)]
        print(
            f"steady: {total} events written at {total / wrote_s:.0f}/s; all delivered "
            f"{done_s - wrote_s:.2f} s after the last was written "
            f"({total / done_s:.0f} events/s over the run); received {counter.value}"
        )
        print(
            f"  event -> delivered delay: p50 {pct(lags, 0.5):.0f} ms, "
            f"p99 {pct(lags, 0.99):.0f} ms, max {max(lags):.0f} ms"
        )
        # Phase 2: a backlog, drained as fast as possible.
        before = counter.value
        for w in workers:
            await w.stop()
        await asyncio.gather(*tasks)
        await write_events(db, args.backlog, 500, total)
        workers = [WebhookDeliverer(p, settings, b"b" * 32) for p in pools]
        t1, cpu1 = time.monotonic(), time.process_time()
        tasks = [asyncio.create_task(w.run()) for w in workers]
        deadline = time.monotonic() + 300
        while counter.value < before + args.backlog and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        drain_s, cpu_s = time.monotonic() - t1, time.process_time() - cpu1
        print(
            f"backlog: {args.backlog} events drained in {drain_s:.2f} s "
            f"({args.backlog / drain_s:.0f} events/s); this process used {cpu_s:.2f} s of CPU "
            f"({cpu_s / args.backlog * 1e6:.0f} us per event: "
            f"{args.backlog / cpu_s:.0f} events/s per core)"
        )
        for w in workers:
            await w.stop()
        await asyncio.gather(*tasks)
        recorded = await count_delivered(db)
        print(
            f"requests received {counter.value}, deliveries recorded delivered {recorded} "
            f"(expected {total + args.backlog})"
        )
    finally:
        for w in workers:
            await w.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        for p in pools:
            await p.dispose()
        await db.dispose()
        receiver.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=600.0, help="events written per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--group", type=int, default=20, help="events per transaction")
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    print_machine()
    print_load("before")
    if args.pg:
        name = f"dialbatch_bench_wh_{secrets.token_hex(3)}"
        url = _pg.create_database(ADMIN_URL, name)
        try:
            migrate.upgrade(to_async_url(url))
            asyncio.run(run(args, to_async_url(url)))
        finally:
            _pg.drop_database(ADMIN_URL, name)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            url = to_async_url(f"sqlite:///{tmp}/bench.db")
            migrate.upgrade(url)
            asyncio.run(run(args, url))
    print_load("after")


if __name__ == "__main__":
    main()
