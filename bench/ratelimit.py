"""Rate-limit benchmark: the latency the API rate limits add to a request.

A real `dialbatch serve --no-dispatch` is started with the limits on (far above what is
sent, so every request is weighed and none refused) and off (`DIALBATCH_RATE_LIMIT_PER_S=0`),
alternately over `--rounds` server runs, on SQLite (buckets in the process's memory) and on
PostgreSQL (one UPSERT ... RETURNING per request on the shared `rate_buckets` table). Each
run sends `--warmup` untimed, then `-n` timed sequential `GET /v1/api/agents` over one
keep-alive httpx client (wall time per request, body included). p50 and mean per mode are
printed with the difference, which is the cost of the limit; on a loaded machine that
difference is noise, so the limiter's own work is also timed alone, in-process (`n` takes of
one bucket: a dict in memory, or one UPSERT through the server's kind of pool).

Then a burst against the real default limits: the request number of the first 429 and its
Retry-After, to show the defaults at work.

    .venv/bin/python bench/ratelimit.py
    .venv/bin/python bench/ratelimit.py --backends sqlite -n 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pg import create_database, drop_database
from _server import print_load, print_machine, run_server
from dialbatch.api.ratelimit import DatabaseBuckets, MemoryBuckets
from dialbatch.domain.ratelimit import Limit
from dialbatch.settings import to_async_url
from dialbatch.store.engine import Database

PATH = "/v1/api/agents"


def sample(base_url: str, headers: dict[str, str], n: int, warmup: int) -> list[float]:
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        for _ in range(warmup):
            client.get(PATH).raise_for_status()
        took = []
        for _ in range(n):
            started = time.perf_counter()
            client.get(PATH).raise_for_status()
            took.append((time.perf_counter() - started) * 1000)
    return took


def run_backend(name: str, database_url: str | None, args: argparse.Namespace) -> None:
    modes = {
        "off": {"DIALBATCH_RATE_LIMIT_PER_S": "0"},
        "on": {"DIALBATCH_RATE_LIMIT_PER_S": "1000000", "DIALBATCH_RATE_LIMIT_BURST": "1000000"},
    }
    samples: dict[str, list[float]] = {m: [] for m in modes}
    for round_ in range(args.rounds):
        order = list(modes) if round_ % 2 == 0 else list(reversed(modes))
        for mode in order:
            with run_server(
                database_url=database_url, dispatch=False, extra_env=modes[mode]
            ) as server:
                samples[mode] += sample(server.base_url, server.headers, args.n, args.warmup)
    print(f"\n{name}: {args.rounds} rounds x {args.n} sequential GET {PATH}")
    stats = {}
    for mode, took in samples.items():
        stats[mode] = (statistics.median(took), statistics.fmean(took))
        print(f"  limits {mode:>3}: p50 {stats[mode][0]:.3f} ms   mean {stats[mode][1]:.3f} ms")
    p50 = stats["on"][0] - stats["off"][0]
    mean = stats["on"][1] - stats["off"][1]
    print(f"  added by the limits: p50 {p50:+.3f} ms   mean {mean:+.3f} ms")


def limiter_alone(database_url: str | None, n: int) -> None:
    """The limiter's own work per request, without HTTP around it: n sequential takes of a
    key's bucket (in memory for SQLite; one UPSERT on PostgreSQL, through the server's pool)."""

    async def run() -> list[float]:
        limit = Limit(per_s=1_000_000, burst=1_000_000)
        db = Database(to_async_url(database_url)) if database_url else None
        buckets: Any = DatabaseBuckets(db) if db is not None else MemoryBuckets()
        try:
            for _ in range(20):
                await buckets.take("key:bench", limit)
            took = []
            for _ in range(n):
                started = time.perf_counter()
                await buckets.take("key:bench", limit)
                took.append((time.perf_counter() - started) * 1000)
            return took
        finally:
            if db is not None:
                await db.dispose()

    took = asyncio.run(run())
    print(
        f"  the limiter alone ({n} takes): p50 {statistics.median(took):.3f} ms   "
        f"mean {statistics.fmean(took):.3f} ms"
    )


def burst_with_defaults(database_url: str | None) -> None:
    """The shipped defaults: how far a burst of quick requests gets."""
    defaults = {"DIALBATCH_RATE_LIMIT_PER_S": "50", "DIALBATCH_RATE_LIMIT_BURST": "100"}
    with (
        run_server(database_url=database_url, dispatch=False, extra_env=defaults) as server,
        httpx.Client(base_url=server.base_url, headers=server.headers, timeout=10) as client,
    ):
        started = time.perf_counter()
        for i in range(1, 1001):
            r = client.get(PATH)
            if r.status_code == 429:
                took = time.perf_counter() - started
                print(
                    f"  default limits: request {i} refused after {took:.2f} s, "
                    f"Retry-After {r.headers['retry-after']}, body {r.text}"
                )
                return
        print("  default limits: 1000 requests, none refused")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    ap.add_argument("--pg-url", default="postgresql://root@127.0.0.1:5432/test")
    args = ap.parse_args()
    print_machine()
    print_load("before")
    for backend in args.backends:
        if backend == "sqlite":
            run_backend("SQLite (buckets in memory)", None, args)
            limiter_alone(None, args.n)
            burst_with_defaults(None)
            continue
        name = f"dialbatch_bench_rl_{secrets.token_hex(4)}"
        url = create_database(args.pg_url, name)
        try:
            run_backend("PostgreSQL (shared rate_buckets, one UPSERT)", url, args)
            limiter_alone(url, args.n)
            burst_with_defaults(url)
        finally:
            drop_database(args.pg_url, name)
    print_load("after")


if __name__ == "__main__":
    main()
