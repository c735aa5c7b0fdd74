"""JSON create vs CSV upload: the same rows sent both ways to the real server.

Generates bench/ingest.py's contact list (default 10,000 rows), then, alternately, POSTs it
as the multipart CSV of the contract and as the JSON body of the extension
(`{"agentId", "calls": [{"phone_number", ...}]}`), `--runs` times each, on a fresh server
(`dialbatch serve`, SQLite by default). Prints each run (client wall time, rows/s, server
peak RSS and CPU) and the medians side by side, and checks that both ways made the same
calls (numbers and row variables, in order).

    .venv/bin/python bench/json_create.py
    .venv/bin/python bench/json_create.py --database-url postgresql://127.0.0.1:5432/SCRATCH_DB

The server migrates the database it is given and leaves its batches there: give it a
database of its own.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import AGENT, MB, Server, print_load, print_machine, run_server
from ingest import (
    POST_TIMEOUT_S,
    Generated,
    RunResult,
    post_csv,
    print_header,
    print_result,
    write_csv,
)


def json_body(data: Generated, scheduled_at: str) -> bytes:
    with data.path.open(encoding="utf-8", newline="") as f:
        calls = list(csv.DictReader(f))
    return json.dumps({"agentId": AGENT, "calls": calls, "scheduledAt": scheduled_at}).encode()


def post_json(server: Server, body: bytes, rows: int, *, label: str) -> tuple[RunResult, str]:
    cpu0 = server.cpu_seconds()
    server.start_window()
    with httpx.Client(base_url=server.base_url, timeout=POST_TIMEOUT_S) as client:
        started = time.perf_counter()
        response = client.post(
            "/v1/api/batch-calls",
            headers={**server.headers, "content-type": "application/json"},
            content=body,
        )
        seconds = time.perf_counter() - started
    peak, cpu = server.window_peak(), server.cpu_seconds() - cpu0
    payload = response.json()
    if response.status_code >= 300:
        print(f"  ! {label}: HTTP {response.status_code}: {str(payload)[:500]}", file=sys.stderr)
    result = RunResult(
        label,
        rows,
        len(body),
        seconds,
        peak,
        cpu,
        payload.get("totalCalls"),
        response.status_code,
    )
    return result, str(payload.get("batchId", ""))


def calls_of(server: Server, batch_id: str) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    with httpx.Client(base_url=server.base_url, headers=server.headers, timeout=60) as client:
        page = 1
        while True:
            body = client.get(
                f"/v1/api/batch-calls/{batch_id}/calls", params={"page": page, "limit": 100}
            ).json()
            out += [(c["phone_number"], c["metadata"]) for c in body["calls"]]
            if not body["pagination"]["hasNext"]:
                return out
            page += 1


def last_batch_id(server: Server) -> str:
    with httpx.Client(base_url=server.base_url, headers=server.headers, timeout=60) as client:
        listing = client.get("/v1/api/batch-calls", params={"limit": 1}).json()
    return str(listing["batches"][0]["id"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=3, help="runs of each way (default 3)")
    p.add_argument("--database-url", help="e.g. postgresql://127.0.0.1:5432/test (default SQLite)")
    p.add_argument("--seed", type=int, default=20240601)
    args = p.parse_args(argv)
    print_machine()
    scheduled = (datetime.now(UTC) + timedelta(days=300)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with tempfile.TemporaryDirectory(prefix="dialbatch-json-") as tmp:
        data = write_csv(Path(tmp) / "contacts.csv", args.rows, national=False, seed=args.seed)
        body = json_body(data, scheduled)
        print(
            f"{data.rows} rows: CSV {data.size / 1e6:.2f} MB, JSON {len(body) / 1e6:.2f} MB; "
            f"database: {args.database_url or 'SQLite (embedded default)'}"
        )
        csv_runs: list[RunResult] = []
        json_runs: list[RunResult] = []
        with run_server(database_url=args.database_url, dispatch=False) as server:
            print_header()
            csv_id = json_id = ""
            for i in range(args.runs):
                r = post_csv(
                    server,
                    data,
                    label=f"csv #{i + 1}",
                    default_country=None,
                    scheduled_at=scheduled,
                )
                print_result(r)
                csv_runs.append(r)
                csv_id = last_batch_id(server)
                j, json_id = post_json(server, body, data.rows, label=f"json #{i + 1}")
                print_result(j)
                json_runs.append(j)
            same = calls_of(server, csv_id) == calls_of(server, json_id)
    print()
    for name, runs in (("csv", csv_runs), ("json", json_runs)):
        secs = statistics.median(r.seconds for r in runs)
        peak = statistics.median(r.peak_rss for r in runs) / MB
        cpu = statistics.median(r.server_cpu_s for r in runs)
        print(
            f"median {name:<5} {secs:6.2f} s  {data.rows / secs:9,.0f} rows/s  "
            f"peak RSS {peak:6.1f} MB  server CPU {cpu:5.2f} s  "
            f"all accepted: {all(r.ok for r in runs)}"
        )
    ratio = statistics.median(r.seconds for r in json_runs) / statistics.median(
        r.seconds for r in csv_runs
    )
    print(f"json / csv time: {ratio:.2f}; the same calls both ways: {same}")
    print_load("at end")
    return 0 if same and all(r.ok for r in [*csv_runs, *json_runs]) else 1


if __name__ == "__main__":
    sys.exit(main())
