"""Shared benchmark helpers: run the real `dialbatch serve` as a subprocess and watch its memory.

The server listens on 127.0.0.1 only, on a free port, with a data directory of our own and a
pinned demo key, so the scripts know the credentials. Its resident set size is sampled every
20 ms by a thread (psutil); the kernel's exact high-water mark (VmHWM) is read from
/proc/<pid>/status and can be reset between runs through /proc/<pid>/clear_refs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

HOST = "127.0.0.1"
API_KEY = "bench-key-0000000000000001"
WORKSPACE = "ws_bench"
AGENT = "agent_demo"
MB = 1024 * 1024
STARTUP_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0
SAMPLE_INTERVAL_S = 0.02


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def server_command() -> list[str]:
    """The `dialbatch` console script next to this interpreter, else the same via `-c`."""
    script = Path(sys.executable).parent / "dialbatch"
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-c", "from dialbatch.cli.main import app; app()", "serve"]


def read_status_kb(pid: int, key: str) -> int | None:
    """A `kB` field of /proc/<pid>/status (VmHWM, VmRSS), in bytes; None if unavailable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_hwm(pid: int) -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of `pid` (Linux >= 4.0, our own process)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


class RssMonitor(threading.Thread):
    """Samples a process's RSS every 20 ms; `peak` since start, `window_peak` since `mark()`."""

    def __init__(self, pid: int, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        super().__init__(name=f"rss-{pid}", daemon=True)
        self._proc = psutil.Process(pid)
        self._interval = interval_s
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self.peak = 0
        self._window = 0
        self.samples = 0

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                rss = self._proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                return
            with self._lock:
                self.peak = max(self.peak, rss)
                self._window = max(self._window, rss)
                self.samples += 1
            self._halt.wait(self._interval)

    def mark(self) -> None:
        """Start a new window (e.g. one benchmark run)."""
        with self._lock:
            self._window = 0

    @property
    def window_peak(self) -> int:
        with self._lock:
            return self._window

    def current(self) -> int:
        try:
            return int(self._proc.memory_info().rss)
        except psutil.Error:
            return 0

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=2)


