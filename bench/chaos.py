"""Chaos run: the API, several workers and the carrier process on PostgreSQL, a batch of
short calls, and a worker SIGKILLed every few seconds (then restarted). At the end it
checks, and prints, what at-most-once and the limits promise:

- every call in a final state (0 lost);
- no dial beyond the retry policy (each call's dials replayed through domain/retry.py);
- no dial_key rang twice, and the dials the carrier received are exactly the attempts the
  engine recorded as having reached it, with the same outcomes;
- counters equal to COUNT(*) by status, in the table and through the API;
- the concurrency cap never exceeded (from the carrier's record of overlapping calls),
  and the limiter's `active` back to 0.

`--pg-restart` runs on a private PostgreSQL cluster instead and restarts it when about a
third of the batch is done: API and workers must recover by themselves.

    .venv/bin/python bench/chaos.py                     # 10,000 calls, 3 workers, kills
    .venv/bin/python bench/chaos.py --pg-restart --calls 2000 --workers 2 --no-kills

tests/test_chaos.py and tests/test_pg_restart.py run short versions of the same code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from _pg import create_database, drop_database
from dialbatch.domain.outcomes import Outcome
from dialbatch.domain.retry import AttemptHistory, decide, parse_callback_policy
from dialbatch.settings import to_async_url
from dialbatch.store import migrate, workspaces
from dialbatch.store.engine import Database

HOST = "127.0.0.1"
WORKSPACE = "ws_chaos"
AGENT = "agent_chaos"
SECRET = "chaos-carrier-secret"
TWILIO_ACCOUNT = "AC" + "c" * 32
FINAL = ("completed", "failed", "cancelled")
ADMIN_URL = os.environ.get("DIALBATCH_TEST_PG_URL", "postgresql://127.0.0.1:5432/test")
PG_BIN = Path("/usr/lib/postgresql")


@dataclass
class Options:
    calls: int = 10_000
    workers: int = 3
    cap: int = 20
    rate: float = 200.0
    kills: bool = True
    kill_every_s: tuple[float, float] = (3.0, 6.0)
    max_kills: int | None = None
    time_scale: float = 0.02
    drop_rate: float = 0.01
    duplicate_rate: float = 0.01
    claim_lease_s: float = 3.0
    dial_lease_s: float = 3.0
    reconcile_quiet_s: float = 2.0
    connection_attempts: int = 3
    timeout_s: float = 3600.0
    pg_restart_at: float | None = None  # share of calls final when PostgreSQL restarts
    seed: int = 11
    # "carrier" (the simulated carrier process) or "twilio": the Twilio stand-in with a Calls
    # list endpoint, dropping `drop_rate` of the final status callbacks.
    provider: str = "carrier"
    policy: dict[str, Any] = field(
        default_factory=lambda: {"enabled": True, "maxAttempts": 3, "gaps": [{"hours": 0.0002}]}
    )
    agent_config: dict[str, Any] = field(
        default_factory=lambda: {
            "outcomes": {
                "completed": 0.6,
                "busy": 0.1,
                "no-answer": 0.1,
                "voicemail": 0.1,
                "failed": 0.1,
            },
            "ringSeconds": [1, 4],
            "meanTalkSeconds": 10,
            "ringTimeoutSeconds": 8,
            "startErrorRate": 0.02,
        }
    )


@dataclass
class Report:
    options: Options
    batch_id: str = ""
    duration_s: float = 0.0
    kills: int = 0
    restarts: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    counter_counts: dict[str, int] = field(default_factory=dict)
    api_counts: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    dials: int = 0
    attempts: int = 0
    attempts_reached: int = 0
    retried_calls: int = 0
    max_dials_per_call: int = 0
    beyond_policy: list[str] = field(default_factory=list)
    key_mismatch: list[str] = field(default_factory=list)
    outcome_mismatch: list[str] = field(default_factory=list)
    max_live: int = 0
    carrier_live_at_end: int = 0
    limiter_active: int = -1
    carrier_stats: dict[str, Any] = field(default_factory=dict)
    reconciled: int = 0
    crashes: list[str] = field(default_factory=list)  # workers that exited by themselves
    unknown: int = 0  # calls failed "Call outcome unknown"
    deadlocks: int = 0  # "deadlock detected" in any process's log
    quiet_checked: int = 0
    pg: dict[str, float] = field(default_factory=dict)

    def violations(self) -> list[str]:
        o = self.options
        found = []
        if self.lost:
            found.append(f"{self.lost} calls not in a final state")
        if sum(self.status_counts.values()) != o.calls:
            found.append(f"{sum(self.status_counts.values())} calls in the table, not {o.calls}")
        if self.counter_counts != self.status_counts:
            found.append(f"counters {self.counter_counts} != COUNT(*) {self.status_counts}")
        if self.api_counts != self.status_counts:
            found.append(f"API status {self.api_counts} != COUNT(*) {self.status_counts}")
        if self.beyond_policy:
            found.append(f"dials beyond policy: {self.beyond_policy[:5]}")
        if self.key_mismatch:
            found.append(f"carrier dials != engine attempts: {self.key_mismatch[:5]}")
        if self.outcome_mismatch:
            found.append(f"outcomes differ: {self.outcome_mismatch[:5]}")
        if self.max_live > o.cap:
            found.append(f"{self.max_live} calls live at once at the carrier, cap {o.cap}")
        if self.carrier_live_at_end:
            found.append(f"{self.carrier_live_at_end} calls still live at the carrier")
        if self.limiter_active != 0:
            found.append(f"limiter active = {self.limiter_active} at the end")
        if self.options.provider == "twilio" and self.unknown:
            found.append(f"{self.unknown} calls ended 'outcome unknown'")
        if self.deadlocks:
            found.append(f"{self.deadlocks} deadlocks in the logs")
        return found


# ---- processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Proc:
    """A child process with its log file; stopped (SIGTERM, then SIGKILL) on close."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.cmd, self.env = name, cmd, env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.cmd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye; its leases simply run out."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.popen.terminate()
        try:
            self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def wait_http(url: str, proc: Proc, timeout_s: float = 90.0, ok: int = 200) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.log_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == ok:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"{proc.name} not up after {timeout_s:.0f}s:\n{proc.log_text()[-3000:]}")


