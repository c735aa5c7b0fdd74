"""Stopping loses nothing (DESIGN.md §6b), on a real `dialbatch serve` process on SQLite
with the in-process simulated carrier: Ctrl-C with calls live waits for them to end within
the grace period; a second Ctrl-C (or a grace period too short) hands the live calls over,
and the next process finds each one's real outcome, recomputed from its dial key and start
time. No call ends "unknown", none is dialed twice."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from dialbatch.domain.outcomes import CallEvent
from dialbatch.providers.simulated import SimulatedProvider
from dialbatch.settings import to_async_url
from dialbatch.store import migrate

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import chaos
from tests import _backends

KEY = "stop-test-demo-key-0000000001"
SEED = 5
# Every dial completes after ringing 0.5-1 s and talking about 4 s (simulated seconds).
AGENT_CONFIG: dict[str, Any] = {
    "seed": SEED,
    "outcomes": {"completed": 1},
    "ringSeconds": [0.5, 1.0],
    "meanTalkSeconds": 4.0,
}


class Serve:
    """`dialbatch serve` on a SQLite file of its own, started again on the same file."""

    def __init__(self, tmp: Path, grace_s: float) -> None:
        self.port = chaos.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_path = tmp / "data" / "dialbatch.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIALBATCH_")}
        env.update(
            DIALBATCH_HOST="127.0.0.1",
            DIALBATCH_PORT=str(self.port),
            DIALBATCH_DATA_DIR=str(tmp / "data"),
            DIALBATCH_DEMO_API_KEY=KEY,
            DIALBATCH_DEMO_MAX_CONCURRENT_CALLS="5",
            DIALBATCH_DEMO_CALLS_PER_SECOND="50",
            DIALBATCH_POLL_INTERVAL_S="0.05",
            DIALBATCH_STOP_GRACE_S=str(grace_s),
            DIALBATCH_LOG_LEVEL="info",
        )
        self.env = env
        self.tmp = tmp
        self.runs = 0
        self.proc: chaos.Proc | None = None

    def start(self) -> None:
        self.runs += 1
        self.proc = chaos.Proc(
            f"serve{self.runs}", chaos.dialbatch_cmd("serve"), self.env, self.tmp
        )
        self.proc.start()
        chaos.wait_http(f"{self.url}/readyz", self.proc)

    def signal(self, sig: int) -> None:
        assert self.proc is not None and self.proc.popen is not None
        self.proc.popen.send_signal(sig)

    def wait_exit(self, timeout_s: float) -> float:
        """Seconds until the process exited."""
        assert self.proc is not None and self.proc.popen is not None
        started = time.monotonic()
        self.proc.popen.wait(timeout_s)
        return time.monotonic() - started

    def client(self) -> httpx.Client:
        headers = {"x-api-key": KEY, "x-workspace-id": self._workspace()}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def _workspace(self) -> str:
        with sqlite3.connect(self.db_path) as conn:
            return str(conn.execute("SELECT id FROM workspaces").fetchone()[0])

    def rows(self, sql: str) -> list[Any]:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql).fetchall()


def start_five_calls(serve: Serve) -> str:
    """An agent whose dials all complete, a batch of 5 calls, all live at once."""
    with serve.client() as client:
        r = client.post(
            "/v1/api/agents",
            json={"name": "stop", "provider": "simulated", "providerConfig": AGENT_CONFIG},
        )
        assert r.status_code == 201, r.text
        agent_id = r.json()["id"]
        csv = "phone_number\n" + "\n".join(f"+1202555{i:04d}" for i in range(5)) + "\n"
        r = client.post(
            "/v1/api/batch-calls",
            files={"file": ("calls.csv", csv.encode(), "text/csv")},
            data={"agentId": agent_id},
        )
        assert r.status_code == 200, r.text
        batch_id = str(r.json()["batchId"])
    deadline = time.monotonic() + 30
    live = f"SELECT count(*) FROM calls WHERE batch_id = '{batch_id}' AND status = 'dialing'"
    while serve.rows(live)[0][0] < 5:
        assert time.monotonic() < deadline, "the 5 calls never were live at once"
        time.sleep(0.05)
    return batch_id


def expected_event(dial_key: str) -> CallEvent:
    """The dial's true outcome: what the simulated carrier draws for its key."""

    async def sink(_: Any) -> None:
        return None

    sim = SimulatedProvider(sink, seed=SEED)
    _, event, _ = sim._draw(dial_key, AGENT_CONFIG, None)
    return event


