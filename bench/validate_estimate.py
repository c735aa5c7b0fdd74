"""Issue 11's validate acceptance: the estimate of `POST /v1/api/batch-calls/validate` for a
10,000-call batch under a 20-concurrent cap, 5 calls/s and a calling window, against the time
the simulated run then takes.

Time scale. The simulated provider's `DIALBATCH_SIMULATED_TIME_SCALE` only shortens calls;
the rate is real calls per second. So the run is the 5 calls/s run on a clock K times faster:
the workspace gets 5 x K calls/s, the calls last 1/K of their simulated length (time scale
1/K), and the cap (20) has no unit. A run of 10,000 calls at 5 calls/s (2,000 simulated
seconds) then dials for 2,000/K real seconds.

The window is wall-clock time and is not scaled: it is the recipients' (Washington DC numbers,
so New York time) and closes for exactly one minute (its granularity) about 25 s after the
batch starts, then opens again. The estimate must say when it reopens: without the window
it would be short by the closed minute. Estimated and actual are both real seconds, from the
validate's `startAt` (the create follows it at once) to the last call's end (`finishAt`
against the last `attempts.ended_at`).

A warm-up batch of `--warmup` calls (same agent, no window) first gives the agent the dial
history the estimate learns from: the typical dial, and the pace the batch achieved (its
latest 500 dials, so the warm-up is long enough to reach a steady pace). When the cap, not
the rate, held that batch back, the estimate gives each call the slot time it saw
(cap / pace): at this time scale a slot's overhead (claim, intent, outcome write, refill)
is not small next to a dial of a few hundredths of a second.

    .venv/bin/python bench/validate_estimate.py [--calls 10000] [--scale 40] [--cap 20]
        [--rate 5] [--warmup 2000] [--before-close 25 | --opens-after 15] [--no-window]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from _server import Server, run_server

ZONE = "America/New_York"  # the zone of +1 202 numbers: the window is read in it
AGENT_CONFIG: dict[str, Any] = {
    # Short calls, so that the 5 calls/s rate binds (a slot is held < cap / rate = 4 s):
    # busy lines, unanswered rings of 2 s, and short conversations.
    "outcomes": {"completed": 0.2, "busy": 0.4, "no-answer": 0.4},
    "ringSeconds": [0.5, 2.0],
    "ringTimeoutSeconds": 2.0,
    "meanTalkSeconds": 3.0,
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


def closing_window(close_at: datetime) -> dict[str, Any]:
    """Every day open, except one minute: [close_at, close_at + 1 min) in New York time."""
    local = close_at.astimezone(ZoneInfo(ZONE))
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()]
    shut = local.strftime("%H:%M")
    reopen = (local + timedelta(minutes=1)).strftime("%H:%M")
    days = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    days[day] = [["00:00", shut], [reopen, "24:00"]]
    return {"timezone": "recipient", "days": days}


def opening_window(open_at: datetime) -> dict[str, Any]:
    """Every day open, except the minute before `open_at` (New York time): a batch started
    in that minute waits for `open_at`, then dials without a pause."""
    return closing_window(open_at - timedelta(minutes=1))


def wait_for_start(before_close_s: float) -> datetime:
    """Sleep until `before_close_s` before a minute boundary that is not near local
    midnight (the window's day must not change during the run); the boundary."""
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


def run_span(server: Server, batch_id: str) -> tuple[int, int, int, int]:
    """(first dial's start, last dial's end, dials, calls) from the engine's ledger."""
    db = sqlite3.connect(server.sqlite_path)
    try:
        row = db.execute(
            "SELECT MIN(a.started_at), MAX(a.ended_at), COUNT(*), COUNT(DISTINCT a.call_id)"
            " FROM attempts a JOIN calls c ON c.id = a.call_id WHERE c.batch_id = ?",
            (batch_id,),
        ).fetchone()
    finally:
        db.close()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--scale", type=float, default=40.0, help="K: the clock runs K times faster")
    ap.add_argument("--cap", type=int, default=20)
    ap.add_argument("--rate", type=float, default=5.0, help="calls/s, in simulated time")
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--before-close", type=float, default=25.0)
    ap.add_argument("--no-window", action="store_true", help="a control run without a window")
    ap.add_argument(
        "--opens-after",
        type=float,
        default=None,
        help="instead of closing mid-run, the window is closed at the start and opens this "
        "many seconds later (the run is shorter by most of the closed minute)",
    )
    args = ap.parse_args()
    k = args.scale
    print(f"machine: {os.cpu_count()} CPUs; at start: {uptime()}")
    print(
        f"batch: {args.calls} calls, cap {args.cap}, {args.rate:g} calls/s simulated, "
        f"time scale K={k:g} (workspace {args.rate * k:g} calls/s real, "
        f"DIALBATCH_SIMULATED_TIME_SCALE={1 / k:g})"
    )
    env = {
        "DIALBATCH_SIMULATED_TIME_SCALE": repr(1 / k),
        "DIALBATCH_DEMO_MAX_CONCURRENT_CALLS": str(args.cap),
    }
    with run_server(calls_per_second=args.rate * k, extra_env=env) as server:
        client = httpx.Client(base_url=server.base_url, headers=server.headers, timeout=120)
        agent = client.post(
            "/v1/api/agents",
            json={"name": "estimate bench", "providerConfig": AGENT_CONFIG},
        ).raise_for_status()
        agent_id = agent.json()["id"]

        def form(window: dict[str, Any] | None) -> dict[str, str]:
            data = {"agentId": agent_id, "smartCallbackConfig": NO_RETRIES}
            if window is not None:
                data["callingWindow"] = json.dumps(window)
            return data

        warm = client.post(
            "/v1/api/batch-calls",
            files={"file": ("warm.csv", make_csv(args.warmup, 70_000), "text/csv")},
            data=form(None),
        ).raise_for_status()
        wait_complete(client, warm.json()["batchId"], 300)

        csv = make_csv(args.calls, 0)
        if args.opens_after is not None:
            boundary = wait_for_start(args.opens_after)
            window = None if args.no_window else opening_window(boundary)
        else:
            boundary = wait_for_start(args.before_close)
            window = None if args.no_window else closing_window(boundary)
        files = {"file": ("calls.csv", csv, "text/csv")}
        naive = client.post("/v1/api/batch-calls/validate", files=files, data=form(None))
        checked = client.post("/v1/api/batch-calls/validate", files=files, data=form(window))
        created = client.post("/v1/api/batch-calls", files=files, data=form(window))
        created.raise_for_status()
        batch_id = created.json()["batchId"]
        est = checked.raise_for_status().json()["estimate"]
        without = naive.raise_for_status().json()["estimate"]
        wait_complete(client, batch_id, 900)
        first, last, dials, called = run_span(server, batch_id)
        batch = client.get(f"/v1/api/batch-calls/{batch_id}").json()
    actual_s = (last - est["startAt"]) / 1000
    error = (actual_s - est["durationSeconds"]) / est["durationSeconds"] * 100
    naive_error = (actual_s - without["durationSeconds"]) / without["durationSeconds"] * 100
    if window is not None and args.opens_after is not None:
        opens = boundary.astimezone(ZoneInfo(ZONE))
        print(
            f"window: New York time, closed {opens - timedelta(minutes=1):%a %H:%M}-{opens:%H:%M}"
        )
    elif window is not None:
        shut = boundary.astimezone(ZoneInfo(ZONE))
        print(f"window: New York time, closed {shut:%a %H:%M}-{shut + timedelta(minutes=1):%H:%M}")
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
    print(f"error: {error:+.1f} % (target within 15 %)")
    print(
        f"the estimate without the window said {without['durationSeconds']} s: {naive_error:+.1f} %"
    )
    print(f"at end: {uptime()}")
    return 0 if abs(error) <= 15 else 1


if __name__ == "__main__":
    sys.exit(main())