def dialbatch_cmd(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "dialbatch"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from dialbatch.cli.main import app; app()", *args]


class Cluster:
    """Carrier, one API process (no dispatcher) and N workers sharing one database."""

    def __init__(self, opts: Options, database_url: str, work_dir: Path) -> None:
        self.opts = opts
        self.database_url = database_url
        self.dir = work_dir
        self.api_port, self.carrier_port = free_port(), free_port()
        self.api_url = f"http://{HOST}:{self.api_port}"
        self.carrier_url = f"http://{HOST}:{self.carrier_port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIALBATCH_")}
        env.update(
            DIALBATCH_HOST=HOST,
            DIALBATCH_PORT=str(self.api_port),
            DIALBATCH_DATA_DIR=str(work_dir / "data"),
            DIALBATCH_DATABASE_URL=database_url,
            DIALBATCH_CARRIER_URL=self.carrier_url,
            DIALBATCH_CARRIER_SECRET=SECRET,
            DIALBATCH_PUBLIC_URL=self.api_url,
            DIALBATCH_DEMO_API_KEY="chaos-demo-key-000000000001",
            DIALBATCH_LOG_LEVEL="warning",
            DIALBATCH_CLAIM_LEASE_S=str(opts.claim_lease_s),
            DIALBATCH_DIAL_LEASE_S=str(opts.dial_lease_s),
            DIALBATCH_RECONCILE_QUIET_S=str(opts.reconcile_quiet_s),
            DIALBATCH_CONNECTION_ATTEMPTS=str(opts.connection_attempts),
            DIALBATCH_RETRY_BACKOFF_MS="200",
            DIALBATCH_POLL_INTERVAL_S="0.1",
        )
        if opts.provider == "twilio":
            env.update(
                DIALBATCH_TWILIO_ACCOUNT_SID=TWILIO_ACCOUNT,
                DIALBATCH_TWILIO_AUTH_TOKEN=SECRET,
                DIALBATCH_TWILIO_BASE_URL=self.carrier_url,
                DIALBATCH_TWILIO_FROM_NUMBER="+12025559999",
                DIALBATCH_TWILIO_REQUEST_TIMEOUT_S="5",
            )
        standin = [
            sys.executable,
            str(Path(__file__).resolve().parent / "_twilio_standin.py"),
            "--port",
            str(self.carrier_port),
            "--account",
            TWILIO_ACCOUNT,
            "--token",
            SECRET,
            "--workspace",
            WORKSPACE,
            "--seed",
            str(opts.seed),
            "--drop-final",
            str(opts.drop_rate),
        ]
        self.carrier = Proc(
            "carrier",
            standin
            if opts.provider == "twilio"
            else [
                sys.executable,
                "-m",
                "dialbatch.cli.carrier_cmd",
                "--port",
                str(self.carrier_port),
                "--callback-url",
                f"{self.api_url}/v1/providers/carrier/callbacks",
                "--secret",
                SECRET,
                "--time-scale",
                str(opts.time_scale),
                "--seed",
                str(opts.seed),
                "--drop-rate",
                str(opts.drop_rate),
                "--duplicate-rate",
                str(opts.duplicate_rate),
            ],
            env,
            work_dir,
        )
        self.api = Proc("api", dialbatch_cmd("serve", "--no-dispatch"), env, work_dir)
        worker_env = {**env, "DIALBATCH_LOG_LEVEL": "info"}
        self.workers = [
            Proc(f"worker{i}", dialbatch_cmd("worker"), worker_env, work_dir)
            for i in range(opts.workers)
        ]

    def start(self) -> None:
        self.carrier.start()
        self.api.start()
        for w in self.workers:
            w.start()
        # Generous: on a loaded host importing a provider SDK alone has taken a minute.
        wait_http(f"{self.carrier_url}/healthz", self.carrier, timeout_s=300)
        wait_http(f"{self.api_url}/readyz", self.api, timeout_s=300)

    def close(self) -> None:
        """SIGTERM everything at once, then wait (SIGKILL whatever does not stop)."""
        procs = [*self.workers, self.api, self.carrier]
        for proc in procs:
            if proc.alive():
                assert proc.popen is not None
                proc.popen.terminate()
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.stop()

    def worker_logs(self) -> str:
        return "".join(w.log_text() for w in self.workers)


