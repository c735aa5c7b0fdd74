"""Export benchmark: `GET .../export` of a 1M-call batch, server memory and rows per second.

A fresh SQLite database is built before the server starts, with the store's own code
(`migrate.upgrade`, `bootstrap.ensure_demo`, `store.batches.insert_batch`): one batch of
`--calls` calls whose metadata is a typical CSV row (first and last name, email, a note).
Then every call is finished as a real run leaves it, in one UPDATE: 90% `completed` with a
result like an agent's (a ~400-character transcript, an outcome, a summary, extracted data),
10% `failed` with an error. The batch is scheduled far ahead and the server runs with
`--no-dispatch`, so nothing changes while measured.

The real `dialbatch serve` then runs as a subprocess; after a warm-up request its idle RSS
is read, and each format is exported `--rounds` times over one streamed HTTP request,
counting rows as they arrive. Printed per run: rows, bytes, seconds, rows/s, and the
server's peak RSS during the run (the larger of 20 ms samples and the kernel's VmHWM,
reset before each run) against its idle RSS, and the server's CPU time (user + system, all
its threads): rows per CPU-second is the figure that other load on a shared machine does
not change, where rows/s (wall) is. Targets (issue 12): peak within 50 MB of
idle, and at least 100k rows/s.

    .venv/bin/python bench/export.py                      # 1M calls, csv and jsonl
    .venv/bin/python bench/export.py --calls 100000 --rounds 1
    .venv/bin/python bench/export.py --workdir /tmp/eb     # keep (and reuse) the database
    .venv/bin/python bench/export.py --pg                  # PostgreSQL (a scratch database)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _pg
from _server import API_KEY, MB, WORKSPACE, print_load, print_machine, run_server
from dialbatch.bootstrap import DEMO_AGENT, ensure_demo
from dialbatch.domain.ids import new_batch_id, now_ms
from dialbatch.domain.retry import parse_callback_policy, policy_to_json
from dialbatch.settings import Settings, to_async_url
from dialbatch.store import batches, migrate
from dialbatch.store.engine import Database

MARKER = "export-batch.json"
ADMIN_URL = os.environ.get("DIALBATCH_TEST_PG_URL", "postgresql://127.0.0.1:5432/test")
CHUNK = 20_000
TARGET_RSS_MB = 50
TARGET_ROWS_PER_S = 100_000
TRANSCRIPT = (
    "Agent: Hello {name}, this is Sam calling from Example Dental about your check-up.\n"
    "Customer: Oh hi, yes.\nAgent: We have an opening next Tuesday at 10am, would that work?\n"
    "Customer: Tuesday is fine, thank you.\nAgent: Great, you are booked for Tuesday at 10am. "
    "We will text you a reminder the day before.\nCustomer: Perfect, bye."
)


def settings_for(data_dir: Path, database_url: str | None = None) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        demo_api_key=API_KEY,
        demo_workspace_id=WORKSPACE,
        demo_calls_per_second=0.01,
    )


async def _rows(n: int) -> AsyncIterator[list[tuple[int, str, str]]]:
    chunk: list[tuple[int, str, str]] = []
    for seq in range(n):
        meta = {
            "first_name": f"First{seq}",
            "last_name": f"Last{seq}",
            "email": f"person{seq}@example.com",
            "note": "prefers mornings" if seq % 3 else "-",
        }
        phone = f"+1202{seq // 10000 % 900 + 100:03d}{seq % 10000:04d}"
        chunk.append((seq, phone, json.dumps(meta, separators=(",", ":"))))
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def build(data_dir: Path, n: int, database_url: str | None = None) -> str:
    settings = settings_for(data_dir, database_url)
    migrate.upgrade(settings.effective_database_url)
    db = Database(settings.effective_database_url)
    try:
        await ensure_demo(db, settings)
        batch_id = new_batch_id()
        async with db.write() as conn:
            total = await batches.insert_batch(
                conn,
                batch_id=batch_id,
                workspace_id=WORKSPACE,
                agent_id=DEMO_AGENT,
                scheduled_at=now_ms() + 300 * 24 * 3600 * 1000,
                callback_policy=policy_to_json(parse_callback_policy(None)),
                source_name=f"bench-{n}.csv",
                rows=_rows(n),
            )
        assert total == n, (total, n)
        t0 = now_ms() - 3_600_000
        fails = "(seq % 10) = 9"
        async with db.write() as conn:
            if database_url is not None:
                await conn.exec_driver_sql(_pg_finish(t0, fails), (batch_id,))
                return batch_id
            await conn.exec_driver_sql(
                f"""
                UPDATE calls SET
                  status = CASE WHEN {fails} THEN 'failed' ELSE 'completed' END,
                  attempt = 1 + seq % 3,
                  started_at = {t0} + seq,
                  ended_at = {t0} + seq + 45000,
                  duration_s = CASE WHEN {fails} THEN NULL ELSE 45.0 END,
                  error = CASE WHEN {fails} THEN 'No answer (SIP 480 Temporarily Unavailable)'
                          ELSE NULL END,
                  result = CASE WHEN {fails} THEN NULL ELSE json_object(
                    'callId', 'sim_' || seq, 'outcome', 'booked',
                    'transcript', replace('{TRANSCRIPT}', '{{name}}',
                                          json_extract(metadata, '$.first_name')),
                    'summary', 'Booked Tuesday 10am.',
                    'data', json_object('appointment', '2026-01-06T10:00', 'confirmed', 1),
                    'metadata', json(metadata)) END
                WHERE batch_id = ?
                """,
                (batch_id,),
            )
    finally:
        await db.dispose()
    if database_url is not None:
        return batch_id
    with contextlib.closing(sqlite3.connect(data_dir / "dialbatch.db")) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return batch_id


def _pg_finish(t0: int, fails: str) -> str:
    """The UPDATE of `build` in PostgreSQL's SQL."""
    return f"""
        UPDATE calls SET
          status = CASE WHEN {fails} THEN 'failed' ELSE 'completed' END,
          attempt = 1 + seq % 3,
          started_at = {t0} + seq,
          ended_at = {t0} + seq + 45000,
          duration_s = CASE WHEN {fails} THEN NULL ELSE 45.0 END,
          error = CASE WHEN {fails} THEN 'No answer (SIP 480 Temporarily Unavailable)'
                  ELSE NULL END,
          result = CASE WHEN {fails} THEN NULL ELSE json_build_object(
            'callId', 'sim_' || seq, 'outcome', 'booked',
            'transcript', replace('{TRANSCRIPT}', '{{name}}', metadata::json ->> 'first_name'),
            'summary', 'Booked Tuesday 10am.',
            'data', json_build_object('appointment', '2026-01-06T10:00', 'confirmed', 1),
            'metadata', metadata::json) END
        WHERE batch_id = $1
        """


