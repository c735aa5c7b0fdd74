"""Issue #2's end-to-end acceptance run against a real server process.

Starts `dialbatch serve` with DIALBATCH_SIMULATED_TIME_SCALE=0.005 and demo limits of 50
concurrent calls and 50 calls/s, uploads a 1,000-row CSV for agent_demo, and polls until
`isComplete`. At every poll it checks waiting+active+completed+failed == total and that
each status filter's `pagination.total` equals `summary`; at the end, that every finished
call has startTime, endTime and a duration or an error. Prints the time to completion.

    .venv/bin/python bench/acceptance_run.py [--rows 1000] [--timeout 120]
"""

from __future__ import annotations

import argparse
import sys
import time

import httpx

from _server import AGENT, run_server

STATUSES = ("waiting", "active", "completed", "failed")


def make_csv(rows: int) -> bytes:
    lines = ["phone_number,first_name,last_name,email"]
    for i in range(rows):
        lines.append(f"+1202555{i:04d},First{i},Last{i},user{i}@example.com")
    return ("\n".join(lines) + "\n").encode()


def check_poll(client: httpx.Client, batch_id: str) -> dict[str, object]:
    body = client.get(f"/v1/api/batch-calls/{batch_id}").raise_for_status().json()
    p = body["progress"]
    parts = sum(p[s] for s in STATUSES) + p.get("cancelled", 0)
    assert parts == p["total"] == body["totalCalls"], f"counts do not add up: {p}"
    for status in STATUSES:
        listing = client.get(
            f"/v1/api/batch-calls/{batch_id}/calls", params={"status": status, "limit": 1}
        )
        if listing.status_code == 400:  # page 1 past the end cannot happen; fail loudly
            raise AssertionError(listing.text)
        data = listing.raise_for_status().json()
        # the listing is read in its own snapshot; the summary it carries must agree with it
        assert data["pagination"]["total"] == data["summary"][status], data
    return dict(body)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()
    env = {
        "DIALBATCH_SIMULATED_TIME_SCALE": "0.005",
        "DIALBATCH_DEMO_MAX_CONCURRENT_CALLS": "50",
    }
    with run_server(calls_per_second=50, extra_env=env) as server:
        client = httpx.Client(base_url=server.base_url, headers=server.headers, timeout=30)
        started = time.monotonic()
        r = client.post(
            "/v1/api/batch-calls",
            files={"file": ("contacts.csv", make_csv(args.rows), "text/csv")},
            data={"agentId": AGENT},
        )
        r.raise_for_status()
        batch_id = r.json()["batchId"]
        polls = 0
        while True:
            body = check_poll(client, batch_id)
            polls += 1
            if body["isComplete"]:
                break
            if time.monotonic() - started > args.timeout:
                print(f"FAIL: not complete after {args.timeout:.0f} s: {body['progress']}")
                return 1
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        bad = 0
        page = 1
        while True:
            data = client.get(
                f"/v1/api/batch-calls/{batch_id}/calls", params={"page": page, "limit": 100}
            ).json()
            for call in data["calls"]:
                has_end = "startTime" in call and "endTime" in call
                if not has_end or ("duration" not in call and "error" not in call):
                    bad += 1
            if not data["pagination"]["hasNext"]:
                break
            page += 1
        progress = body["progress"]
        assert isinstance(progress, dict)
        print(f"rows: {args.rows}  status: {body['status']}  polls checked: {polls}")
        print(f"completed: {progress['completed']}  failed: {progress['failed']}")
        print(f"time to isComplete: {elapsed:.1f} s (target <= 120 s)")
        print(f"finished calls missing times/duration/error: {bad}")
        return 0 if body["status"] == "completed" and bad == 0 and elapsed <= 120 else 1


if __name__ == "__main__":
    sys.exit(main())