# ---- the database -----------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database(admin_url: str = ADMIN_URL) -> Iterator[str]:
    """A database of our own on `admin_url`'s cluster, dropped at the end."""
    name = f"dialbatch_chaos_{os.getpid()}_{secrets.token_hex(3)}"
    url = create_database(admin_url, name)
    try:
        yield url
    finally:
        drop_database(admin_url, name)


def prepare(database_url: str, opts: Options) -> str:
    """Migrate, create the workspace (cap, rate), an API key and a carrier agent."""
    migrate.upgrade(to_async_url(database_url))

    async def run() -> str:
        db = Database(to_async_url(database_url))
        try:
            async with db.write() as conn:
                await workspaces.create_workspace(
                    conn,
                    workspace_id=WORKSPACE,
                    max_concurrent_calls=opts.cap,
                    calls_per_second=opts.rate,
                )
                _, key = await workspaces.create_api_key(conn, WORKSPACE, name="chaos")
                await workspaces.create_agent(
                    conn,
                    WORKSPACE,
                    name="chaos",
                    provider=opts.provider,
                    provider_config=(
                        {"agentUrl": "wss://agent.invalid/chaos"}
                        if opts.provider == "twilio"
                        else opts.agent_config
                    ),
                    agent_id=AGENT,
                )
            return key
        finally:
            await db.dispose()

    return asyncio.run(run())


