"""Issue 11's validate acceptance: the estimate of `POST /v1/api/batch-calls/validate` for a
10,000-call batch under a 20-concurrent cap, 5 calls/s and a calling window, against the time
the simulated run then takes.

Time scale. The simulated provider's `DIALBATCH_SIMULATED_TIME_SCALE` only shortens calls;
the rate is real calls per second. So the run is the 5 calls/s run on a clock K times faster:
the workspace gets 5 x K calls/s, the calls last 1/K of their simulated length (time scale
1/K), and the cap (20) has no unit. A run of 10,000 calls at 5 calls/s (2,000 simulated
seconds) then dials for 2,000/K real seconds.

The window is wall-clock time and is not scaled (its granularity is a minute), so where it
sits decides whether it can be part of a run of under 2 minutes. By default (`--window
opening`) it is closed when the batch is created and opens `--opens-after` (20) seconds
later, at a minute boundary: the estimate must say when it opens, and the run dials from then
at the modelled pace. (`--window closing` is the earlier shape: open at the start, closed for
one whole minute `--before-close` seconds in, which makes the run over 2 minutes at any K.)
The recipients are Washington DC numbers, so the window is read in New York time.
Estimated and actual are both real seconds, from the validate's `startAt` (the create follows
it at once) to the last call's end (`finishAt` against the last `attempts.ended_at`).

The scale: K=25 gives 125 calls/s and, with the short mix, dials of ~0.065 s, so in the model
the rate binds (20 slots of 0.065 s would allow ~300 calls/s) and 10,000 calls take 80 s of
dialing plus the 20 s wait. Measured (docs/benchmarks.md), the engine's own cycle per slot
(outcome write, claim, intent, placement) took 0.11-0.13 s at load 2-5 on 2 shared cores,
so 20 slots went at 80-113 dials/s and the engine, not the rate, set the pace. Since the
dial path's statements are built once (store/_prepared.py) SQLite goes at 119-124 dials/s
on a quiet machine, near the rate: a run of 10,000 calls under 2 minutes needs a slot
cycle of at most ~0.2 s, whatever K.

A warm-up batch of `--warmup` calls (same agent, a window of the same shape that stays open
through it) first gives the agent the dial history the estimate learns from: the typical
dial, and the pace the batch achieved (its latest 500 dials, so the warm-up is long enough
to reach a steady pace). When the cap, not
the rate, held that batch back, the estimate gives each call the slot time it saw
(cap / pace): at this time scale a slot's overhead (claim, intent, outcome write, refill)
is not small next to a dial of a few hundredths of a second.

    .venv/bin/python bench/validate_estimate.py [--calls 10000] [--scale 25] [--cap 20]
        [--rate 5] [--warmup 2000] [--window opening|closing|none] [--opens-after 20]
        [--mix short|standard] [--before-close 25] [--pg]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

import _pg
from _server import Server, run_server

ADMIN_URL = os.environ.get("DIALBATCH_TEST_PG_URL", "postgresql://127.0.0.1:5432/test")

ZONE = "America/New_York"  # the zone of +1 202 numbers: the window is read in it
MIXES: dict[str, dict[str, Any]] = {
    # A cold list: mostly unanswered rings of 0.8 s and busy lines, a few short talks
    # (~1.4 simulated seconds a dial), so that at K=25 a dial is ~0.06 real seconds and the
    # 20 slots' own cycle (claim, intent, placement, outcome write) is most of a slot.
    "short": {
        "outcomes": {"completed": 0.1, "busy": 0.2, "no-answer": 0.7},
        "ringSeconds": [0.5, 1.0],
        "ringTimeoutSeconds": 0.8,
        "meanTalkSeconds": 3.0,
    },
    # The earlier mix (~2.6 simulated seconds): busy lines, unanswered rings of 2 s and
    # short conversations.
    "standard": {
        "outcomes": {"completed": 0.2, "busy": 0.4, "no-answer": 0.4},
        "ringSeconds": [0.5, 2.0],
        "ringTimeoutSeconds": 2.0,
        "meanTalkSeconds": 3.0,
    },
}
NO_RETRIES = json.dumps({"enabled": False, "maxAttempts": 1, "gaps": []})


def make_csv(n: int, offset: int) -> bytes:
    """n distinct Washington DC numbers (+1 202 ...), all in New York time."""
    exchanges = ("555", "556", "557", "558", "559", "550", "551", "552")
    rows = [
        f"+1202{exchanges[(offset + i) // 10_000]}{(offset + i) % 10_000:04d},Person{i}"
        for i in range(n)
    ]
    return ("phone_number,first_name\n" + "\n".join(rows) + "\n").encode()


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def closed_minute(close_at: datetime) -> dict[str, Any]:
    """Every day open, except one minute: [close_at, close_at + 1 min) in New York time."""
    local = close_at.astimezone(ZoneInfo(ZONE))
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()]
    shut = local.strftime("%H:%M")
    reopen = (local + timedelta(minutes=1)).strftime("%H:%M")
    days = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    days[day] = [["00:00", shut], [reopen, "24:00"]]
    return {"timezone": "recipient", "days": days}


def wait_for_start(before_close_s: float) -> datetime:
    """Sleep until `before_close_s` before a minute boundary that is not near local
    midnight (the window's day must not change during the run); the boundary."""
    assert 0 < before_close_s < 60
    while True:
        now = datetime.now(UTC)
        boundary = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        if (boundary - now).total_seconds() < before_close_s:
            boundary += timedelta(minutes=1)
        local = boundary.astimezone(ZoneInfo(ZONE))
        if (local.hour, local.minute) < (0, 5) or (local.hour, local.minute) > (23, 50):
            time.sleep(60)
            continue
        time.sleep(max(0.0, (boundary - now).total_seconds() - before_close_s))
        return boundary


def wait_complete(client: httpx.Client, batch_id: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = client.get(f"/v1/api/batch-calls/{batch_id}").json()
        if body["isComplete"]:
            return body
        if time.monotonic() > deadline:
            raise SystemExit(f"batch {batch_id} did not finish in {timeout_s} s: {body}")
        time.sleep(0.5)


SPAN_SQL = (
    "SELECT MIN(started_at), MAX(ended_at), COUNT(*), COUNT(DISTINCT call_id)"
    " FROM attempts WHERE batch_id = {}"
)


def ledger_rows(server: Server, sql: str, batch_id: str) -> list[tuple[Any, ...]]:
    """The rows of `sql` (its one parameter written `{}`) for `batch_id`, from the server's
    database: its SQLite file, or its scratch PostgreSQL database."""
    if server.database_url:
        return asyncio.run(_pg_rows(server.database_url, sql.format("$1"), batch_id))
    db = sqlite3.connect(server.sqlite_path)
    try:
        return list(db.execute(sql.format("?"), (batch_id,)))
    finally:
        db.close()


async def _pg_rows(url: str, sql: str, batch_id: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(sql, batch_id)]
    finally:
        await conn.close()


def run_span(server: Server, batch_id: str) -> tuple[int, int, int, int]:
    """(first dial's start, last dial's end, dials, calls) from the engine's ledger."""
    row = ledger_rows(server, SPAN_SQL, batch_id)[0]
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


PACE_SQL = "SELECT started_at FROM attempts WHERE batch_id = {} ORDER BY started_at"


def pace_profile(server: Server, batch_id: str, bucket_s: float = 10.0) -> list[float]:
    """Dials started per second in each `bucket_s` from the batch's first dial: where in the
    run the pace changed (a slow start points at work that grows with the calls waiting, a
    slow end at work that grows with the calls done)."""
    starts = [int(r[0]) for r in ledger_rows(server, PACE_SQL, batch_id)]
    if not starts:
        return []
    counts: dict[int, int] = {}
    for t in starts:
        b = int((t - starts[0]) / 1000 / bucket_s)
        counts[b] = counts.get(b, 0) + 1
    return [round(counts.get(b, 0) / bucket_s, 1) for b in range(max(counts) + 1)]


@contextlib.contextmanager
def scratch_database(pg: bool) -> Iterator[str | None]:
    """A fresh PostgreSQL database for the run (None: SQLite, the server's own file)."""
    if not pg:
        yield None
        return
    name = f"dialbatch_bench_estimate_{secrets.token_hex(3)}"
    url = _pg.create_database(ADMIN_URL, name)
    try:
        yield url
    finally:
        _pg.drop_database(ADMIN_URL, name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--scale", type=float, default=25.0, help="K: the clock runs K times faster")
    ap.add_argument("--cap", type=int, default=20)
    ap.add_argument("--rate", type=float, default=5.0, help="calls/s, in simulated time")
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--window", choices=("opening", "closing", "none"), default="opening")
    ap.add_argument("--opens-after", type=float, default=20.0, help="s, --window opening")
    ap.add_argument("--before-close", type=float, default=25.0, help="s, --window closing")
    ap.add_argument("--mix", choices=tuple(MIXES), default="short", help="the calls' outcomes")
    ap.add_argument("--pg", action="store_true", help="PostgreSQL (a scratch database)")
    args = ap.parse_args()
    k = args.scale
    print(f"machine: {os.cpu_count()} CPUs; at start: {uptime()}")
    print(f"database: {'PostgreSQL (scratch database)' if args.pg else 'SQLite (embedded)'}")
    print(
        f"batch: {args.calls} calls, cap {args.cap}, {args.rate:g} calls/s simulated, "
        f"time scale K={k:g} (workspace {args.rate * k:g} calls/s real, "
        f"DIALBATCH_SIMULATED_TIME_SCALE={1 / k:g}), {args.mix} calls"
    )
    env = {
        "DIALBATCH_SIMULATED_TIME_SCALE": repr(1 / k),
        "DIALBATCH_DEMO_MAX_CONCURRENT_CALLS": str(args.cap),
    }
    with (
        scratch_database(args.pg) as database_url,
        run_server(
            calls_per_second=args.rate * k, extra_env=env, database_url=database_url
        ) as server,
    ):
        client = httpx.Client(base_url=server.base_url, headers=server.headers, timeout=120)
        agent = client.post(
            "/v1/api/agents",
            json={"name": "estimate bench", "providerConfig": MIXES[args.mix]},
        ).raise_for_status()
        agent_id = agent.json()["id"]

        def form(window: dict[str, Any] | None) -> dict[str, str]:
            data = {"agentId": agent_id, "smartCallbackConfig": NO_RETRIES}
            if window is not None:
                data["callingWindow"] = json.dumps(window)
            return data

        # The warm-up has a window of the same shape, open throughout its run (its closed
        # minute is 12 hours away): the gate then costs each of its dials what it costs the
        # batch's, and the slot time learned from it is like for like.
        far = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=12)
        warm_window = None if args.window == "none" else closed_minute(far)
        warm = client.post(
            "/v1/api/batch-calls",
            files={"file": ("warm.csv", make_csv(args.warmup, 70_000), "text/csv")},
            data=form(warm_window),
        ).raise_for_status()
        wait_complete(client, warm.json()["batchId"], 300)
        warm_pace = pace_profile(server, warm.json()["batchId"])

        warm_cpu = server.cpu_seconds()
        csv = make_csv(args.calls, 0)
        window: dict[str, Any] | None = None
        if args.window == "opening":
            boundary = wait_for_start(args.opens_after)
            shut = boundary - timedelta(minutes=1)
            window = closed_minute(shut)
        else:
            boundary = wait_for_start(args.before_close)
            shut = boundary
            window = closed_minute(shut) if args.window == "closing" else None
        files = {"file": ("calls.csv", csv, "text/csv")}
        naive = client.post("/v1/api/batch-calls/validate", files=files, data=form(None))
        checked = client.post("/v1/api/batch-calls/validate", files=files, data=form(window))
        created = client.post("/v1/api/batch-calls", files=files, data=form(window))
        created.raise_for_status()
        batch_id = created.json()["batchId"]
        est = checked.raise_for_status().json()["estimate"]
        without = naive.raise_for_status().json()["estimate"]
        wait_complete(client, batch_id, 900)
        run_cpu = server.cpu_seconds() - warm_cpu
        first, last, dials, called = run_span(server, batch_id)
        run_pace = pace_profile(server, batch_id)
        batch = client.get(f"/v1/api/batch-calls/{batch_id}").json()
    actual_s = (last - est["startAt"]) / 1000
    error = (actual_s - est["durationSeconds"]) / est["durationSeconds"] * 100
    naive_error = (actual_s - without["durationSeconds"]) / without["durationSeconds"] * 100
    if window is not None:
        local = shut.astimezone(ZoneInfo(ZONE))
        print(
            f"window: New York time, closed {local:%a %H:%M}-{local + timedelta(minutes=1):%H:%M}"
            f" ({args.window}; {est['waitingSeconds']} s of the estimate waiting for it)"
        )
    print(
        f"estimate: {est['durationSeconds']} s ({est['limitedBy']}-bound at "
        f"{est['callsPerSecond']} calls/s; a dial {est['callSeconds']} s from "
        f"{est['historyDials']} dials, a slot held {est.get('slotSeconds')} s, the warm-up "
        f"batch went at {est.get('latestPace')} dials/s; {est.get('waitingSeconds')} s "
        "waiting for the window)"
    )
    print(
        f"run: {actual_s:.1f} s from startAt to the last call's end "
        f"(created {(batch['createdAt'] - est['startAt']) / 1000:.2f} s after startAt, first "
        f"dial {(first - est['startAt']) / 1000:.2f} s after; {dials} dials of {called} calls)"
    )
    print(
        f"finishAt {est['finishAt']} vs last end {last}: {(last - est['finishAt']) / 1000:+.1f} s"
    )
    print(
        f"dialing pace {dials / ((last - first) / 1000):.1f} dials/s (first start to last end);"
        f" server CPU {run_cpu:.1f} s for the run ({run_cpu / dials * 1000:.2f} ms a dial;"
        f" PostgreSQL's own not counted), {warm_cpu:.1f} s before it (start-up, warm-up)"
    )
    print(f"warm-up's dials/s per 10 s: {warm_pace}")
    print(f"batch's dials/s per 10 s:   {run_pace}")
    print(f"error: {error:+.1f} % (target within 15 %)")
    print(
        f"the estimate without the window said {without['durationSeconds']} s: {naive_error:+.1f} %"
    )
    print(f"at end: {uptime()}")
    return 0 if abs(error) <= 15 else 1


if __name__ == "__main__":
    sys.exit(main())
