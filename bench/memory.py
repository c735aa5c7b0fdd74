"""Memory benchmark: the resident memory of dialbatch's processes, measured from outside.

Figures are the RSS of each process's whole tree (the process and every child it starts,
summed), sampled every 20 ms with psutil, together with the kernel's high-water mark
(VmHWM) of the main process; the larger is reported.

1. Idle `dialbatch serve` (API + dispatcher, as `make run` starts it) on a fresh data
   directory, after it answered /healthz and sat for `--idle-seconds`.
2. Idle `dialbatch worker` (dispatcher only) on a fresh database, likewise.
3. The serve process's peak during a ~20 MB, 300k-row CSV upload (bench/ingest.py's file),
   and that upload's wall time, so the ingest time target is checked in the same run.
4. Where the memory goes: a fresh interpreter imports the layers a process loads, one after
   the other, and prints its RSS after each; then what is *not* loaded by default (the
   provider SDKs, Alembic) and would cost if it were.

    .venv/bin/python bench/memory.py
    .venv/bin/python bench/memory.py --database-url postgresql://127.0.0.1:5432/test
    .venv/bin/python bench/memory.py --runs 3 --idle-seconds 10

With `--database-url` the serve and the worker use a scratch PostgreSQL database created on
that cluster (and dropped after); the PostgreSQL server's own processes are not counted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pg import create_database, drop_database
from _server import (
    AGENT,
    MB,
    SAMPLE_INTERVAL_S,
    add_wait_quiet,
    print_load,
    print_machine,
    read_status_kb,
    reset_hwm,
    run_server,
    server_env,
    wait_until_quiet,
)
from ingest import check_sample, write_csv

TARGET_SERVE_IDLE_MB = 110.0
TARGET_WORKER_IDLE_MB = 100.0
TARGET_UPLOAD_PEAK_MB = 250.0
TARGET_UPLOAD_SQLITE_S = 4.0
TARGET_UPLOAD_PG_S = 3.0
POST_TIMEOUT_S = 600.0
WORKER_START_TIMEOUT_S = 90.0


def tree_rss(pid: int) -> int:
    """RSS of `pid` and all its descendants, in bytes (0 once it is gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


class TreeMonitor(threading.Thread):
    """Samples the RSS of a process tree every 20 ms; `window_peak` since `mark()`."""

    def __init__(self, pid: int) -> None:
        super().__init__(name=f"tree-rss-{pid}", daemon=True)
        self.pid = pid
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._window = 0

    def run(self) -> None:
        while not self._halt.is_set():
            rss = tree_rss(self.pid)
            with self._lock:
                self._window = max(self._window, rss)
            self._halt.wait(SAMPLE_INTERVAL_S)

    def mark(self) -> None:
        reset_hwm(self.pid)
        with self._lock:
            self._window = 0

    def window_peak(self) -> int:
        with self._lock:
            sampled = self._window
        return max(sampled, read_status_kb(self.pid, "VmHWM") or 0)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=2)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


@contextlib.contextmanager
def scratch_database(admin_url: str | None) -> Iterator[str | None]:
    """A fresh PostgreSQL database on `admin_url`'s cluster (None: SQLite, nothing made)."""
    if admin_url is None:
        yield None
        return
    name = f"dialbatch_memory_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = create_database(admin_url, name)
    try:
        yield url
    finally:
        drop_database(admin_url, name)


def measure_serve_idle(database_url: str | None, idle_s: float) -> float:
    with run_server(database_url=database_url) as server:
        time.sleep(idle_s)
        return tree_rss(server.pid) / MB


def measure_worker_idle(database_url: str | None, idle_s: float) -> float:
    data = Path(tempfile.mkdtemp(prefix="dialbatch-memory-worker-"))
    env = server_env(
        data, 8000, database_url=database_url, dispatch=True, calls_per_second=1.0, extra=None
    )
    env["DIALBATCH_LOG_LEVEL"] = "info"
    script = Path(sys.executable).parent / "dialbatch"
    log_path = data / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(script), "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + WORKER_START_TIMEOUT_S
            while b"worker started" not in log_path.read_bytes():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("worker did not start:\n" + log_path.read_text())
                time.sleep(0.1)
            time.sleep(idle_s)
            return tree_rss(proc.pid) / MB
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def measure_upload(
    database_url: str | None, csv_path: Path, runs: int
) -> list[tuple[float, float]]:
    """(seconds, peak tree RSS MB) per upload of `csv_path`, each a fresh batch."""
    scheduled = (datetime.now(UTC) + timedelta(days=300)).strftime("%Y-%m-%dT%H:%M:%SZ")
    results = []
    with run_server(database_url=database_url) as server:
        monitor = TreeMonitor(server.pid)
        monitor.start()
        print(f"  serve idle before the uploads: {tree_rss(server.pid) / MB:.1f} MB", flush=True)
        with httpx.Client(base_url=server.base_url, timeout=POST_TIMEOUT_S) as client:
            for i in range(runs):
                monitor.mark()
                with csv_path.open("rb") as f:
                    started = time.perf_counter()
                    response = client.post(
                        "/v1/api/batch-calls",
                        headers=server.headers,
                        data={"agentId": AGENT, "scheduledAt": scheduled},
                        files={"file": (csv_path.name, f, "text/csv")},
                    )
                    seconds = time.perf_counter() - started
                peak = monitor.window_peak() / MB
                if response.status_code >= 300:
                    raise RuntimeError(f"upload refused: {response.status_code} {response.text}")
                after = tree_rss(server.pid) / MB
                print(
                    f"  upload #{i + 1}: {seconds:.2f} s, peak {peak:.1f} MB, "
                    f"{after:.1f} MB after ({response.json()['totalCalls']:,} calls)",
                    flush=True,
                )
                results.append((seconds, peak))
        monitor.stop()
    return results


