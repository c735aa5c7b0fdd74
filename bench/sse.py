"""Live events at scale: do 500 SSE clients on one API process each receive every event of a
running batch within a second, while the other endpoints keep their latency?

Runs the real `dialbatch serve` (API + dispatcher, one process), opens `--clients`
connections to `GET /v1/api/batch-calls/{id}/events` from this process (plain asyncio
sockets, so the clients cost little CPU), and starts a batch of `--calls` calls at
`--rate` calls/s. Each client records when each event id arrives; an event's delay is
its arrival minus the commit time in the outbox (`created_at`, same machine's clock).
Meanwhile `GET .../status` is timed every 100 ms, before the clients connect and while
they stream, twice: from this process's event loop (which also reads the 500 streams, so
its own lag when a burst arrives is counted in) and from a process of its own (a blocking
client with nothing else to do: the server's latency). Printed: events per client (every
client must get every event), delay p50/p99/max over all deliveries, and the status
endpoint's latency idle vs. loaded, both ways.

    .venv/bin/python bench/sse.py                    # 500 clients, SQLite
    .venv/bin/python bench/sse.py --clients 100 --calls 200
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import AGENT, API_KEY, WORKSPACE, Server, print_load, print_machine, run_server

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.synchronize import Event as ProcessEvent


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def client(
    host: str,
    port: int,
    path: str,
    arrivals: dict[int, float],
    connected: asyncio.Event,
    done: asyncio.Event,
) -> None:
    """One SSE client: every `id:` line's arrival time, until `done`."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
            f"x-api-key: {API_KEY}\r\nx-workspace-id: {WORKSPACE}\r\nLast-Event-ID: 0\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status = await reader.readline()
    assert b" 200 " in status, status
    connected.set()
    # Read raw chunks and find the ids in them: parsing line by line would cost this
    # process more CPU than the server spends sending, on the same two cores.
    tail = b""
    try:
        while not done.is_set():
            try:
                chunk = await asyncio.wait_for(reader.read(1 << 16), 1.0)
            except TimeoutError:
                continue
            if not chunk:
                return
            now = time.time()
            data = tail + chunk
            cut = data.rfind(b"\n\n") + 2
            tail = data[cut:] if cut >= 2 else data
            for m in _ID.finditer(data[:cut] if cut >= 2 else b""):
                arrivals.setdefault(int(m.group(1)), now)
    finally:
        writer.close()


_ID = re.compile(rb"(?:^|\n)id: (\d+)")


async def time_status(
    http: httpx.AsyncClient, path: str, stop: asyncio.Event, out: list[float]
) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        r = await http.get(path)
        assert r.status_code == 200, r.text
        out.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.1)


def _status_timer(
    base_url: str,
    headers: dict[str, str],
    path: str,
    start: ProcessEvent,
    stop: ProcessEvent,
    out: Connection,
) -> None:
    """In a process of its own: time `GET path` every 100 ms between `start` and `stop`
    with a blocking client, so nothing but the server delays the answers."""
    start.wait()
    times: list[float] = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as http:
        while not stop.is_set():
            t0 = time.perf_counter()
            r = http.get(path)
            assert r.status_code == 200, r.text
            times.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.1)
    out.send(times)


class StatusTimer:
    """`_status_timer` in a spawned process: `measure()` while something runs."""

    def __init__(self, server: Server, path: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._start, self._stop = ctx.Event(), ctx.Event()
        self._recv, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=_status_timer,
            args=(server.base_url, server.headers, path, self._start, self._stop, send),
            daemon=True,
        )
        self._proc.start()

    def begin(self) -> None:
        self._start.set()

    def end(self) -> list[float]:
        self._stop.set()
        times: list[float] = self._recv.recv()
        self._proc.join(10)
        return times


def outbox_times(server: Server, batch_id: str) -> dict[int, float]:
    with sqlite3.connect(server.sqlite_path) as db:
        rows = db.execute(
            "SELECT id, created_at FROM outbox WHERE batch_id = ?", (batch_id,)
        ).fetchall()
    return {int(i): at / 1000 for i, at in rows}