class PrivateCluster:
    """A throw-away PostgreSQL cluster (initdb as the postgres user), so that restarting
    it disturbs no one else."""

    def __init__(self) -> None:
        versions = sorted(PG_BIN.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else 0)
        self.bin = versions[-1] / "bin"
        self.root = Path(tempfile.mkdtemp(prefix="dialbatch-pg-"))
        self.data = self.root / "pgdata"
        self.port = free_port()
        self.url = f"postgresql://postgres@{HOST}:{self.port}/postgres"

    def _as_postgres(self, *cmd: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        result = subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self.root.chmod(0o755)
        initdb = str(self.bin / "initdb")
        self._as_postgres(initdb, "-D", str(self.data), "--auth=trust", "-U", "postgres")
        self.start()

    def _ctl(self, action: str, *extra: str) -> None:
        self._as_postgres(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "postgres.log"),
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses={HOST} -c fsync=off "
            "-c max_connections=300",
            "-w",
            *extra,
            action,
        )

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# ---- the run -------------------------------------------------------------------------


def phone_numbers(n: int) -> list[str]:
    """n distinct valid US numbers (+1 202 555 xxxx, then other exchanges)."""
    exchanges = ["555", "556", "557", "558", "559"]
    return [f"+1202{exchanges[i // 10_000]}{i % 10_000:04d}" for i in range(n)]


def upload(client: httpx.Client, opts: Options) -> str:
    rows = "\n".join(f"{p},Caller{i}" for i, p in enumerate(phone_numbers(opts.calls)))
    csv = f"phone_number,first_name\n{rows}\n".encode()
    response = client.post(
        "/v1/api/batch-calls",
        files={"file": ("calls.csv", csv, "text/csv")},
        data={"agentId": AGENT, "smartCallbackConfig": json.dumps(opts.policy)},
        timeout=120,
    )
    response.raise_for_status()
    return str(response.json()["batchId"])


def progress(client: httpx.Client, batch_id: str) -> dict[str, Any] | None:
    try:
        response = client.get(f"/v1/api/batch-calls/{batch_id}/status", timeout=10)
    except httpx.HTTPError:
        return None
    return dict(response.json()) if response.status_code == 200 else None


def run(
    opts: Options, database_url: str, work_dir: Path, pg: PrivateCluster | None = None
) -> Report:
    """Start everything, run the batch under chaos, gather the figures, stop everything."""
    report = Report(options=opts)
    api_key = prepare(database_url, opts)
    cluster = Cluster(opts, database_url, work_dir)
    rng = random.Random(opts.seed)
    try:
        cluster.start()
        headers = {"x-api-key": api_key, "x-workspace-id": WORKSPACE}
        with httpx.Client(base_url=cluster.api_url, headers=headers) as client:
            started = time.monotonic()
            report.batch_id = upload(client, opts)
            _drive(cluster, client, report, rng, pg, started)
            report.duration_s = time.monotonic() - started
            _settle(cluster, database_url, report)
            last = progress(client, report.batch_id) or {}
            report.api_counts = {s: int(last.get(s, 0)) for s in FINAL if last.get(s)}
        _gather(cluster, database_url, report)
    except BaseException:
        for proc in [cluster.carrier, cluster.api, *cluster.workers]:
            print(f"---- {proc.name} (last lines)\n{proc.log_text()[-2000:]}", file=sys.stderr)
        raise
    finally:
        cluster.close()
    return report


def _drive(
    cluster: Cluster,
    client: httpx.Client,
    report: Report,
    rng: random.Random,
    pg: PrivateCluster | None,
    started: float,
) -> None:
    opts = report.options
    next_kill = started + rng.uniform(*opts.kill_every_s)
    restarted_pg = False
    deadline = started + opts.timeout_s
    while time.monotonic() < deadline:
        state = progress(client, report.batch_id)
        if state is not None and state.get("isComplete"):
            return
        done = sum(int(state.get(s, 0)) for s in FINAL) if state else 0
        now = time.monotonic()
        kills_left = opts.max_kills is None or report.kills < opts.max_kills
        if opts.kills and kills_left and now >= next_kill:
            victim = rng.randrange(len(cluster.workers))
            cluster.workers[victim].kill()
            report.kills += 1
            time.sleep(0.5)
            cluster.workers[victim].start()
            report.restarts += 1
            next_kill = time.monotonic() + rng.uniform(*opts.kill_every_s)
        restart_at = opts.pg_restart_at
        if pg is not None and restart_at is not None and not restarted_pg:
            restarted_pg = done >= restart_at * opts.calls
            if restarted_pg:
                _restart_pg(cluster, pg, report)
        for w in cluster.workers:
            if not w.alive() and w.popen is not None and w.popen.returncode != -signal.SIGKILL:
                # What a supervisor does; counted and reported, never hidden.
                lines = w.log_text().strip().splitlines()
                report.crashes.append(f"{w.name}: {lines[-1] if lines else '?'}")
                w.start()
        time.sleep(0.25)
    raise TimeoutError(f"batch not complete after {opts.timeout_s:.0f}s")


