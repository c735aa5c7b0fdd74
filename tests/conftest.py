"""Shared fixtures: a migrated database per test on each backend (SQLite: a copy of a
template migrated once; PostgreSQL: the run's database, truncated), a runtime (API +
dispatcher + simulated provider), an HTTP client bound to the app, and the demo
workspace's credentials. Backends: tests/_backends.py."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dialbatch.bootstrap import Demo, ensure_demo
from dialbatch.server import Runtime
from dialbatch.settings import Settings, to_async_url
from dialbatch.store import migrate, workspaces
from dialbatch.store.engine import Database
from tests import _backends

BACKENDS = _backends.selected_backends()

# The API's rate limits are generous, but tests send hundreds of requests (and wrong keys)
# in a blink: every test's settings, and every server process a test starts, get limits no
# test reaches. The rate-limit tests (tests/api/test_ratelimit.py) set their own.
for _name, _value in {
    "DIALBATCH_RATE_LIMIT_PER_S": "1000000",
    "DIALBATCH_RATE_LIMIT_BURST": "1000000",
    "DIALBATCH_AUTH_FAILURES_PER_MIN": "100000000",
    "DIALBATCH_AUTH_FAILURE_BURST": "1000000",
    # ... nor are their wrong keys held back (tests/api/test_ratelimit.py sets its own).
    "DIALBATCH_AUTH_FAILURE_MAX_DELAY_S": "0",
    "DIALBATCH_CALLBACK_RATE_LIMIT_PER_S": "1000000",
    "DIALBATCH_CALLBACK_RATE_LIMIT_BURST": "1000000",
    # Processes and runtimes built by tests stop at once, handing live calls over; the grace
    # period has its own tests (tests/dispatch/test_stop.py), which set it.
    "DIALBATCH_STOP_GRACE_S": "0",
}.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}".replace("sqlite:", "sqlite+aiosqlite:", 1))
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """This run's own PostgreSQL database, migrated once and dropped at the end."""
    url = _backends.create_run_database()
    try:
        migrate.upgrade(to_async_url(url))
        yield url
    finally:
        _backends.drop_run_database(url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, template_db: Path) -> str:
    """A migrated, empty database for this test, on each backend in turn."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("pg_url")
        asyncio.run(_backends.truncate(url))
        return url
    path = tmp_path / "dialbatch.db"
    shutil.copy(template_db, path)
    return f"sqlite:///{path}"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A bare migrated database with workspace WS (cap 5, 1000 calls/s) and agent AGENT."""
    from tests.helpers import AGENT, WS

    database = Database(to_async_url(database_url))
    async with database.write() as conn:
        await workspaces.create_workspace(
            conn, workspace_id=WS, max_concurrent_calls=5, calls_per_second=1000
        )
        await workspaces.create_agent(conn, WS, name="t", provider="simulated", agent_id=AGENT)
    yield database
    await database.dispose()


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "data_dir": tmp_path,
            "simulated_time_scale": 0.002,
            "demo_max_concurrent_calls": 20,
            "demo_calls_per_second": 200,
            "poll_interval_s": 0.02,
            "retry_backoff_ms": 10,
            "demo_api_key": "test-key-demo-0001",
            # Harnesses stop at once (live calls are handed over); the grace period has
            # its own tests (tests/dispatch/test_stop.py).
            "stop_grace_s": 0.0,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@dataclass
class Harness:
    """A running process: runtime, HTTP client and the demo workspace's credentials."""

    runtime: Runtime
    client: httpx.AsyncClient
    demo: Demo

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.demo.api_key, "x-workspace-id": self.demo.workspace_id}

    async def other_workspace(self, workspace_id: str = "ws_other") -> dict[str, str]:
        """Create a second workspace (with an agent `agent_other`); returns its headers."""
        async with self.runtime.db.write() as conn:
            await workspaces.create_workspace(conn, workspace_id=workspace_id)
            _, key = await workspaces.create_api_key(conn, workspace_id)
            await workspaces.create_agent(
                conn, workspace_id, name="other", provider="simulated", agent_id="agent_other"
            )
        return {"x-api-key": key, "x-workspace-id": workspace_id}


async def start_harness(settings: Settings, *, dispatch: bool = True) -> Harness:
    runtime = Runtime.build(settings, dispatch=dispatch)
    demo = await ensure_demo(runtime.db, settings)
    await runtime.start()
    app = runtime.app()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    return Harness(runtime=runtime, client=client, demo=demo)


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    """API with a running dispatcher."""
    h = await start_harness(settings)
    try:
        yield h
    finally:
        await h.client.aclose()
        await h.runtime.stop()


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Harness]:
    """API without a dispatcher: nothing is dialed, states stay where the test puts them."""
    h = await start_harness(settings, dispatch=False)
    try:
        yield h
    finally:
        await h.client.aclose()
        await h.runtime.stop()


def csv_bytes(rows: list[str], header: str = "phone_number,first_name,last_name,email") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def numbers(n: int, start: int = 0) -> list[str]:
    """n (at most 10,000) distinct numbers that phonenumbers accepts as valid."""
    assert start + n <= 10_000
    return [f"+1202555{i:04d}" for i in range(start, start + n)]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Show the one-line "summary" property a test records (e.g. the fuzzing run's count
    of generated cases) at the end of the run, also when the tests ran in worker processes
    (pytest-xdist), whose own output is not shown."""
    lines = [
        str(value)
        for report in terminalreporter.stats.get("passed", [])
        for name, value in getattr(report, "user_properties", [])
        if name == "summary"
    ]
    if lines:
        terminalreporter.write_sep("-", "summaries")
        for line in lines:
            terminalreporter.write_line(line)