# What a process loads, layer by layer, then what it does not load by default.
LAYERS: list[tuple[str, str]] = [
    ("settings (pydantic, pydantic-settings)", "import dialbatch.settings"),
    ("store (SQLAlchemy Core + asyncio, drivers)", "import dialbatch.store.queue, asyncpg"),
    ("CLI (typer, rich, the HTTP client commands)", "import dialbatch.cli.main"),
    ("dispatcher + providers (simulated)", "import dialbatch.server"),
    ("phone validation (phonenumbers)", "import dialbatch.domain.phone"),
    ("API (FastAPI, Starlette, routers)", "import dialbatch.api.app"),
    ("uvicorn", "import uvicorn"),
]
NOT_LOADED: list[tuple[str, str]] = [
    ("Alembic (migrations due)", "import alembic.command, dialbatch.store.migrations"),
    ("Twilio SDK (Twilio configured)", "import dialbatch.providers.twilio.adapter"),
    ("Telnyx SDK (Telnyx configured)", "import dialbatch.providers.telnyx.adapter"),
    ("sippy (SIP configured)", "import dialbatch.providers.sip.adapter"),
]

_PROBE = """
import sys
def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
print(f"{rss():.1f}", flush=True)
for code in sys.argv[1:]:
    exec(code)
    print(f"{rss():.1f}", flush=True)
"""


def probe(codes: list[str]) -> list[float]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *codes], capture_output=True, text=True, check=True
    )
    return [float(x) for x in done.stdout.split()]


def where_it_goes() -> None:
    print("\nwhere the memory goes (a fresh interpreter's RSS after each import):")
    figures = probe([code for _, code in LAYERS])
    print(f"  {'python itself':<48} {figures[0]:6.1f} MB")
    for (label, _), before, after in zip(LAYERS, figures, figures[1:], strict=False):
        print(f"  {'+ ' + label:<48} {after - before:+6.1f} MB  = {after:6.1f} MB")
    base = figures[-1]
    print("  not loaded unless needed, each on top of the above:")
    everything = [code for _, code in LAYERS]
    for label, code in NOT_LOADED:
        after = probe([*everything, code])[-1]
        print(f"  {'  ' + label:<48} {after - base:+6.1f} MB")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rows", type=int, default=300_000, help="rows of the upload (300000)")
    p.add_argument("--runs", type=int, default=2, help="uploads to the same server (2)")
    p.add_argument("--idle-seconds", type=float, default=5.0, help="idle time before measuring")
    p.add_argument("--database-url", help="PostgreSQL cluster for a scratch database")
    p.add_argument("--skip-upload", action="store_true")
    p.add_argument("--skip-imports", action="store_true")
    add_wait_quiet(p)
    args = p.parse_args(argv)

    wait_until_quiet(args.wait_quiet)
    print_machine()
    backend = "PostgreSQL (scratch database)" if args.database_url else "SQLite (embedded)"
    print(f"database: {backend}")
    target_s = TARGET_UPLOAD_PG_S if args.database_url else TARGET_UPLOAD_SQLITE_S
    with scratch_database(args.database_url) as url:
        serve_idle = measure_serve_idle(url, args.idle_seconds)
        print(f"idle serve:  {serve_idle:6.1f} MB (target <= {TARGET_SERVE_IDLE_MB:.0f} MB)")
    with scratch_database(args.database_url) as url:
        worker_idle = measure_worker_idle(url, args.idle_seconds)
        print(f"idle worker: {worker_idle:6.1f} MB (target <= {TARGET_WORKER_IDLE_MB:.0f} MB)")
    uploads: list[tuple[float, float]] = []
    if not args.skip_upload:
        with tempfile.TemporaryDirectory(prefix="dialbatch-memory-") as tmp:
            csv_path = Path(tmp) / "contacts.csv"
            generated = write_csv(csv_path, args.rows, national=False, seed=20240601)
            check_sample(csv_path, region=None)
            print(f"upload: {generated.rows:,} rows, {generated.size / 1e6:.2f} MB")
            with scratch_database(args.database_url) as url:
                uploads = measure_upload(url, csv_path, args.runs)
    if not args.skip_imports:
        where_it_goes()
    print_load("at end")

    print("\nverdicts:")
    print(f"  idle serve {serve_idle:.1f} MB <= {TARGET_SERVE_IDLE_MB:.0f}: ", end="")
    print(verdict(serve_idle <= TARGET_SERVE_IDLE_MB))
    print(f"  idle worker {worker_idle:.1f} MB <= {TARGET_WORKER_IDLE_MB:.0f}: ", end="")
    print(verdict(worker_idle <= TARGET_WORKER_IDLE_MB))
    ok = serve_idle <= TARGET_SERVE_IDLE_MB and worker_idle <= TARGET_WORKER_IDLE_MB
    if uploads:
        peak = max(u[1] for u in uploads)
        median_s = statistics.median(u[0] for u in uploads)
        print(f"  upload peak {peak:.1f} MB <= {TARGET_UPLOAD_PEAK_MB:.0f}: ", end="")
        print(verdict(peak <= TARGET_UPLOAD_PEAK_MB))
        print(f"  upload median {median_s:.2f} s <= {target_s:.0f} s: ", end="")
        print(verdict(median_s <= target_s), "(wall time: depends on the machine's load)")
        ok = ok and peak <= TARGET_UPLOAD_PEAK_MB
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