def export_once(base_url: str, batch_id: str, fmt: str) -> tuple[int, int, float]:
    """(rows, bytes, seconds) of one streamed export, read as a client reads it. Rows are
    counted by their ends: a JSON line ends in \\n; a CSV row in \\r\\n (the transcripts'
    own line breaks are bare \\n inside quotes), less the header."""
    headers = {"x-api-key": API_KEY, "x-workspace-id": WORKSPACE}
    end = b"\r\n" if fmt == "csv" else b"\n"
    ends = size = 0
    tail = b""
    path = f"/v1/api/batch-calls/{batch_id}/export"
    started = time.perf_counter()
    with (
        httpx.Client(base_url=base_url, timeout=120) as client,
        client.stream("GET", path, params={"format": fmt}, headers=headers) as r,
    ):
        r.raise_for_status()
        for chunk in r.iter_raw():
            size += len(chunk)
            ends += (tail + chunk).count(end) - tail.count(end)
            tail = chunk[-1:]
    rows = ends - 1 if fmt == "csv" else ends
    return rows, size, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--formats", nargs="+", default=["csv", "jsonl"])
    parser.add_argument("--workdir", type=Path, help="keep the database here and reuse it")
    parser.add_argument("--pg", action="store_true", help="PostgreSQL (a scratch database)")
    args = parser.parse_args()

    print_machine()
    if args.pg:
        name = f"dialbatch_bench_export_{secrets.token_hex(3)}"
        plain = _pg.create_database(ADMIN_URL, name)
        url = to_async_url(plain)
        work = Path(tempfile.mkdtemp(prefix="dialbatch-export-pg-"))
        try:
            migrate.upgrade(url)
            started = time.perf_counter()
            batch_id = asyncio.run(build(work, args.calls, url))
            # What autovacuum does in time: without it every read also visits the dead
            # versions that the finishing UPDATE left (10x slower reads, measured).
            asyncio.run(_pg.execute(plain, "VACUUM ANALYZE calls"))
            print(
                f"built {args.calls:,} calls on PostgreSQL in {time.perf_counter() - started:.1f} s"
            )
            measure(args, work, batch_id, url)
        finally:
            _pg.drop_database(ADMIN_URL, name)
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="dialbatch-export-"))
    work.mkdir(parents=True, exist_ok=True)
    marker = work / MARKER
    known: dict[str, Any] = json.loads(marker.read_text()) if marker.exists() else {}
    if known.get("calls") == args.calls:
        batch_id = known["batch_id"]
        print(f"reusing {args.calls:,} calls in {work}")
    else:
        for p in work.glob("dialbatch.db*"):
            p.unlink()
        started = time.perf_counter()
        batch_id = asyncio.run(build(work, args.calls))
        marker.write_text(json.dumps({"calls": args.calls, "batch_id": batch_id}))
        print(f"built {args.calls:,} calls in {time.perf_counter() - started:.1f} s")
    db_mb = sum(p.stat().st_size for p in work.glob("dialbatch.db*")) / MB
    print(f"database {db_mb:.0f} MB")

    measure(args, work, batch_id, None)
    if not args.workdir:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, work: Path, batch_id: str, url: str | None) -> None:
    ok = True
    with run_server(work, database_url=url, dispatch=False) as server:
        headers = server.headers
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
            client.get(f"/v1/api/batch-calls/{batch_id}/status").raise_for_status()
            client.get(f"/v1/api/batch-calls/{batch_id}/export", params={"status": "active"})
        time.sleep(1.0)
        idle = server.monitor.current()
        print(f"server idle RSS {idle / MB:.1f} MB")
        for fmt in args.formats:
            for i in range(args.rounds):
                print_load(f"before {fmt} #{i + 1}")
                server.start_window()
                cpu0 = server.cpu_seconds()
                rows, size, seconds = export_once(server.base_url, batch_id, fmt)
                cpu = server.cpu_seconds() - cpu0
                peak = server.window_peak()
                rate = rows / seconds
                growth = (peak - idle) / MB
                ok &= rows == args.calls and rate >= TARGET_ROWS_PER_S and growth <= TARGET_RSS_MB
                print(
                    f"{fmt:5} #{i + 1}: {rows:,} rows, {size / MB:.0f} MB in {seconds:.2f} s = "
                    f"{rate:,.0f} rows/s; server CPU {cpu:.1f} s = {rows / max(cpu, 1e-9):,.0f} "
                    f"rows per CPU-second; server peak RSS {peak / MB:.1f} MB "
                    f"(idle + {growth:.1f} MB)",
                    flush=True,
                )
    print(
        f"targets (peak within {TARGET_RSS_MB} MB of idle, >= {TARGET_ROWS_PER_S:,} rows/s): "
        + ("met" if ok else "NOT met")
    )


if __name__ == "__main__":
    main()