def _restart_pg(cluster: Cluster, pg: PrivateCluster, report: Report) -> None:
    """Stop PostgreSQL (fast: connections are cut), wait, start it; time the recovery:
    the API's /readyz answering again, and the first dial placed by a worker after it."""
    t0 = time.monotonic()
    pg.stop()
    down_at_ms = time.time_ns() // 1_000_000
    time.sleep(2.0)
    pg.start()
    up = time.monotonic()
    up_ms = time.time_ns() // 1_000_000
    report.pg["down_s"] = up - t0
    with httpx.Client(timeout=2.0) as plain:
        while time.monotonic() - up < 60:
            with contextlib.suppress(httpx.HTTPError):
                if plain.get(f"{cluster.api_url}/readyz").status_code == 200:
                    break
            time.sleep(0.05)
        report.pg["api_ready_after_s"] = time.monotonic() - up
        while time.monotonic() - up < 60:
            ledger = plain.get(f"{cluster.carrier_url}/ledger", timeout=30).json()
            if any(d["received_at"] > up_ms for d in ledger):
                break
            time.sleep(0.1)
        report.pg["first_dial_after_s"] = time.monotonic() - up
    report.pg["down_at_ms"] = float(down_at_ms)


def _settle(cluster: Cluster, database_url: str, report: Report, timeout_s: float = 30.0) -> None:
    """After the batch completes: callbacks still in flight land, the limiter drains."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=10.0) as plain:
        while time.monotonic() < deadline:
            stats = plain.get(f"{cluster.carrier_url}/stats").json()
            active = asyncio.run(_limiter_active(database_url))
            if not stats["live"] and active == 0:
                return
            time.sleep(0.2)


async def _limiter_active(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        value = await conn.fetchval(
            "SELECT active FROM workspace_limiter WHERE workspace_id = $1", WORKSPACE
        )
        return int(value)
    finally:
        await conn.close()


async def _tables(url: str, batch_id: str) -> tuple[Any, ...]:
    conn = await asyncpg.connect(url)
    try:
        status = await conn.fetch(
            "SELECT status, COUNT(*) AS n FROM calls WHERE batch_id = $1 GROUP BY status", batch_id
        )
        tallies = await conn.fetch(
            "SELECT status, SUM(n) AS n FROM batch_counters WHERE batch_id = $1 GROUP BY status",
            batch_id,
        )
        attempts = await conn.fetch(
            "SELECT a.dial_key, a.provider_call_id, a.outcome FROM attempts a "
            "JOIN calls c ON c.id = a.call_id WHERE c.batch_id = $1",
            batch_id,
        )
        active = await conn.fetchval(
            "SELECT active FROM workspace_limiter WHERE workspace_id = $1", WORKSPACE
        )
        return status, tallies, attempts, active
    finally:
        await conn.close()


def _gather(cluster: Cluster, database_url: str, report: Report) -> None:
    opts = report.options
    status, tallies, attempts, active = asyncio.run(_tables(database_url, report.batch_id))
    report.status_counts = {r["status"]: int(r["n"]) for r in status}
    report.counter_counts = {r["status"]: int(r["n"]) for r in tallies if r["n"]}
    report.lost = sum(n for s, n in report.status_counts.items() if s not in FINAL)
    report.limiter_active = int(active)
    with httpx.Client(timeout=60.0) as plain:
        ledger = plain.get(f"{cluster.carrier_url}/ledger").json()
        stats = plain.get(f"{cluster.carrier_url}/stats").json()
    stats.pop("dials_per_job", None)
    report.carrier_stats = stats
    report.max_live = int(stats["max_live"].get(WORKSPACE, 0))
    report.carrier_live_at_end = sum(stats["live"].values())
    report.dials = len(ledger)
    report.attempts = len(attempts)
    reached = {a["dial_key"]: a for a in attempts if a["provider_call_id"]}
    report.attempts_reached = len(reached)
    rang = {d["dial_key"]: d for d in ledger}
    for key in sorted(set(rang) ^ set(reached)):
        side = "carrier only" if key in rang else "engine only"
        report.key_mismatch.append(f"{key} ({side})")
    for key, d in rang.items():
        engine = reached.get(key)
        if engine is not None and engine["outcome"] != d["outcome"]:
            report.outcome_mismatch.append(
                f"{key}: carrier {d['outcome']}, engine {engine['outcome']}"
            )
    per_call: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in ledger:
        per_call[d["dial_key"].rsplit(":", 1)[0]].append(d)
    report.max_dials_per_call = max((len(v) for v in per_call.values()), default=0)
    report.retried_calls = sum(1 for v in per_call.values() if len(v) > 1)
    policy = parse_callback_policy(opts.policy)
    for job, dials in per_call.items():
        problem = _beyond_policy(dials, policy, opts.connection_attempts)
        if problem:
            report.beyond_policy.append(f"{job}: {problem}")
    report.unknown = asyncio.run(_unknown(database_url, report.batch_id))
    everything = logs = cluster.worker_logs()
    everything += cluster.api.log_text()
    report.deadlocks = len(re.findall(r"deadlock detected", everything, re.IGNORECASE))
    report.reconciled = len(re.findall(r"lost its worker \S*; reconciling", logs))
    report.quiet_checked = len(re.findall(r"ended while quiet", logs))


async def _unknown(url: str, batch_id: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM calls WHERE batch_id = $1 "
                "AND error LIKE 'Call outcome unknown%'",
                batch_id,
            )
        )
    finally:
        await conn.close()


def _beyond_policy(dials: list[dict[str, Any]], policy: Any, connection_attempts: int) -> str:
    """Replay one call's dials, in attempt order, through the engine's own retry rules: a
    dial after a final decision is one too many. Dials the engine counted that never
    reached the carrier only make it stop sooner, so this is an upper bound."""
    ordered = sorted(dials, key=lambda d: int(d["dial_key"].rsplit(":", 1)[1]))
    failures = unreached = 0
    for i, d in enumerate(ordered):
        if d["outcome"] is None:
            return f"dial {d['dial_key']} never ended"
        outcome = Outcome(d["outcome"])
        failures = failures + 1 if outcome is Outcome.FAILED else 0
        if outcome in (Outcome.BUSY, Outcome.NO_ANSWER, Outcome.VOICEMAIL):
            unreached += 1
        decision = decide(
            outcome,
            AttemptHistory(connection_failures=failures, unreached=unreached, dials=i + 1),
            policy,
            connection_attempts=connection_attempts,
        )
        if decision.final and i < len(ordered) - 1:
            return f"{len(ordered)} dials, the policy ends it after {i + 1}"
    return ""


# ---- output --------------------------------------------------------------------------


def print_report(report: Report) -> None:
    o = report.options
    cb = report.carrier_stats.get("callbacks", {})
    print(
        f"batch {report.batch_id}: {o.calls} calls, {o.workers} workers, cap {o.cap}, "
        f"{o.rate:g} calls/s, time scale {o.time_scale}"
    )
    print(f"duration                 {report.duration_s:8.1f} s")
    print(f"workers SIGKILLed        {report.kills:8d} (each restarted)")
    print(
        f"workers that exited      {len(report.crashes):8d} by themselves (restarted): "
        f"{report.crashes[:3]}"
    )
    print(f"final states             {report.status_counts}")
    print(f"lost calls               {report.lost:8d}")
    print(f"calls 'outcome unknown'  {report.unknown:8d}")
    print(f"deadlocks in the logs    {report.deadlocks:8d}")
    print(
        f"dials received (carrier) {report.dials:8d}   duplicate POSTs "
        f"{report.carrier_stats.get('duplicate_requests', 0)}, refused "
        f"{report.carrier_stats.get('refused', 0)}"
    )
    print(
        f"engine attempts          {report.attempts:8d}   of which reached the carrier "
        f"{report.attempts_reached}"
    )
    print(
        f"calls dialed more than once {report.retried_calls:5d}   max dials per call "
        f"{report.max_dials_per_call}"
    )
    print(f"dials beyond policy      {len(report.beyond_policy):8d}")
    print(
        f"carrier/engine mismatch  {len(report.key_mismatch):8d} keys, "
        f"{len(report.outcome_mismatch)} outcomes"
    )
    print(
        f"reconciliations          {report.reconciled:8d} expired dial leases, "
        f"{report.quiet_checked} quiet dials settled, "
        f"{report.carrier_stats.get('tombstones', 0)} keys proven absent (fenced), "
        f"{report.carrier_stats.get('fenced', 0)} late POSTs refused"
    )
    print(f"callbacks                {cb}")
    print(
        f"max live at the carrier  {report.max_live:8d}   (cap {o.cap}); live at end "
        f"{report.carrier_live_at_end}, limiter active {report.limiter_active}"
    )
    print(
        f"counters == COUNT(*)     {report.counter_counts == report.status_counts}; "
        f"API == COUNT(*) {report.api_counts == report.status_counts}"
    )
    if report.pg:
        print(
            f"PostgreSQL down          {report.pg['down_s']:8.1f} s; API ready "
            f"{report.pg['api_ready_after_s']:.1f} s after it came back, first new dial "
            f"{report.pg['first_dial_after_s']:.1f} s after"
        )
    problems = report.violations()
    print("RESULT: " + ("OK" if not problems else "VIOLATIONS: " + "; ".join(problems)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--cap", type=int, default=20)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--time-scale", type=float, default=0.02)
    parser.add_argument("--kill-every", type=float, nargs=2, default=(3.0, 6.0), metavar="S")
    parser.add_argument("--no-kills", action="store_true")
    parser.add_argument("--pg-restart", action="store_true", help="restart a private cluster")
    parser.add_argument("--pg-restart-at", type=float, default=0.33)
    parser.add_argument(
        "--shared-pg",
        action="store_true",
        help=f"a scratch database on {ADMIN_URL} instead of a private cluster",
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--provider",
        choices=["carrier", "twilio"],
        default="carrier",
        help="twilio: a Twilio stand-in with a Calls list, dropping --drop-rate of final callbacks",
    )
    parser.add_argument("--drop-rate", type=float, default=None)
    args = parser.parse_args()
    opts = Options(
        calls=args.calls,
        workers=args.workers,
        cap=args.cap,
        rate=args.rate,
        time_scale=args.time_scale,
        kill_every_s=tuple(args.kill_every),
        kills=not args.no_kills,
        seed=args.seed,
        pg_restart_at=args.pg_restart_at if args.pg_restart else None,
        provider=args.provider,
    )
    if args.drop_rate is not None:
        opts.drop_rate = args.drop_rate
    elif args.provider == "twilio":
        opts.drop_rate = 0.05
    one, five, _ = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs; load average at start {one:.2f} {five:.2f}")
    work = Path(tempfile.mkdtemp(prefix="dialbatch-chaos-"))
    try:
        if args.shared_pg and not args.pg_restart:
            with scratch_database() as url:
                report = run(opts, url, work)
        else:
            pg = PrivateCluster()
            pg.init()
            try:
                report = run(opts, pg.url, work, pg)
            finally:
                pg.destroy()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_report(report)
    one, five, _ = os.getloadavg()
    print(f"load average at end {one:.2f} {five:.2f}")
    return 0 if not report.violations() else 1


if __name__ == "__main__":
    sys.exit(main())