async def run(server: Server, args: argparse.Namespace) -> None:
    host, port = server.base_url.removeprefix("http://").split(":")
    async with httpx.AsyncClient(
        base_url=server.base_url, headers=server.headers, timeout=120
    ) as http:
        csv = "phone_number\n" + "".join(f"+1202555{i:04d}\n" for i in range(args.calls))
        # A batch to stream: scheduled a little later, so every client is connected first.
        start_at = time.time() + args.connect_s
        r = await http.post(
            "/v1/api/batch-calls",
            files={"file": ("c.csv", csv.encode())},
            data={"agentId": AGENT, "scheduledAt": str(int(start_at * 1000))},
        )
        assert r.status_code == 200, r.text
        batch_id = r.json()["batchId"]
        status_path = f"/v1/api/batch-calls/{batch_id}/status"

        idle: list[float] = []
        stop_idle = asyncio.Event()
        idle_timer = StatusTimer(server, status_path)
        await asyncio.sleep(1.0)  # the spawned process has started
        idle_timer.begin()
        t = asyncio.create_task(time_status(http, status_path, stop_idle, idle))
        await asyncio.sleep(2.0)
        stop_idle.set()
        await t
        idle_apart = await asyncio.to_thread(idle_timer.end)
        loaded_timer = StatusTimer(server, status_path)

        done = asyncio.Event()
        arrivals = [dict[int, float]() for _ in range(args.clients)]
        connected = [asyncio.Event() for _ in range(args.clients)]
        path = f"/v1/api/batch-calls/{batch_id}/events"
        tasks = [
            asyncio.create_task(client(host, int(port), path, arrivals[i], connected[i], done))
            for i in range(args.clients)
        ]
        await asyncio.wait_for(asyncio.gather(*(c.wait() for c in connected)), args.connect_s)
        print(f"{args.clients} clients connected; the batch starts at its scheduled time")
        all_connected = time.time()

        cpu0 = server.cpu_seconds()
        loaded: list[float] = []
        stop_loaded = asyncio.Event()
        timer = asyncio.create_task(time_status(http, status_path, stop_loaded, loaded))
        loaded_timer.begin()
        deadline = time.monotonic() + args.timeout_s
        while time.monotonic() < deadline:
            body = (await http.get(status_path)).json()
            if body["isComplete"]:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)  # the last events reach everyone
        stop_loaded.set()
        await timer
        loaded_apart = await asyncio.to_thread(loaded_timer.end)
        cpu = server.cpu_seconds() - cpu0
        done.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    committed = outbox_times(server, batch_id)
    expected = {i for i in committed}
    counts = [len(set(a) & expected) for a in arrivals]
    # Events committed before every client was connected (batch.created) arrive by
    # catch-up; the delay is measured on the live ones.
    delays = [
        (at - committed[i]) * 1000
        for a in arrivals
        for i, at in a.items()
        if i in committed and committed[i] > all_connected
    ]
    print(
        f"events of the batch: {len(expected)}; every client got all of them: "
        f"{all(c == len(expected) for c in counts)} (min {min(counts)}, max {max(counts)})"
    )
    print(
        f"delay commit -> client, over {len(delays)} deliveries: p50 {pct(delays, 0.5):.0f} ms,"
        f" p99 {pct(delays, 0.99):.0f} ms, max {max(delays):.0f} ms"
    )
    sent = sum(len(a) for a in arrivals)
    print(
        f"server CPU while streaming: {cpu:.1f} s for {sent} event deliveries "
        f"({cpu / max(sent, 1) * 1e6:.0f} us each, batch and API included)"
    )
    for how, before, during in (
        ("from the clients' event loop", idle, loaded),
        ("from a process of its own", idle_apart, loaded_apart),
    ):
        print(
            f"GET status latency {how}: idle p50 {pct(before, 0.5):.1f} ms / "
            f"p99 {pct(before, 0.99):.1f} ms; with {args.clients} streams "
            f"p50 {pct(during, 0.5):.1f} ms / p99 {pct(during, 0.99):.1f} ms "
            f"({len(during)} requests)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--rate", type=float, default=20.0, help="calls started per second")
    parser.add_argument("--connect-s", type=float, default=30.0)
    parser.add_argument("--timeout-s", type=float, default=300.0)
    args = parser.parse_args()
    print_machine()
    print_load("before")
    extra = {
        "DIALBATCH_DEMO_MAX_CONCURRENT_CALLS": "50",
        "DIALBATCH_SIMULATED_TIME_SCALE": "0.05",
    }
    with run_server(calls_per_second=args.rate, extra_env=extra) as server:
        try:
            asyncio.run(run(server, args))
        finally:
            print("server log tail:\n" + server.log_tail(15))
    print_load("after")


if __name__ == "__main__":
    main()
