"""Dispatch benchmark: throughput of the queue itself, against procrastinate, and pacing.

Throughput. Calls last zero time (the simulated provider, agent config
`{"outcomes": {"completed": 1}, "ringSeconds": [0, 0], "meanTalkSeconds": 0}`, whose 3 s
minimum talk is scaled to 0.3 ms by DIALBATCH_SIMULATED_TIME_SCALE=0.0001), so what is
measured is the engine: claim, intent, dial, record, outcome, counters. One workspace with
no practical limit (100,000 concurrent, 100,000 calls/s), one batch of `--calls` calls.
Each run gets a fresh database. K `dialbatch worker` processes are started first and
waited for (their LISTEN connection is up), then the batch is inserted in one transaction
(`store.batches.insert_batch`, the upload's own function; its NOTIFY wakes the workers).
Throughput = calls / (last call's end - the insert's commit): every call is one claim plus
one completion. The embedded SQLite server is one `dialbatch serve` (API + dispatcher,
`bench/_server.py`) on its own file, fed the same way (its dispatcher finds the batch by
polling, so up to ~0.3 s of the figure is the poll interval).

Baseline, in the same run, on the same PostgreSQL: procrastinate (the job queue from PyPI a
user would otherwise build this on), its schema applied to a fresh database, a no-op async
task, K worker processes (this script, `--procrastinate-worker`, calling
`app.run_worker_async`) started and waited for (LISTEN up), then the same number of jobs
deferred in one statement (`batch_defer_async`, one transaction, like the batch insert);
throughput = jobs / (last `succeeded` event - the defer's commit). Its settings are printed
(concurrency per worker, LISTEN/NOTIFY on, polling interval, pool size). The systems
alternate per K (dialbatch K, procrastinate K), so background load falls on both alike.

Pacing. A workspace limited to 20 calls/s (cap 1,000), zero-length calls, 2 workers on
PostgreSQL for `--pace-seconds` (60; 10 with --quick): the achieved start rate from
`attempts.started_at` in the steady window (after the first second and before the last
one) and over the whole run (first to last start), the deviations from 20/s, the busiest
and quietest 1-s buckets, and the most calls live at once. Then a concurrency cap: 5 concurrent at
20 calls/s with calls of 1 s (time scale 1/3 of the 3 s talk): the most calls live at once,
from the [started_at, ended_at] intervals, must not exceed 5. Idle: 2 workers on an empty
database for a few seconds, CPU used by them and by their PostgreSQL backends.

    .venv/bin/python bench/dispatch.py                 # 20,000 calls; 1, 2, 4 workers; ~6 min
    .venv/bin/python bench/dispatch.py --quick         # smoke test, ~1.5 min
    .venv/bin/python bench/dispatch.py --calls 50000 --workers 2 --skip-pacing
    .venv/bin/python bench/dispatch.py --pg-url postgresql://root@127.0.0.1:5432/test

Databases are named `dialbatch_bench_<pid>_<n>` / `procrastinate_bench_<pid>_<n>` and
dropped at the end, also after Ctrl-C; every process started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pg import create_database, drop_database, with_database
from _server import add_wait_quiet, print_load, print_machine, run_server, wait_until_quiet
from dialbatch.domain.ids import new_batch_id
from dialbatch.settings import to_async_url
from dialbatch.store import batches, migrate, workspaces
from dialbatch.store.engine import Database

WS = "ws_dispatch"
AGENT = "agent_zero"
ZERO_CALL = {"outcomes": {"completed": 1}, "ringSeconds": [0, 0], "meanTalkSeconds": 0}
MIN_TALK_S = 3.0  # providers/simulated.py: a completed call talks at least 3 s
ZERO_SCALE = 0.0001  # 3 s -> 0.3 ms
CHUNK = 5000
POLL_S = 0.2
STALL_S = 60.0  # a run whose progress stops this long is reported incomplete
STOP_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 60.0
PACE_RATE = 20.0
CAP = 5
CAP_CALL_S = 1.0

PROCRASTINATE_CONCURRENCY = 20
PROCRASTINATE_POLL_S = 0.1  # fallback polling; LISTEN/NOTIFY wakes the workers
PROCRASTINATE_QUEUE = "bench"


# ---------------------------------------------------------------- processes and databases


@dataclass
class Cleanup:
    """Everything this run started or created, undone in reverse on exit or Ctrl-C."""

    admin_url: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    counter: int = 0

    def new_database(self, prefix: str) -> str:
        self.counter += 1
        name = f"{prefix}_bench_{os.getpid()}_{self.counter}"
        url = create_database(self.admin_url, name)
        self.databases.append(name)
        return url

    def drop_database(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        drop_database(self.admin_url, name)
        with contextlib.suppress(ValueError):
            self.databases.remove(name)

    def start(self, cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop(self, procs: list[subprocess.Popen[bytes]]) -> None:
        """SIGTERM (both kinds of worker drain and exit), then SIGKILL after a timeout."""
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"  process {p.pid} did not stop in time: killed", file=sys.stderr)
                p.kill()
                p.wait()
            with contextlib.suppress(ValueError):
                self.procs.remove(p)

    def close(self) -> None:
        self.stop(list(self.procs))
        for name in list(self.databases):
            with contextlib.suppress(Exception):
                self.drop_database(with_database(self.admin_url, name))


async def _fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    for attempt in range(20):  # other users of a shared server may hold every connection
        try:
            conn = await asyncpg.connect(url)
            break
        except asyncpg.TooManyConnectionsError:
            if attempt == 19:
                raise
            await asyncio.sleep(0.5)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    return asyncio.run(_fetch(url, sql, *args))


def wait_listening(url: str, k: int, procs: list[subprocess.Popen[bytes]], logs: Path) -> None:
    """Until k connections to the database are LISTENing: every worker is ready to be woken."""
    name = urlsplit(url).path.lstrip("/")
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"worker exited with {p.returncode}; see {logs}")
        rows = fetch(
            url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'LISTEN%'",
            name,
        )
        if rows[0][0] >= k:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{k} workers not listening after {READY_TIMEOUT_S:.0f} s; see {logs}")


class CpuMeter:
    """CPU seconds used by some processes (workers, and the database's backends) meanwhile."""

    def __init__(self, pids: list[int], db_url: str | None) -> None:
        self.pids = pids
        self.db_url = db_url
        self.start = self._sample()

    def _backend_pids(self) -> list[int]:
        if self.db_url is None:
            return []
        name = urlsplit(self.db_url).path.lstrip("/")
        rows = fetch(self.db_url, "SELECT pid FROM pg_stat_activity WHERE datname = $1", name)
        return [r[0] for r in rows]

    def _sample(self) -> dict[tuple[str, int], float]:
        out: dict[tuple[str, int], float] = {}
        for kind, pids in (("proc", self.pids), ("pg", self._backend_pids())):
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    t = psutil.Process(pid).cpu_times()
                    out[(kind, pid)] = t.user + t.system
        return out

    def used(self) -> tuple[float, float]:
        """(workers' CPU s, backends' CPU s) since construction (backends that closed are lost)."""
        end = self._sample()
        total = {"proc": 0.0, "pg": 0.0}
        for key, value in end.items():
            total[key[0]] += value - self.start.get(key, 0.0)
        return total["proc"], total["pg"]


@contextlib.contextmanager
def profiled(procs: list[subprocess.Popen[bytes]], out: Path | None, name: str) -> Iterator[None]:
    """With `--profile DIR`: py-spy samples each process meanwhile (raw collapsed stacks,
    DIR/<name>-<i>.txt; wall-clock samples of non-idle threads)."""
    if out is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out.mkdir(parents=True, exist_ok=True)
    spies = [
        subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(p.pid),
                "--format",
                "raw",
                "--rate",
                "200",
                "--nonblocking",
                "-o",
                str(out / f"{name}-{i}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i, p in enumerate(procs)
    ]
    time.sleep(0.5)
    try:
        yield
    finally:
        for spy_proc in spies:
            spy_proc.send_signal(signal.SIGINT)
        for spy_proc in spies:
            try:
                spy_proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy_proc.kill()
                spy_proc.wait()


OPEN_CALLS = (
    "SELECT coalesce(sum(n), 0) FROM batch_counters WHERE batch_id = {p}"
    " AND status NOT IN ('completed', 'failed', 'cancelled')"
)


def open_calls(url: str, batch_id: str) -> int:
    """Calls of the batch not final yet, from its counters (cheap at any size)."""
    return int(fetch(url, OPEN_CALLS.format(p="$1"), batch_id)[0][0])


def jobs_left(url: str) -> int:
    rows = fetch(url, "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')")
    return int(rows[0][0])


# ---------------------------------------------------------------- dialbatch


def worker_env(db_url: str, time_scale: float, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALBATCH_")}
    env.update(
        DIALBATCH_DATABASE_URL=db_url,
        DIALBATCH_SIMULATED_TIME_SCALE=str(time_scale),
        DIALBATCH_LOG_LEVEL="warning",
        DIALBATCH_DATA_DIR=str(data_dir),
    )
    return env


def worker_command() -> list[str]:
    script = Path(sys.executable).parent / "dialbatch"
    if script.exists():
        return [str(script), "worker"]
    return [sys.executable, "-c", "from dialbatch.cli.main import app; app()", "worker"]


async def _chunks(n: int) -> AsyncIterator[list[tuple[int, str, str]]]:
    for start in range(0, n, CHUNK):
        yield [
            (i, f"+1202{i:07d}", json.dumps({"i": i})) for i in range(start, min(n, start + CHUNK))
        ]


async def prepare_workspace(
    url: str, *, max_concurrent: int, calls_per_second: float, migrate_first: bool = True
) -> None:
    """Migrate (when asked) and create the workspace and its zero-length agent."""
    async_url = to_async_url(url)
    if migrate_first:
        await asyncio.to_thread(migrate.upgrade, async_url)
    db = Database(async_url)
    try:
        async with db.write() as conn:
            await workspaces.create_workspace(
                conn,
                workspace_id=WS,
                max_concurrent_calls=max_concurrent,
                calls_per_second=calls_per_second,
            )
            await workspaces.create_agent(
                conn,
                WS,
                name="zero",
                provider="simulated",
                provider_config=ZERO_CALL,
                agent_id=AGENT,
            )
    finally:
        await db.dispose()


async def insert_calls(url: str, n: int) -> tuple[str, float]:
    """One batch of n calls in one transaction; returns (batch id, wall time of the commit)."""
    db = Database(to_async_url(url))
    batch_id = new_batch_id()
    try:
        async with db.write() as conn:
            await batches.insert_batch(
                conn,
                batch_id=batch_id,
                workspace_id=WS,
                agent_id=AGENT,
                scheduled_at=None,
                callback_policy={"enabled": False, "maxAttempts": 1, "gaps": []},
                source_name=None,
                rows=_chunks(n),
            )
        committed = time.time()
    finally:
        await db.dispose()
    return batch_id, committed


@dataclass
class Run:
    system: str
    workers: int
    n: int
    finished: int
    seconds: float
    first_s: float  # from the commit to the first dial or job start
    worker_cpu: float
    db_cpu: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.finished / self.seconds if self.seconds > 0 else 0.0


def _wait_for(remaining: Callable[[], int], stall_s: float = STALL_S) -> bool:
    """Poll until nothing remains; give up (False) when nothing moved for `stall_s`: on a
    loaded shared machine a run may be slow, but it must not hang."""
    last, moved = remaining(), time.monotonic()
    while last > 0:
        if time.monotonic() - moved > stall_s:
            return False
        time.sleep(POLL_S)
        now = remaining()
        if now < last:
            moved = time.monotonic()
        last = now
    return True


def dialbatch_pg(cleanup: Cleanup, n: int, k: int, tmp: Path, profile: Path | None) -> Run:
    url = cleanup.new_database("dialbatch")
    try:
        asyncio.run(prepare_workspace(url, max_concurrent=100_000, calls_per_second=100_000))
        log = tmp / f"dialbatch-pg-{k}.log"
        env = worker_env(url, ZERO_SCALE, tmp)
        procs = [cleanup.start(worker_command(), env, log) for _ in range(k)]
        try:
            wait_listening(url, k, procs, log)
            with profiled(procs, profile, f"dialbatch-pg-{k}"):
                cpu = CpuMeter([p.pid for p in procs], url)
                batch_id, t0 = asyncio.run(insert_calls(url, n))
                ok = _wait_for(lambda: open_calls(url, batch_id))
                worker_cpu, db_cpu = cpu.used()
        finally:
            cleanup.stop(procs)
        row = fetch(
            url,
            "SELECT count(*) FILTER (WHERE status IN ('completed', 'failed')),"
            " count(*) FILTER (WHERE status = 'completed'), max(ended_at),"
            " (SELECT min(started_at) FROM attempts) FROM calls",
        )[0]
        finished, completed, last_end, first_start = row[0], row[1], row[2], row[3]
        note = "" if ok and completed == n else f"STALLED/INCOMPLETE: {completed} completed"
        # Every call dialed exactly once, and the counters agree with the rows.
        dials, counted = fetch(
            url,
            "SELECT (SELECT count(*) FROM attempts),"
            " (SELECT coalesce(sum(n), 0) FROM batch_counters WHERE status = 'completed')",
        )[0]
        if dials != n:
            note += f"; {dials} dials for {n} calls"
        if counted != completed:
            note += f"; counters say {counted} completed, rows {completed}"
        errors = fetch(
            url,
            "SELECT error, count(*) FROM calls WHERE status = 'failed' GROUP BY error"
            " ORDER BY 2 DESC LIMIT 3",
        )
        note += "".join(f"; {r[1]} failed: {r[0]}" for r in errors)
        if first_start:
            t0 = min(t0, first_start / 1000.0)  # see _procrastinate_defer
        return Run(
            "dialbatch PostgreSQL",
            k,
            n,
            finished,
            (last_end / 1000.0 - t0) if last_end else 0.0,
            (first_start / 1000.0 - t0) if first_start else 0.0,
            worker_cpu,
            db_cpu,
            note,
        )
    finally:
        cleanup.drop_database(url)


def dialbatch_sqlite(n: int, tmp: Path) -> Run:
    data = tmp / "sqlite-serve"
    env = {
        "DIALBATCH_SIMULATED_TIME_SCALE": str(ZERO_SCALE),
        "DIALBATCH_DEMO_MAX_CONCURRENT_CALLS": "100000",
    }
    with run_server(data, extra_env=env, calls_per_second=10_000) as server:
        sqlite_url = f"sqlite:///{server.sqlite_path}"
        asyncio.run(
            prepare_workspace(
                sqlite_url, max_concurrent=100_000, calls_per_second=100_000, migrate_first=False
            )
        )
        cpu = CpuMeter([server.pid], None)
        batch_id, t0 = asyncio.run(insert_calls(sqlite_url, n))

        def query(sql: str, *args: Any) -> Any:
            with contextlib.closing(sqlite3.connect(server.sqlite_path, timeout=30)) as con:
                return con.execute(sql, args).fetchone()

        ok = _wait_for(lambda: int(query(OPEN_CALLS.format(p="?"), batch_id)[0]))
        worker_cpu, _ = cpu.used()
        row = query(
            "SELECT sum(status IN ('completed', 'failed')), sum(status = 'completed'),"
            " max(ended_at), (SELECT min(started_at) FROM attempts) FROM calls"
        )
    finished, completed, last_end, first_start = row
    if first_start:
        t0 = min(t0, first_start / 1000.0)
    note = "" if ok and completed == n else f"STALLED/INCOMPLETE: {completed} completed"
    return Run(
        "dialbatch SQLite (serve)",
        1,
        n,
        int(finished or 0),
        (last_end / 1000.0 - t0) if last_end else 0.0,
        (first_start / 1000.0 - t0) if first_start else 0.0,
        worker_cpu,
        0.0,
        note + " (db CPU is in-process)",
    )


# ---------------------------------------------------------------- procrastinate


def procrastinate_app(conninfo: str, pool_size: int) -> tuple[Any, Any]:
    import procrastinate

    # It warns that the App lives in __main__ (its CLI could not import it by path); the
    # workers here are started by this script, so that does not apply.
    logging.getLogger("procrastinate").setLevel(logging.ERROR)

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=conninfo, min_size=pool_size, max_size=pool_size
        )
    )

    @app.task(name="noop", queue=PROCRASTINATE_QUEUE)
    async def noop() -> None:
        return None

    return app, noop


def procrastinate_worker_main(conninfo: str, concurrency: int, polling_s: float) -> None:
    """A procrastinate worker process (`--procrastinate-worker`): SIGTERM stops it."""
    app, _ = procrastinate_app(conninfo, concurrency + 2)

    async def main() -> None:
        async with app.open_async():
            await app.run_worker_async(
                queues=[PROCRASTINATE_QUEUE],
                concurrency=concurrency,
                fetch_job_polling_interval=polling_s,
                listen_notify=True,
                install_signal_handlers=True,
                wait=True,
            )

    asyncio.run(main())


async def _procrastinate_setup(conninfo: str) -> None:
    app, _ = procrastinate_app(conninfo, 2)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


async def _procrastinate_defer(conninfo: str, n: int) -> float:
    """Defer n jobs in one statement; returns the time it returned. That is after the
    commit by however long procrastinate takes to build n Job objects from the reply, so
    callers take the earlier of it and the first job's start (which follows the commit)."""
    app, noop = procrastinate_app(conninfo, 2)
    async with app.open_async():
        await noop.batch_defer_async(*({} for _ in range(n)))
        return time.time()


def procrastinate_pg(
    cleanup: Cleanup, n: int, k: int, tmp: Path, concurrency: int, profile: Path | None
) -> Run:
    url = cleanup.new_database("procrastinate")
    try:
        asyncio.run(_procrastinate_setup(url))
        log = tmp / f"procrastinate-{k}.log"
        env = {k2: v for k2, v in os.environ.items() if not k2.startswith("DIALBATCH_")}
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--procrastinate-worker",
            url,
            "--concurrency",
            str(concurrency),
        ]
        procs = [cleanup.start(cmd, env, log) for _ in range(k)]
        try:
            wait_listening(url, k, procs, log)
            with profiled(procs, profile, f"procrastinate-{k}"):
                cpu = CpuMeter([p.pid for p in procs], url)
                t0 = asyncio.run(_procrastinate_defer(url, n))
                ok = _wait_for(lambda: jobs_left(url))
                worker_cpu, db_cpu = cpu.used()
        finally:
            cleanup.stop(procs)
        row = fetch(
            url,
            "SELECT (SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'),"
            " extract(epoch FROM max(at) FILTER (WHERE type = 'succeeded')),"
            " extract(epoch FROM min(at) FILTER (WHERE type = 'started'))"
            " FROM procrastinate_events",
        )[0]
        done, last_end, first_start = row[0], row[1], row[2]
        if first_start:
            t0 = min(t0, float(first_start))  # see _procrastinate_defer
        note = "" if ok and done == n else f"STALLED/INCOMPLETE: {done} succeeded"
        return Run(
            "procrastinate PostgreSQL",
            k,
            n,
            done,
            (float(last_end) - t0) if last_end else 0.0,
            (float(first_start) - t0) if first_start else 0.0,
            worker_cpu,
            db_cpu,
            note,
        )
    finally:
        cleanup.drop_database(url)


