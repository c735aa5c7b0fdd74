"""API rate limits as a client meets them: 429 in Trillet's shape with Retry-After, a budget
that refills as documented, wrong keys slowed down then refused, callbacks and agent results
apart, and one budget across API processes on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from dialbatch.settings import Settings, to_async_url
from dialbatch.store import migrate
from tests import _backends
from tests.api.conftest import BASE, Harness, start_harness

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import chaos

WRONG = {"x-api-key": "dbk_not-a-real-key-000000", "x-workspace-id": "ws_demo"}


@asynccontextmanager
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    h = await start_harness(settings, dispatch=False)
    try:
        yield h
    finally:
        await h.client.aclose()
        await h.runtime.stop()


def from_address(h: Harness, host: str) -> httpx.AsyncClient:
    """A client of the same app whose requests come from `host`."""
    transport = httpx.ASGITransport(app=h.runtime.app(), client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def assert_rate_limited(r: httpx.Response) -> dict[str, Any]:
    """Exactly Trillet's body, and a Retry-After in whole seconds that agrees with it."""
    assert r.status_code == 429, r.text
    body = r.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "reset_at"}
    assert error["code"] == "rate_limit_exceeded"
    assert isinstance(error["message"], str) and error["message"]
    assert error["reset_at"].endswith("Z")
    reset_at = datetime.fromisoformat(error["reset_at"]).timestamp()
    retry_after = r.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1
    assert reset_at - 1 <= time.time() + int(retry_after)
    assert reset_at > time.time() - 1
    return error


async def test_a_burst_past_the_limit_gets_429_then_the_limit_resets_at_reset_at(
    make_settings: Callable[..., Settings],
) -> None:
    # A token every 10 s: the whole burst and its refusals fit in one interval even on a
    # loaded machine; the reset is then waited for (up to 10 s).
    async with harness(make_settings(rate_limit_per_s=0.1, rate_limit_burst=5)) as h:
        codes = [(await h.client.get(BASE, headers=h.headers)).status_code for _ in range(5)]
        assert codes == [200] * 5
        refused = await h.client.get(BASE, headers=h.headers)
        error = assert_rate_limited(refused)
        assert "API key" in error["message"]
        # Refused requests take nothing: asking again while refused does not push reset_at.
        again = assert_rate_limited(await h.client.get(BASE, headers=h.headers))
        assert again["reset_at"] <= error["reset_at"]
        # Another key has its own budget.
        other = await h.other_workspace()
        assert (await h.client.get(BASE, headers=other)).status_code == 200
        # At reset_at a request is admitted again (one token back).
        wait = datetime.fromisoformat(error["reset_at"]).timestamp() - time.time()
        await asyncio.sleep(max(0.0, wait) + 0.05)
        assert (await h.client.get(BASE, headers=h.headers)).status_code == 200
        assert_rate_limited(await h.client.get(BASE, headers=h.headers))


async def test_every_authenticated_endpoint_draws_from_the_keys_budget(
    make_settings: Callable[..., Settings],
) -> None:
    async with harness(make_settings(rate_limit_per_s=0.1, rate_limit_burst=3)) as h:
        for path in (BASE, "/v1/api/agents", f"{BASE}/batch_00000000deadbeef"):
            assert (await h.client.get(path, headers=h.headers)).status_code in (200, 404)
        assert_rate_limited(await h.client.post(BASE, headers=h.headers))
        assert_rate_limited(await h.client.delete(f"{BASE}/batch_x", headers=h.headers))


async def test_wrong_keys_are_slowed_down_then_refused_for_that_address(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        auth_failures_per_min=1, auth_failure_burst=6, auth_failure_max_delay_s=0.5
    )
    async with harness(settings) as h:
        took = []
        for _ in range(6):
            started = time.monotonic()
            r = await h.client.get(BASE, headers=WRONG)
            took.append(time.monotonic() - started)
            assert r.status_code == 401
        # After three, each 401 is held: 0.25 s, then 0.5 s (the cap here). Only the lower
        # bounds are asserted (a loaded machine may be slower; the whole schedule is
        # tests/domain/test_ratelimit.py's).
        assert took[3] >= 0.25 and took[4] >= 0.5 and took[5] >= 0.5
        assert_rate_limited(await h.client.get(BASE, headers=WRONG))
        # While refused, even the right key from that address is refused: a guesser learns
        # nothing until the bucket refills.
        blocked = assert_rate_limited(await h.client.get(BASE, headers=h.headers))
        assert "failed authentications" in blocked["message"]
        # No key at all counts as a failure too; another address is not affected.
        assert_rate_limited(await h.client.get(BASE))
        async with from_address(h, "192.0.2.7") as elsewhere:
            assert (await elsewhere.get(BASE, headers=h.headers)).status_code == 200
            assert (await elsewhere.get(BASE, headers=WRONG)).status_code == 401


