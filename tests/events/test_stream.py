"""Live events over real HTTP: a snapshot, then every outbox row of the stream's scope
exactly once, resumable with Last-Event-ID; across processes on PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from dialbatch.settings import Settings
from tests import _backends
from tests.client._server import LiveServer, live_server
from tests.conftest import csv_bytes, numbers
from tests.events._sse import Message, events_of, outbox_rows, read_stream

BASE = "/v1/api/batch-calls"


def headers_of(live: LiveServer) -> dict[str, str]:
    return {"x-api-key": live.demo.api_key, "x-workspace-id": live.demo.workspace_id}


def start_batch(url: str, headers: dict[str, str], n: int, agent_id: str, start: int = 0) -> str:
    r = httpx.post(
        url + BASE,
        headers=headers,
        files={"file": ("c.csv", csv_bytes([f"{p},A,B,a@b.c" for p in numbers(n, start)]))},
        data={"agentId": agent_id},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    batch_id: str = r.json()["batchId"]
    return batch_id


def completed(batch_id: str) -> Callable[[Message], bool]:
    return lambda m: m.event == "batch.completed" and m.data["batchId"] == batch_id


def after(n: int) -> Callable[[Message], bool]:
    seen = [0]

    def enough(m: Message) -> bool:
        seen[0] += m.id is not None and m.event != "snapshot"
        return seen[0] >= n

    return enough


@pytest.fixture
def live(make_settings: Callable[..., Settings]) -> Iterator[tuple[LiveServer, Settings]]:
    settings = make_settings(events_poll_s=0.05, sse_heartbeat_s=0.3)
    with live_server(settings) as server:
        yield server, settings


def test_a_batch_stream_is_its_snapshot_then_each_of_its_events_once(
    live: tuple[LiveServer, Settings],
) -> None:
    server, settings = live
    h = headers_of(server)
    batch_id = start_batch(server.url, h, 20, server.demo.agent_id)
    messages = read_stream(
        server.url,
        f"{BASE}/{batch_id}/events",
        h,
        params={"lastEventId": "0"},
        until=completed(batch_id),
    )
    snapshot = messages[0]
    assert snapshot.event == "snapshot" and snapshot.id is None  # not the resume point
    assert snapshot.data["total"] == 20 and "isComplete" in snapshot.data
    assert events_of(messages) == outbox_rows(str(settings.database_url), batch_id)
    names = {m.event for m in messages}
    assert {"batch.created", "batch.started", "call.started", "call.completed"} <= names
    for m in messages[1:]:
        if m.event.startswith("call."):
            assert m.data["batchId"] == batch_id and m.data["jobId"] and m.data["status"]


def test_a_dropped_stream_resumes_with_last_event_id_losing_and_repeating_nothing(
    live: tuple[LiveServer, Settings],
) -> None:
    server, settings = live
    h = headers_of(server)
    batch_id = start_batch(server.url, h, 60, server.demo.agent_id)
    path = f"{BASE}/{batch_id}/events"
    first = read_stream(server.url, path, h, params={"lastEventId": "0"}, until=after(15))
    time.sleep(0.3)  # the batch goes on while nobody listens
    last = events_of(first)[-1][0]
    rest = read_stream(
        server.url, path, {**h, "Last-Event-ID": str(last)}, until=completed(batch_id)
    )
    got = events_of(first) + events_of(rest)
    assert got == outbox_rows(str(settings.database_url), batch_id)
    assert len({i for i, _ in got}) == len(got)


def test_the_workspace_stream_starts_now_and_sees_only_its_workspace(
    live: tuple[LiveServer, Settings],
) -> None:
    server, settings = live
    h = headers_of(server)
    seen: list[Message] = []
    ready = threading.Event()
    batch: list[str] = []

    def until(m: Message) -> bool:
        ready.set()
        return bool(batch) and completed(batch[0])(m)

    reader = threading.Thread(
        target=lambda: seen.extend(read_stream(server.url, "/v1/api/events", h, until=until))
    )
    reader.start()
    assert ready.wait(15)
    batch.append(start_batch(server.url, h, 10, server.demo.agent_id))
    reader.join(60)
    assert not reader.is_alive()
    snapshot = seen[0]
    assert snapshot.event == "snapshot" and snapshot.id == snapshot.data["lastEventId"]
    expected = [r for r in outbox_rows(str(settings.database_url)) if r[0] > snapshot.id]
    got = events_of(seen)
    assert got == expected[: len(got)] and got[-1][1] == "batch.completed"
    heartbeats = [m for m in seen if m.event == "heartbeat"]
    assert all(m.data == "heartbeat" for m in heartbeats)


def test_heartbeats_keep_an_idle_stream_open(live: tuple[LiveServer, Settings]) -> None:
    server, _ = live
    messages = read_stream(
        server.url, "/v1/api/events", headers_of(server), until=lambda m: m.event == "heartbeat"
    )
    assert [m.event for m in messages] == ["snapshot", "heartbeat"]


def test_a_browser_token_opens_the_stream_and_a_bad_one_does_not(
    live: tuple[LiveServer, Settings],
) -> None:
    server, _ = live
    r = httpx.post(server.url + "/v1/api/events/token", headers=headers_of(server))
    assert r.status_code == 200, r.text
    token, expires = r.json()["token"], r.json()["expiresAt"]
    assert 0 < expires - time.time() * 1000 <= 300_000 + 5000
    messages = read_stream(
        server.url, "/v1/api/events", params={"token": token}, until=lambda m: True
    )
    assert messages[0].event == "snapshot"
    bad = httpx.get(server.url + "/v1/api/events", params={"token": token[:-2] + "xx"})
    assert bad.status_code == 401 and bad.json()["error"] == "Unauthorized"


# --- Across processes (PostgreSQL) ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dialbatch(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "dialbatch"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from dialbatch.cli.main import app; app()", *args]


@contextmanager
def processes(database_url: str, data_dir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`dialbatch serve --no-dispatch` and `dialbatch worker`, two processes on one
    database; yields the API's URL and the demo workspace's headers."""
    port = _free_port()
    key = "events-demo-key-0000000001"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALBATCH_")}
    env.update(
        DIALBATCH_HOST="127.0.0.1",
        DIALBATCH_PORT=str(port),
        DIALBATCH_DATA_DIR=str(data_dir),
        DIALBATCH_DATABASE_URL=database_url,
        DIALBATCH_DEMO_API_KEY=key,
        DIALBATCH_DEMO_CALLS_PER_SECOND="40",
        DIALBATCH_DEMO_MAX_CONCURRENT_CALLS="20",
        DIALBATCH_SIMULATED_TIME_SCALE="0.01",
        DIALBATCH_POLL_INTERVAL_S="0.05",
        DIALBATCH_EVENTS_POLL_S="0.05",
        DIALBATCH_LOG_LEVEL="warning",
    )
    url = f"http://127.0.0.1:{port}"
    api = subprocess.Popen(_dialbatch("serve", "--no-dispatch"), env=env, stdout=subprocess.DEVNULL)
    worker: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert api.poll() is None and time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)
        worker = subprocess.Popen(_dialbatch("worker"), env=env)
        yield url, {"x-api-key": key, "x-workspace-id": "ws_demo"}
    finally:
        for proc in (worker, api):
            if proc is not None:
                proc.terminate()
        for proc in (worker, api):
            if proc is not None:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()