# ---------------------------------------------------------------- pacing


@dataclass
class Pacing:
    label: str
    configured: float
    cap: int
    calls: int
    starts: int
    steady_rate: float
    whole_rate: float
    busiest_s: int
    quietest_s: int
    max_live: int
    mean_call_s: float

    @property
    def expected(self) -> float:
        """The rate the limits allow: calls/s, or cap / call length when the cap binds."""
        if self.mean_call_s <= 0:
            return self.configured
        return min(self.configured, self.cap / self.mean_call_s)

    @property
    def deviation(self) -> float:
        return (self.steady_rate / self.expected - 1.0) * 100.0

    @property
    def whole_deviation(self) -> float:
        return (self.whole_rate / self.expected - 1.0) * 100.0


def max_live(intervals: list[tuple[int, int]]) -> int:
    """The most intervals open at once; one ending in the ms another starts does not overlap."""
    events = [(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals]
    events.sort(key=lambda ev: (ev[0], ev[1]))  # ends (-1) before starts at the same ms
    live = best = 0
    for _, delta in events:
        live += delta
        best = max(best, live)
    return best


def analyse_pacing(
    label: str, rows: list[asyncpg.Record], configured: float, cap: int, calls: int
) -> Pacing:
    starts = sorted(r["started_at"] for r in rows)
    first, last = starts[0], starts[-1]
    lo, hi = first + 1000, last - 1000  # past the start-up, before the tail
    inside = [s for s in starts if lo <= s < hi]
    steady = len(inside) / ((hi - lo) / 1000.0) if hi > lo else 0.0
    whole = (len(starts) - 1) / ((last - first) / 1000.0) if last > first else 0.0
    buckets: dict[int, int] = {}
    for s in inside:
        buckets[(s - lo) // 1000] = buckets.get((s - lo) // 1000, 0) + 1
    full = [buckets.get(i, 0) for i in range((hi - lo) // 1000)]  # whole seconds only
    intervals = [(r["started_at"], r["ended_at"]) for r in rows if r["ended_at"] is not None]
    return Pacing(
        label=label,
        configured=configured,
        cap=cap,
        calls=calls,
        starts=len(starts),
        steady_rate=steady,
        whole_rate=whole,
        busiest_s=max(full) if full else 0,
        quietest_s=min(full) if full else 0,
        max_live=max_live(intervals),
        mean_call_s=statistics.fmean((e - s) / 1000.0 for s, e in intervals) if intervals else 0,
    )


def pacing_run(
    cleanup: Cleanup,
    tmp: Path,
    *,
    label: str,
    seconds: float,
    rate: float,
    cap: int,
    call_s: float,
    workers: int = 2,
) -> Pacing:
    """`workers` workers, a workspace at `rate` calls/s and `cap` concurrent, calls of
    about `call_s` seconds, enough of them to keep it busy for `seconds`."""
    url = cleanup.new_database("dialbatch")
    try:
        asyncio.run(prepare_workspace(url, max_concurrent=cap, calls_per_second=rate))
        effective = min(rate, cap / call_s) if call_s > 0 else rate
        n = int(effective * seconds)
        scale = call_s / MIN_TALK_S if call_s > 0 else ZERO_SCALE
        log = tmp / f"pacing-{rate:g}-{cap}.log"
        env = worker_env(url, scale, tmp)
        procs = [cleanup.start(worker_command(), env, log) for _ in range(workers)]
        try:
            wait_listening(url, workers, procs, log)
            batch_id, _ = asyncio.run(insert_calls(url, n))
            _wait_for(lambda: open_calls(url, batch_id))
        finally:
            cleanup.stop(procs)
        rows = fetch(url, "SELECT started_at, ended_at FROM attempts")
        return analyse_pacing(label, rows, rate, cap, n)
    finally:
        cleanup.drop_database(url)


def idle_cost(cleanup: Cleanup, tmp: Path, seconds: float, workers: int = 2) -> tuple[float, float]:
    url = cleanup.new_database("dialbatch")
    try:
        asyncio.run(prepare_workspace(url, max_concurrent=10, calls_per_second=5))
        log = tmp / "idle.log"
        procs = [
            cleanup.start(worker_command(), worker_env(url, 1.0, tmp), log) for _ in range(workers)
        ]
        try:
            wait_listening(url, workers, procs, log)
            time.sleep(1.0)
            cpu = CpuMeter([p.pid for p in procs], url)
            time.sleep(seconds)
            worker_cpu, db_cpu = cpu.used()
        finally:
            cleanup.stop(procs)
        return worker_cpu / seconds * 100.0, db_cpu / seconds * 100.0
    finally:
        cleanup.drop_database(url)


# ---------------------------------------------------------------- report


def print_runs(runs: list[Run]) -> None:
    print()
    print(
        f"{'system':<26} {'workers':>7} {'calls':>7} {'seconds':>8} {'per s':>8} "
        f"{'1st (s)':>7} {'worker CPU ms/call':>18} {'db CPU ms/call':>14}  note"
    )
    for r in runs:
        per = 1000.0 / r.finished if r.finished else 0.0
        print(
            f"{r.system:<26} {r.workers:>7} {r.finished:>7} {r.seconds:>8.2f} {r.rate:>8.0f} "
            f"{r.first_s:>7.2f} {r.worker_cpu * per:>18.2f} {r.db_cpu * per:>14.2f}  {r.note}"
        )
    print(
        "  per s: calls (jobs) / (last end - commit of the insert); 1st: commit to first "
        "dial (job start); CPU: the worker processes' and their PostgreSQL backends'"
    )
    by = {(r.system, r.workers): r for r in runs}
    for k in sorted({r.workers for r in runs if r.system.startswith("dialbatch Postgre")}):
        d, p = by.get(("dialbatch PostgreSQL", k)), by.get(("procrastinate PostgreSQL", k))
        if d and p and p.rate > 0:
            print(f"  {k} worker(s): dialbatch / procrastinate = {d.rate / p.rate:.2f}x")


def print_pacing(results: list[Pacing]) -> None:
    print()
    print(
        f"{'pacing run':<28} {'conf/s':>6} {'cap':>5} {'expect':>6} {'starts':>6} "
        f"{'steady/s':>8} {'dev %':>6} {'whole/s':>7} {'1-s min..max':>12} {'max live':>8} "
        f"{'call s':>6}"
    )
    for p in results:
        print(
            f"{p.label:<28} {p.configured:>6.0f} {p.cap:>5} {p.expected:>6.2f} {p.starts:>6} "
            f"{p.steady_rate:>8.2f} {p.deviation:>+6.2f} {p.whole_rate:>7.2f} "
            f"{p.quietest_s:>5}..{p.busiest_s:<6} {p.max_live:>8} {p.mean_call_s:>6.2f}"
        )
    print(
        "  expect: the rate the limits allow (calls/s, or cap / mean call length); steady: "
        "starts from 1 s after the first to 1 s before the last; whole: first to last start"
    )


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--procrastinate-worker"]:
        w = argparse.ArgumentParser()
        w.add_argument("--procrastinate-worker", dest="conninfo", required=True)
        w.add_argument("--concurrency", type=int, default=PROCRASTINATE_CONCURRENCY)
        w.add_argument("--polling", type=float, default=PROCRASTINATE_POLL_S)
        wa = w.parse_args(argv)
        procrastinate_worker_main(wa.conninfo, wa.concurrency, wa.polling)
        return 0

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, help="calls (and jobs) per throughput run (20,000)")
    ap.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    ap.add_argument("--quick", action="store_true", help="2,000 calls, 10 s of pacing")
    ap.add_argument("--pg-url", default="postgresql://root@127.0.0.1:5432/test")
    ap.add_argument("--pace-seconds", type=float, help="length of the 20/s pacing run (60)")
    ap.add_argument(
        "--procrastinate-concurrency",
        type=int,
        default=PROCRASTINATE_CONCURRENCY,
        help=f"jobs at once per procrastinate worker ({PROCRASTINATE_CONCURRENCY})",
    )
    ap.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy the PostgreSQL throughput runs' workers into DIR (pip install py-spy)",
    )
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-sqlite", action="store_true")
    ap.add_argument("--skip-procrastinate", action="store_true")
    ap.add_argument("--skip-pacing", action="store_true")
    add_wait_quiet(ap)
    args = ap.parse_args(argv)
    n = args.calls or (2_000 if args.quick else 20_000)
    pace_s = args.pace_seconds or (10.0 if args.quick else 60.0)
    counts = [int(x) for x in args.workers.split(",") if x.strip()]
    if args.wait_quiet:
        wait_until_quiet(args.wait_quiet)

    def interrupted(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    print_machine()
    version = fetch(args.pg_url, "SHOW server_version")[0][0]
    import procrastinate

    print(f"PostgreSQL {version} at {args.pg_url}; procrastinate {procrastinate.__version__}")
    print(
        f"dialbatch workers: `dialbatch worker`, defaults (poll 0.25 s, group 100, pool 10+10), "
        f"time scale {ZERO_SCALE}; procrastinate workers: concurrency "
        f"{args.procrastinate_concurrency}, listen_notify on, polling "
        f"{PROCRASTINATE_POLL_S} s, pool {args.procrastinate_concurrency + 2}, delete_jobs never"
    )
    cleanup = Cleanup(args.pg_url)
    runs: list[Run] = []
    paced: list[Pacing] = []
    idle: tuple[float, float] | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="dialbatch-dispatch-") as tmp_name:
            tmp = Path(tmp_name)
            if not args.skip_throughput:
                for k in counts:
                    runs.append(dialbatch_pg(cleanup, n, k, tmp, args.profile))
                    _progress(runs[-1])
                    if not args.skip_procrastinate:
                        runs.append(
                            procrastinate_pg(
                                cleanup, n, k, tmp, args.procrastinate_concurrency, args.profile
                            )
                        )
                        _progress(runs[-1])
                if not args.skip_sqlite:
                    runs.append(dialbatch_sqlite(n, tmp))
                    _progress(runs[-1])
            if not args.skip_pacing:
                paced.append(
                    pacing_run(
                        cleanup,
                        tmp,
                        label=f"{PACE_RATE:.0f}/s, ~0 s calls, {pace_s:.0f} s",
                        seconds=pace_s,
                        rate=PACE_RATE,
                        cap=1000,
                        call_s=0.0,
                    )
                )
                cap_s = pace_s / 3
                paced.append(
                    pacing_run(
                        cleanup,
                        tmp,
                        label=f"cap {CAP}, {CAP_CALL_S:.0f} s calls, {cap_s:.0f} s",
                        seconds=cap_s,
                        rate=PACE_RATE,
                        cap=CAP,
                        call_s=CAP_CALL_S,
                    )
                )
                idle = idle_cost(cleanup, tmp, 3.0 if args.quick else 10.0)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping workers and dropping databases", file=sys.stderr)
        return 130
    finally:
        cleanup.close()
    print_load("at end")
    if runs:
        print_runs(runs)
    if paced:
        print_pacing(paced)
        uncapped, capped = paced
        print(
            f"  pacing: {uncapped.steady_rate:.2f}/s for {PACE_RATE:.0f}/s configured "
            f"({uncapped.deviation:+.2f} %, target within ±2 %; first to last start "
            f"{uncapped.whole_rate:.2f}/s, {uncapped.whole_deviation:+.2f} %); cap {CAP}: at most "
            f"{capped.max_live} live ({'ok' if capped.max_live <= CAP else 'EXCEEDED'})"
        )
    if idle is not None:
        print(
            f"  idle, 2 workers, no batches: workers {idle[0]:.1f} % of a core, "
            f"their PostgreSQL backends {idle[1]:.1f} %"
        )
    return 0


def _progress(run: Run) -> None:
    print(
        f"  {run.system}, {run.workers} worker(s): {run.finished} in {run.seconds:.2f} s = "
        f"{run.rate:.0f}/s; CPU: workers {run.worker_cpu:.1f} s, db {run.db_cpu:.1f} s {run.note}",
        flush=True,
    )
    print_load("now")


if __name__ == "__main__":
    sys.exit(main())