@dataclass
class Server:
    """A running server: where it listens, how to authenticate, its process and memory."""

    base_url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    pid: int  # the server's own pid (the wrapper's child when wrapped by a profiler)
    monitor: RssMonitor
    log_path: Path
    database_url: str | None
    final_hwm: int | None = field(default=None)

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": API_KEY, "x-workspace-id": WORKSPACE}

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "dialbatch.db"

    def hwm(self) -> int | None:
        return read_status_kb(self.pid, "VmHWM")

    def start_window(self) -> None:
        """Begin measuring one run: reset both the sampled and the kernel's peak."""
        reset_hwm(self.pid)
        self.monitor.mark()

    def window_peak(self) -> int:
        """Peak RSS since `start_window()`: the larger of the sampled and the kernel's mark."""
        return max(self.monitor.window_peak, self.hwm() or 0)

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far."""
        try:
            t = psutil.Process(self.pid).cpu_times()
        except psutil.Error:
            return 0.0
        return float(t.user + t.system)

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


def server_env(
    data_dir: Path,
    port: int,
    *,
    database_url: str | None,
    dispatch: bool,
    calls_per_second: float,
    extra: dict[str, str] | None,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALBATCH_")}
    env.update(
        DIALBATCH_HOST=HOST,
        DIALBATCH_PORT=str(port),
        DIALBATCH_DATA_DIR=str(data_dir),
        DIALBATCH_DEMO_API_KEY=API_KEY,
        DIALBATCH_DEMO_WORKSPACE_ID=WORKSPACE,
        DIALBATCH_DEMO_CALLS_PER_SECOND=str(calls_per_second),
        DIALBATCH_DISPATCH="true" if dispatch else "false",
        DIALBATCH_LOG_LEVEL="warning",
        # Benchmarks send requests as fast as they can: the API rate limits are kept (their
        # cost is part of each request) but far above what any benchmark sends.
        DIALBATCH_RATE_LIMIT_PER_S="1000000",
        DIALBATCH_RATE_LIMIT_BURST="1000000",
    )
    if database_url:
        env["DIALBATCH_DATABASE_URL"] = database_url
    env.update(extra or {})
    return env


@contextlib.contextmanager
def run_server(
    data_dir: Path | None = None,
    *,
    database_url: str | None = None,
    dispatch: bool = True,
    calls_per_second: float = 0.01,
    extra_env: dict[str, str] | None = None,
    wrap: list[str] | None = None,
    keep_data: bool = False,
) -> Iterator[Server]:
    """Start `dialbatch serve`, wait for /healthz, yield it, and always stop it.

    `wrap` prefixes the command (e.g. a profiler: ["py-spy", "record", ..., "--"]); the
    monitored pid is then the wrapper's child when there is exactly one.
    """
    own_dir = data_dir is None
    data = Path(tempfile.mkdtemp(prefix="dialbatch-bench-")) if own_dir else data_dir
    assert data is not None
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = server_env(
        data,
        port,
        database_url=database_url,
        dispatch=dispatch,
        calls_per_second=calls_per_second,
        extra=extra_env,
    )
    cmd = [*(wrap or []), *server_command()]
    if not dispatch:
        cmd.append("--no-dispatch")
    log_path = data / "server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    server: Server | None = None
    pid: int | None = None
    try:
        pid = _served_pid(proc) if wrap else proc.pid
        monitor = RssMonitor(pid)
        monitor.start()
        server = Server(
            base_url=f"http://{HOST}:{port}",
            data_dir=data,
            proc=proc,
            pid=pid,
            monitor=monitor,
            log_path=log_path,
            database_url=database_url,
        )
        _wait_healthy(server)
        yield server
    finally:
        try:
            if server is not None:
                server.final_hwm = read_status_kb(server.pid, "VmHWM")
                server.monitor.stop()
        finally:
            _stop(proc, pid)
            log.close()
            if own_dir and not keep_data:
                shutil.rmtree(data, ignore_errors=True)


def _served_pid(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> int:
    """The wrapped server's pid: the wrapper's only child, once it exists."""
    deadline = time.monotonic() + timeout_s
    parent = psutil.Process(proc.pid)
    while time.monotonic() < deadline:
        children = parent.children(recursive=False)
        if len(children) == 1:
            return children[0].pid
        time.sleep(0.05)
    return proc.pid


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with httpx.Client(base_url=server.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {server.proc.returncode} during startup:\n"
                    + server.log_tail()
                )
            with contextlib.suppress(httpx.TransportError):
                if client.get("/healthz").status_code == 200:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"server not healthy after {STARTUP_TIMEOUT_S:.0f}s:\n{server.log_tail()}")


def _stop(proc: subprocess.Popen[bytes], pid: int | None) -> None:
    """SIGTERM the server (uvicorn shuts down gracefully), then SIGKILL after a timeout.

    When wrapped (a profiler), the server is stopped first: the wrapper then writes its
    output and exits by itself.
    """
    if pid is not None and pid != proc.pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    elif proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S * (4 if pid != proc.pid else 1))
    except subprocess.TimeoutExpired:
        print(f"server {pid or proc.pid} did not stop in time: killed", file=sys.stderr)
        if pid is not None and pid != proc.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


def machine_info() -> dict[str, str]:
    """What docs/benchmarks.md reports about the machine."""
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
    }


def print_machine() -> None:
    info = machine_info()
    print(
        "machine: {cpus} CPUs ({cpu}), {ram} RAM, Python {python}, SQLite {sqlite}, "
        "Linux {kernel}".format(**info)
    )
    print_load("at start")


def print_load(when: str) -> None:
    """The 1/5/15-minute load averages: other work on a shared machine skews latencies."""
    one, five, fifteen = os.getloadavg()
    print(f"load average {when}: {one:.2f} {five:.2f} {fifteen:.2f}", flush=True)


def add_wait_quiet(parser: argparse.ArgumentParser) -> None:
    """The `--wait-quiet S` option both benchmarks take (see wait_until_quiet)."""
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="S",
        help="first wait up to S seconds for the 1-min load average to drop below 0.5",
    )


def wait_until_quiet(max_wait_s: float, threshold: float = 0.5) -> None:
    """Wait (at most `max_wait_s`) for the 1-minute load average to fall below `threshold`."""
    deadline = time.monotonic() + max_wait_s
    while os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        time.sleep(5)
