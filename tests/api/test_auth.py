"""The auth matrix on every endpoint: a request without a live key of the named workspace is
401 and changes nothing; another workspace's batch reads exactly like a missing one."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from dialbatch.domain.ids import job_id
from dialbatch.store import suppressions, workspaces
from dialbatch.store.tables import webhook_deliveries, webhook_endpoints
from tests.api.conftest import (
    BASE,
    LEGACY_BASE,
    MISSING_BATCH,
    Harness,
    assert_error_shape,
    batch_count,
    get_batch,
    numbers,
    start_batch,
)

AGENTS = "/v1/api/agents"
WEBHOOKS = "/v1/api/webhooks"

# Every operation the server exposes behind a key (the health probes and docs need none).
SUPPRESSIONS = "/v1/api/suppressions"
SUPPRESSED = "+12025550177"  # on workspace A's list; no batch of the tests calls it
ROUTES: list[tuple[str, str]] = [
    ("POST", BASE),
    ("GET", BASE),
    ("GET", BASE + "/{batchId}"),
    ("GET", BASE + "/{batchId}/status"),
    ("GET", BASE + "/{batchId}/calls"),
    ("GET", BASE + "/{batchId}/calls/{jobId}"),
    ("GET", BASE + "/{batchId}/export"),
    ("DELETE", BASE + "/{batchId}"),
    ("DELETE", LEGACY_BASE + "/{batchId}"),
    ("GET", AGENTS),
    ("POST", AGENTS),
    ("POST", AGENTS + "/{agentId}/secret"),
    ("GET", AGENTS + "/{agentId}"),
    ("PATCH", AGENTS + "/{agentId}"),  # the agent's caller-number pool
    # campaign extensions
    ("POST", BASE + "/{batchId}/pause"),
    ("POST", BASE + "/{batchId}/resume"),
    ("POST", BASE + "/{batchId}/retry-failed"),
    ("GET", "/v1/api/workspace"),
    ("PATCH", "/v1/api/workspace"),
    ("POST", "/v1/api/workspace/pause"),
    ("POST", "/v1/api/workspace/resume"),
    ("POST", BASE + "/validate"),
    ("PUT", "/v1/api/workspace/failure-stop"),
    ("PATCH", BASE + "/{batchId}"),  # a running batch's maxConcurrency and priority
    # Live events and webhooks (tests/api/test_events.py, tests/api/test_webhooks.py)
    ("POST", "/v1/api/events/token"),
    ("GET", "/v1/api/events"),
    ("GET", BASE + "/{batchId}/events"),
    ("POST", WEBHOOKS),
    ("GET", WEBHOOKS),
    ("GET", WEBHOOKS + "/{webhookId}"),
    ("DELETE", WEBHOOKS + "/{webhookId}"),
    ("GET", WEBHOOKS + "/{webhookId}/deliveries"),
    ("POST", WEBHOOKS + "/{webhookId}/deliveries/{deliveryId}/replay"),
    # The suppression list (tests/api/test_suppressions.py)
    ("POST", SUPPRESSIONS),
    ("GET", SUPPRESSIONS),
    ("GET", SUPPRESSIONS + "/{phoneNumber}"),
    ("DELETE", SUPPRESSIONS + "/{phoneNumber}"),
]
BATCH_ROUTES = [(m, p) for m, p in ROUTES if "{batchId}" in p]
OPEN_PATHS = {
    "/healthz",
    "/readyz",
    # open unless DIALBATCH_METRICS_TOKEN is set (tests/api/test_metrics.py)
    "/metrics",
    # authenticated by the provider's signature instead (tests/api/test_callbacks.py)
    "/v1/providers/{provider}/callbacks",
    "/v1/providers/{provider}/callbacks/{path}",
    # signed with the agent's secret (tests/api/test_results.py)
    "/v1/api/calls/{jobId}/result",
}


def route_id(route: tuple[str, str]) -> str:
    return f"{route[0]} {route[1].removeprefix('/v1')}"


async def send(
    h: Harness, route: tuple[str, str], headers: dict[str, str], batch_id: str, job: str
) -> httpx.Response:
    """A well-formed request to `route`: only the credentials vary between cases."""
    method, template = route
    url = template.format(
        batchId=batch_id,
        jobId=job,
        agentId=h.demo.agent_id,
        webhookId=WEBHOOK_ID,
        deliveryId=DELIVERY_ID,
        phoneNumber=SUPPRESSED,
    )
    if template.endswith("/events"):
        return await _open_stream(h, url, headers)
    if (method, template) == ("POST", WEBHOOKS):
        # A public address, never contacted: this process runs no deliverer.
        body = {"url": "https://93.184.216.34/hook", "events": ["call.completed"]}
        return await h.client.post(url, headers=headers, json=body)
    if (method, template) in {("POST", BASE), ("POST", BASE + "/validate")}:
        return await h.client.post(
            url,
            headers=headers,
            files={"file": ("c.csv", b"phone_number\n+12025550123\n", "text/csv")},
            data={"agentId": h.demo.agent_id},
        )
    if (method, template) == ("PATCH", BASE + "/{batchId}"):
        return await h.client.patch(url, headers=headers, json={"priority": 0})
    if (method, template) == ("PATCH", AGENTS + "/{agentId}"):
        return await h.client.patch(url, headers=headers, json={"callerNumberLimits": {}})
    if (method, template) == ("PATCH", "/v1/api/workspace"):
        return await h.client.patch(url, headers=headers, json={"frequencyCaps": None})
    if (method, template) == ("POST", SUPPRESSIONS):
        return await h.client.post(url, headers=headers, json={"phoneNumbers": [SUPPRESSED]})
    if (method, template) == ("POST", AGENTS):
        return await h.client.post(url, headers=headers, json={"name": "intruder"})
    return await h.client.request(method, url, headers=headers)


WEBHOOK_ID = "wh_auth"
DELIVERY_ID = 1


async def _open_stream(h: Harness, url: str, headers: dict[str, str]) -> httpx.Response:
    """An event stream, ended by the server once it has started (the test transport
    buffers a response until it ends)."""
    task = asyncio.create_task(h.client.get(url, headers=headers))
    poller = h.client._transport.app.state.event_poller  # type: ignore[attr-defined]
    while not task.done():
        if poller.clients:
            poller.end_streams()
        await asyncio.sleep(0.01)
    return await task


async def _add_webhook(h: Harness) -> None:
    """Webhook WEBHOOK_ID of workspace A, with one delivery (DELIVERY_ID)."""
    async with h.runtime.db.write() as conn:
        await conn.execute(
            webhook_endpoints.insert().values(
                id=WEBHOOK_ID,
                workspace_id=h.demo.workspace_id,
                url="https://93.184.216.34/hook",
                events=["call.completed"],
                created_at=0,
            )
        )
        await conn.execute(
            webhook_deliveries.insert().values(
                id=DELIVERY_ID,
                endpoint_id=WEBHOOK_ID,
                workspace_id=h.demo.workspace_id,
                outbox_id=1,
                event="call.completed",
                status="dead",
                next_attempt_at=0,
                created_at=0,
            )
        )


@dataclass
class World:
    """Workspace A (the demo) with one queued batch, and workspace B with its own key."""

    h: Harness
    batch_id: str
    job_id: str
    b_headers: dict[str, str]
    revoked_key: str

    @property
    def a_headers(self) -> dict[str, str]:
        return self.h.headers


@pytest.fixture
async def world(api: Harness) -> AsyncIterator[World]:
    r = await start_batch(api, numbers(3))
    assert r.status_code == 200, r.text
    batch_id = r.json()["batchId"]
    calls = await api.client.get(f"{BASE}/{batch_id}/calls", headers=api.headers)
    b_headers = await api.other_workspace()

    ws = api.demo.workspace_id
    async with api.runtime.db.write() as conn:
        key_id, secret = await workspaces.create_api_key(conn, ws, name="soon revoked")
    live = {"x-api-key": secret, "x-workspace-id": ws}
    assert (await api.client.get(f"{BASE}/{batch_id}", headers=live)).status_code == 200
    async with api.runtime.db.write() as conn:
        assert await workspaces.revoke_api_key(conn, key_id)
    await _add_webhook(api)
    async with api.runtime.db.write() as conn:  # for the suppression routes
        await suppressions.add(conn, ws, [(SUPPRESSED, "")], source="api")
    yield World(api, batch_id, calls.json()["calls"][0]["jobId"], b_headers, secret)


def credentials(world: World, case: str) -> dict[str, str]:
    a, b = world.a_headers, world.b_headers
    return {
        "no-key": {"x-workspace-id": a["x-workspace-id"]},
        "empty-key": {"x-api-key": "", "x-workspace-id": a["x-workspace-id"]},
        "no-workspace": {"x-api-key": a["x-api-key"]},
        "empty-workspace": {"x-api-key": a["x-api-key"], "x-workspace-id": ""},
        "no-headers": {},
        "wrong-key": {"x-api-key": "dbk_" + "x" * 43, "x-workspace-id": a["x-workspace-id"]},
        "key-with-a-typo": {
            "x-api-key": a["x-api-key"][:-1] + ("0" if a["x-api-key"][-1] != "0" else "1"),
            "x-workspace-id": a["x-workspace-id"],
        },
        "revoked-key": {"x-api-key": world.revoked_key, "x-workspace-id": a["x-workspace-id"]},
        "b-key-for-a": {"x-api-key": b["x-api-key"], "x-workspace-id": a["x-workspace-id"]},
        "a-key-for-b": {"x-api-key": a["x-api-key"], "x-workspace-id": b["x-workspace-id"]},
        "unknown-workspace": {"x-api-key": a["x-api-key"], "x-workspace-id": "ws_nobody"},
        "huge-workspace": {"x-api-key": a["x-api-key"], "x-workspace-id": "w" * 5000},
        "huge-key": {"x-api-key": "k" * 5000, "x-workspace-id": a["x-workspace-id"]},
    }[case]


CASES = [
    "no-key",
    "empty-key",
    "no-workspace",
    "empty-workspace",
    "no-headers",
    "wrong-key",
    "key-with-a-typo",
    "revoked-key",
    "b-key-for-a",
    "a-key-for-b",
    "unknown-workspace",
    "huge-workspace",
    "huge-key",
]


async def assert_untouched(world: World) -> None:
    """Nothing was written: one batch, still queued and whole; one agent per workspace."""
    h = world.h
    assert await batch_count(h) == 1
    assert await batch_count(h, world.b_headers) == 0
    batch = await get_batch(h, world.batch_id)
    assert batch["status"] == "queued" and batch["progress"]["waiting"] == 3
    for headers in (world.a_headers, world.b_headers):
        agents = (await h.client.get(AGENTS, headers=headers)).json()["agents"]
        assert len(agents) == 1


@pytest.mark.parametrize("route", ROUTES, ids=route_id)
async def test_bad_credentials_are_401_and_change_nothing(
    world: World, route: tuple[str, str]
) -> None:
    wrong = []
    for case in CASES:
        r = await send(world.h, route, credentials(world, case), world.batch_id, world.job_id)
        try:
            assert_error_shape(r, 401)
        except AssertionError:
            wrong.append((case, r.status_code, r.text[:200]))
    assert wrong == []
    await assert_untouched(world)


async def test_unauthenticated_upload_is_refused_before_it_is_read(world: World) -> None:
    """401, not 413 or 400: the server does not read (or judge) a stranger's 21 MB."""
    big = b"phone_number\n" + b"+12025550123\n" * (21 * 1024 * 1024 // 13)
    r = await world.h.client.post(
        BASE,
        headers=credentials(world, "wrong-key"),
        files={"file": ("big.csv", big, "text/csv")},
        data={"agentId": world.h.demo.agent_id},
    )
    assert_error_shape(r, 401)
    await assert_untouched(world)


async def test_every_401_reads_the_same_whatever_was_wrong(world: World) -> None:
    """A guesser learns nothing from the wording: wrong key, revoked key, unknown workspace
    and a key of another workspace are indistinguishable."""
    bodies = set()
    for case in ("wrong-key", "revoked-key", "b-key-for-a", "a-key-for-b", "unknown-workspace"):
        r = await send(world.h, ROUTES[2], credentials(world, case), world.batch_id, world.job_id)
        assert r.status_code == 401
        bodies.add(r.text)
    assert len(bodies) == 1, bodies


@pytest.mark.parametrize("route", ROUTES, ids=route_id)
async def test_valid_credentials_are_accepted(world: World, route: tuple[str, str]) -> None:
    """The control case of the matrix: the same requests with A's own key succeed."""
    r = await send(world.h, route, world.a_headers, world.batch_id, world.job_id)
    if route[1].endswith("/retry-failed"):  # let in, and told the batch has no failed call
        assert r.status_code == 400 and "Nothing to retry" in r.text, r.text
        return
    assert r.status_code in (200, 201), r.text


def _normalise(body: dict[str, Any], ids: list[str]) -> dict[str, Any]:
    text = str(body)
    for value in ids:
        text = text.replace(value, "<id>")
    return {"keys": sorted(body), "text": re.sub(r"<id>(_\d+)?", "<id>", text)}


@pytest.mark.parametrize("route", BATCH_ROUTES, ids=route_id)
async def test_other_workspace_batch_reads_exactly_like_a_missing_one(
    world: World, route: tuple[str, str]
) -> None:
    h, b = world.h, world.b_headers
    foreign = await send(h, route, b, world.batch_id, world.job_id)
    missing_job = job_id(MISSING_BATCH, 0)
    missing = await send(h, route, b, MISSING_BATCH, missing_job)
    own_missing = await send(h, route, world.a_headers, MISSING_BATCH, missing_job)

    assert foreign.status_code == 404, foreign.text
    assert missing.status_code == own_missing.status_code == 404
    assert foreign.headers["content-type"] == missing.headers["content-type"]
    ids = [world.batch_id, world.job_id, MISSING_BATCH, missing_job]
    assert _normalise(foreign.json(), ids) == _normalise(missing.json(), ids)
    assert _normalise(foreign.json(), ids) == _normalise(own_missing.json(), ids)
    assert "ws_demo" not in foreign.text and h.demo.workspace_id not in foreign.text
    await assert_untouched(world)


async def test_listings_show_only_the_callers_workspace(world: World) -> None:
    h, b = world.h, world.b_headers
    r = await h.client.get(BASE, headers=b)
    assert r.status_code == 200
    assert r.json()["batches"] == [] and r.json()["pagination"]["total"] == 0
    agents = (await h.client.get(AGENTS, headers=b)).json()["agents"]
    assert [a["id"] for a in agents] == ["agent_other"]
    mine = (await h.client.get(BASE, headers=world.a_headers)).json()["batches"]
    assert [x["id"] for x in mine] == [world.batch_id]


async def test_openapi_has_no_unauthenticated_batch_operation(world: World) -> None:
    """Every operation the server documents is in this file's matrix (or is a probe)."""
    spec = (await world.h.client.get("/openapi.json")).json()
    documented = {
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method in ops
        if path not in OPEN_PATHS
    }
    assert documented <= set(ROUTES), documented - set(ROUTES)
    for method, path in ROUTES:
        assert method.lower() in spec["paths"][path]