async def test_callbacks_and_agent_results_have_their_own_higher_limit(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        rate_limit_per_s=0.01,
        rate_limit_burst=1,
        callback_rate_limit_per_s=0.01,
        callback_rate_limit_burst=8,
    )
    async with harness(settings) as h:
        assert (await h.client.get(BASE, headers=h.headers)).status_code == 200
        assert_rate_limited(await h.client.get(BASE, headers=h.headers))
        # The client's budget is spent; callbacks and results are still heard (and refused
        # for their own reasons: an unknown provider, an unsigned result).
        codes = []
        for _ in range(4):
            codes.append((await h.client.post("/v1/providers/nope/callbacks")).status_code)
            result = await h.client.post("/v1/api/calls/call_0000000000000000_0/result")
            codes.append(result.status_code)
        assert 429 not in codes
        # Their own limit exists: the 9th from one address is refused.
        assert_rate_limited(await h.client.post("/v1/providers/nope/callbacks"))


async def test_api_processes_share_one_budget_on_postgresql(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    """Two API processes (two apps, each with its own engine and pool) on one PostgreSQL:
    together they admit exactly the burst. On SQLite each process has its own budget."""
    if not database_url.startswith("postgresql"):
        pytest.skip("on SQLite the buckets are each process's own (docs/configuration.md)")
    settings = make_settings(rate_limit_per_s=0.01, rate_limit_burst=10)
    async with harness(settings) as one, harness(settings) as two:
        assert one.runtime.db is not two.runtime.db
        replies = await asyncio.gather(
            *(h.client.get(BASE, headers=h.headers) for h in [one, two] * 10)
        )
        codes = [r.status_code for r in replies]
        assert codes.count(200) == 10 and codes.count(429) == 10
        for r in replies:
            if r.status_code == 429:
                assert_rate_limited(r)


def test_two_serve_processes_share_one_budget_on_postgresql(tmp_path: Path) -> None:
    """Two real `dialbatch serve --no-dispatch` processes on one PostgreSQL, as a user
    deploys them behind a load balancer: a burst spread over both admits exactly the
    burst, and each refusal is Trillet's 429 with Retry-After."""
    if "postgresql" not in _backends.selected_backends():
        pytest.skip("PostgreSQL is not reachable")
    with chaos.scratch_database(_backends.ADMIN_URL) as url:
        migrate.upgrade(to_async_url(url))
        key = asyncio.run(_workspace_with_key(url))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIALBATCH_")}
        env.update(
            DIALBATCH_HOST=chaos.HOST,
            DIALBATCH_DATABASE_URL=url,
            DIALBATCH_DATA_DIR=str(tmp_path / "data"),
            DIALBATCH_RATE_LIMIT_PER_S="0.01",  # no refill within the test
            DIALBATCH_RATE_LIMIT_BURST="10",
            DIALBATCH_LOG_LEVEL="warning",
        )
        ports = [chaos.free_port(), chaos.free_port()]
        apis = [
            chaos.Proc(
                f"api{i}",
                chaos.dialbatch_cmd("serve", "--no-dispatch"),
                {**env, "DIALBATCH_PORT": str(port)},
                tmp_path,
            )
            for i, port in enumerate(ports)
        ]
        try:
            for api in apis:
                api.start()
            for api, port in zip(apis, ports, strict=True):
                chaos.wait_http(f"http://{chaos.HOST}:{port}/readyz", api, timeout_s=180)
            headers = {"x-api-key": key, "x-workspace-id": "ws_limits"}

            async def burst() -> list[httpx.Response]:
                async with httpx.AsyncClient(timeout=30) as client:
                    return await asyncio.gather(
                        *(
                            client.get(f"http://{chaos.HOST}:{port}{BASE}", headers=headers)
                            for port in ports * 10
                        )
                    )

            replies = asyncio.run(burst())
        finally:
            for api in apis:
                api.stop()
    codes = [r.status_code for r in replies]
    assert codes.count(200) == 10 and codes.count(429) == 10, codes
    for r in replies:
        if r.status_code == 429:
            assert_rate_limited(r)


async def _workspace_with_key(url: str) -> str:
    from dialbatch.store import workspaces
    from dialbatch.store.engine import Database

    db = Database(to_async_url(url))
    try:
        async with db.write() as conn:
            await workspaces.create_workspace(
                conn, workspace_id="ws_limits", max_concurrent_calls=1, calls_per_second=1
            )
            _, key = await workspaces.create_api_key(conn, "ws_limits", name="limits")
        return key
    finally:
        await db.dispose()