def assert_real_outcomes(serve: Serve, batch_id: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = serve.rows(
            "SELECT c.status, c.error, c.duration_s, a.dial_key, a.outcome, "
            "(SELECT count(*) FROM attempts x WHERE x.call_id = c.id) "
            f"FROM calls c JOIN attempts a ON a.call_id = c.id AND a.n = c.attempt "
            f"WHERE c.batch_id = '{batch_id}'"
        )
        if len(rows) == 5 and all(r[0] in ("completed", "failed") for r in rows):
            break
        assert time.monotonic() < deadline, f"calls did not end: {rows}"
        time.sleep(0.1)
    for status, error, duration, key, outcome, dials in rows:
        assert dials == 1, f"{key} was dialed {dials} times"
        assert (status, error) == ("completed", None), f"{key}: {status} {error}"
        want = expected_event(key)
        assert (outcome, duration) == (want.outcome.value, want.duration_s)


def test_ctrl_c_waits_for_live_calls_to_end(tmp_path: Path) -> None:
    serve = Serve(tmp_path, grace_s=30)
    serve.start()
    try:
        batch_id = start_five_calls(serve)
        serve.signal(signal.SIGINT)
        took = serve.wait_exit(60)
    finally:
        assert serve.proc is not None
        serve.proc.stop()
    assert took < 30, f"stopping took {took:.1f} s"
    # Ended by the process that placed them, before it exited.
    assert_real_outcomes(serve, batch_id, timeout_s=0)


def test_ctrl_c_twice_hands_live_calls_over_to_the_next_process(tmp_path: Path) -> None:
    serve = Serve(tmp_path, grace_s=30)
    serve.start()
    try:
        batch_id = start_five_calls(serve)
        serve.signal(signal.SIGINT)
        time.sleep(0.3)
        serve.signal(signal.SIGINT)  # do not wait for them
        took = serve.wait_exit(60)
        assert took < 10, f"a second Ctrl-C still took {took:.1f} s"
        live = serve.rows(
            f"SELECT count(*) FROM calls WHERE batch_id = '{batch_id}' AND status = 'dialing'"
        )[0][0]
        assert live >= 1, "the calls ended before the second Ctrl-C: nothing was handed over"
        serve.start()  # `make run` again
        assert_real_outcomes(serve, batch_id)
    finally:
        assert serve.proc is not None
        serve.proc.stop()


def test_sigterm_on_one_of_three_workers_on_postgresql_loses_nothing(tmp_path: Path) -> None:
    """3 `dialbatch worker` processes on PostgreSQL share a batch; one gets SIGTERM while
    it follows live calls. It hands them over (a grace period shorter than the calls), the
    others take them over at once and follow each to its real end: every call completes,
    dialed once, none "unknown"."""
    if "postgresql" not in _backends.selected_backends():
        pytest.skip("PostgreSQL is not reachable")
    with chaos.scratch_database(_backends.ADMIN_URL) as url:
        migrate.upgrade(to_async_url(url))
        batch_id = asyncio.run(_prepare_pg(url, calls=30))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIALBATCH_")}
        env.update(
            DIALBATCH_DATABASE_URL=url,
            DIALBATCH_DATA_DIR=str(tmp_path / "data"),
            DIALBATCH_POLL_INTERVAL_S="0.05",
            DIALBATCH_STOP_GRACE_S="0.5",
            PYTHONUNBUFFERED="1",  # the test reads the log as it is written
            DIALBATCH_LOG_LEVEL="info",
        )
        workers = [
            chaos.Proc(f"worker{i}", chaos.dialbatch_cmd("worker"), env, tmp_path) for i in range(3)
        ]
        try:
            for w in workers:
                w.start()
            owners = [_owner(w) for w in workers]
            # The victim is whichever worker first follows two live calls: on a busy host one
            # worker may start late and never hold two while the others share the batch.
            deadline = time.monotonic() + 60
            following = (
                "SELECT lease_owner FROM calls WHERE status = 'dialing' "
                "GROUP BY lease_owner HAVING count(*) >= 2"
            )
            while not (holders := {r[0] for r in _pg_rows(url, following)} & set(owners)):
                assert time.monotonic() < deadline, "no worker followed two live calls"
                time.sleep(0.05)
            lost = sorted(holders)[0]
            victim = workers[owners.index(lost)]
            assert victim.popen is not None
            victim.popen.send_signal(signal.SIGTERM)
            victim.popen.wait(30)
            assert victim.popen.returncode == 0, victim.log_text()[-2000:]
            handed = re.search(r"handed over (\d+) live dials", victim.log_text())
            assert handed and int(handed.group(1)) >= 1, victim.log_text()[-2000:]
            rows = _wait_final(url, batch_id, 30, timeout_s=120)
        finally:
            for w in workers:
                w.stop()
        others = "".join(w.log_text() for w in workers if w is not victim)
    assert f"lost its worker {lost}" in others  # the log names the worker that left
    for status, error, duration, key, dials in rows:
        assert dials == 1, f"{key} was dialed {dials} times"
        assert (status, error) == ("completed", None), f"{key}: {status} {error}"
        assert duration == expected_event(key).duration_s


async def _prepare_pg(url: str, calls: int) -> str:
    from dialbatch.store import batches, workspaces
    from dialbatch.store.engine import Database

    db = Database(to_async_url(url))
    try:
        async with db.write() as conn:
            await workspaces.create_workspace(
                conn, workspace_id="ws_stop", max_concurrent_calls=9, calls_per_second=50
            )
            await workspaces.create_agent(
                conn,
                "ws_stop",
                name="stop",
                provider="simulated",
                provider_config=AGENT_CONFIG,
                agent_id="agent_stop",
            )

        async def rows() -> Any:
            yield [(i, f"+1202555{i:04d}", "{}") for i in range(calls)]

        batch_id = f"batch_{os.getpid():x}stop"
        async with db.write() as conn:
            await batches.insert_batch(
                conn,
                batch_id=batch_id,
                workspace_id="ws_stop",
                agent_id="agent_stop",
                scheduled_at=None,
                callback_policy={"enabled": False, "maxAttempts": 1, "gaps": []},
                source_name=None,
                rows=rows(),
            )
        return batch_id
    finally:
        await db.dispose()


def _owner(worker: chaos.Proc) -> str:
    deadline = time.monotonic() + 180  # importing the provider SDKs is slow on a busy host
    while True:
        found = re.search(r"worker started.*worker=(w-[0-9a-f]+)", worker.log_text())
        if found:
            return found.group(1)
        assert worker.alive(), worker.log_text()[-2000:]
        assert time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.05)


def _pg_rows(url: str, sql: str) -> list[Any]:
    async def run() -> list[Any]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


def _wait_final(url: str, batch_id: str, n: int, timeout_s: float) -> list[Any]:
    sql = (
        "SELECT c.status, c.error, c.duration_s, a.dial_key, "
        "(SELECT count(*) FROM attempts x WHERE x.call_id = c.id) "
        "FROM calls c JOIN attempts a ON a.call_id = c.id AND a.n = c.attempt "
        f"WHERE c.batch_id = '{batch_id}'"
    )
    deadline = time.monotonic() + timeout_s
    while True:
        rows = _pg_rows(url, sql)
        if len(rows) == n and all(r[0] in ("completed", "failed") for r in rows):
            return [tuple(r) for r in rows]
        assert time.monotonic() < deadline, f"calls did not end: {rows}"
        time.sleep(0.2)