@pytest.mark.skipif(
    "postgresql" not in _backends.selected_backends(), reason="PostgreSQL is not reachable"
)
def test_a_client_of_one_process_sees_every_change_a_worker_in_another_makes(
    pg_url: str, tmp_path: Path
) -> None:
    import asyncio

    asyncio.run(_backends.truncate(pg_url))
    with processes(pg_url, tmp_path) as (url, h):
        agent = "agent_demo"
        seen: list[Message] = []
        ready = threading.Event()
        batch: list[str] = []

        def until(m: Message) -> bool:
            ready.set()
            return bool(batch) and completed(batch[0])(m)

        # Generous timeouts: a worker starting on a loaded machine (imports, migrations)
        # has taken over a minute here.
        reader = threading.Thread(
            target=lambda: seen.extend(
                read_stream(url, "/v1/api/events", h, until=until, timeout=300)
            )
        )
        reader.start()
        assert ready.wait(30)
        batch.append(start_batch(url, h, 150, agent))
        batch_id = batch[0]
        # Meanwhile a second client drops its batch stream mid-run and resumes.
        path = f"{BASE}/{batch_id}/events"
        first = read_stream(url, path, h, params={"lastEventId": "0"}, until=after(40), timeout=300)
        time.sleep(0.5)
        rest = read_stream(
            url,
            path,
            {**h, "Last-Event-ID": str(events_of(first)[-1][0])},
            until=completed(batch_id),
            timeout=300,
        )
        reader.join(300)
        assert not reader.is_alive()

        rows = outbox_rows(pg_url, batch_id)
        assert len(rows) >= 2 * 150 + 3  # created, started, each call's start and end, done
        workspace_view = [e for e in events_of(seen) if e[0] >= rows[0][0]]
        assert workspace_view == [r for r in outbox_rows(pg_url) if r[0] >= rows[0][0]]
        assert [e for e in events_of(seen) if e in rows] == rows
        resumed = events_of(first) + events_of(rest)
        assert resumed == rows
