"""The automatic stop on failure spikes through the API: a carrier that fails every dial
pauses the batch by itself after the threshold, with its reason, before 30 dials are spent;
resume is by hand; the rule is set per batch and per workspace, and a malformed one is a 400
naming its field."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from dialbatch.settings import Settings
from tests.api.conftest import (
    BASE,
    Harness,
    assert_error_shape,
    create_agent,
    get_batch,
    numbers,
    open_harness,
    people,
    start_batch,
    status_of,
    wait_for_batch,
)
from tests.helpers import assert_consistent

RULE = "/v1/api/workspace/failure-stop"


@pytest.fixture
async def paced(make_settings: Callable[..., Settings]) -> AsyncIterator[Harness]:
    """20 calls at once, 50 calls/s. What the stop can save depends on how fast failures
    come back: dials started before the threshold is crossed are spent (at most the
    concurrency cap are in flight), so the test paces them as a real workspace would."""
    async with open_harness(make_settings(demo_calls_per_second=50)) as h:
        yield h


def dials(h: Harness) -> int:
    n: int = h.runtime.providers["simulated"].dials  # type: ignore[attr-defined]
    return n


async def failing_batch(h: Harness, n: int = 200, **fields: str) -> str:
    agent = await create_agent(h, {"failed": 1})
    r = await start_batch(h, people(numbers(n)), agent_id=agent, **fields)
    assert r.status_code == 200, r.text
    batch_id: str = r.json()["batchId"]
    return batch_id


async def settle(h: Harness, batch_id: str) -> dict[str, Any]:
    """Wait until the batch is paused and its live dials have ended."""
    await wait_for_batch(
        h, batch_id, lambda b: b["status"] == "paused" and b["progress"]["active"] == 0
    )
    await asyncio.sleep(0.3)  # 15 dispatcher ticks: nothing more may start
    return await get_batch(h, batch_id)


async def test_a_carrier_that_fails_every_dial_pauses_the_batch(paced: Harness) -> None:
    h = paced
    batch_id = await failing_batch(h)
    batch = await settle(h, batch_id)
    spent = dials(h)
    assert 10 <= spent < 30, spent
    assert batch["status"] == "paused" and batch["isComplete"] is False
    reason = batch["pauseReason"]
    assert reason.startswith("Paused automatically") and "failed at the network" in reason
    assert batch["failureStop"] == {
        "enabled": True,
        "lastDials": 20,
        "failedShare": 0.5,
        "withinSeconds": 120,
    }
    assert (await status_of(h, batch_id))["pauseReason"] == reason
    assert batch["progress"]["waiting"] > 150  # the list was not burnt
    await assert_consistent(h.runtime.db, batch_id, h.demo.workspace_id)
    # Resume is by hand; it clears the reason, and the dials before it do not count again:
    # the batch dials on until the new dials cross the threshold once more.
    r = await h.client.post(f"{BASE}/{batch_id}/resume", headers=h.headers)
    assert r.status_code == 200 and r.json()["pauseReason"] is None
    again = await settle(h, batch_id)
    assert again["pauseReason"] and dials(h) >= spent + 10
    await assert_consistent(h.runtime.db, batch_id, h.demo.workspace_id)


async def test_a_batch_can_turn_it_off(harness: Harness) -> None:
    h = harness
    off = json.dumps({"enabled": False})
    batch_id = await failing_batch(h, 30, failureStop=off)
    body = await wait_for_batch(h, batch_id, timeout=30)
    assert body["status"] == "completed" and body["progress"]["failed"] == 30
    assert body.get("pauseReason") is None
    assert (await get_batch(h, batch_id))["failureStop"]["enabled"] is False


async def test_the_workspace_rule_applies_to_batches_without_their_own(harness: Harness) -> None:
    h = harness
    r = await h.client.put(RULE, headers=h.headers, json={"lastDials": 4, "failedShare": 1})
    assert r.status_code == 200, r.text
    assert r.json()["failureStop"]["lastDials"] == 4
    shown = (await h.client.get("/v1/api/workspace", headers=h.headers)).json()
    assert shown["failureStop"] == {
        "enabled": True,
        "lastDials": 4,
        "failedShare": 1.0,
        "withinSeconds": 120,
    }
    batch_id = await failing_batch(h)
    batch = await settle(h, batch_id)
    assert "the limit is 4 of 4" in batch["pauseReason"]
    assert dials(h) < 30
    # Another workspace keeps the default.
    other = await h.other_workspace()
    assert (await h.client.get("/v1/api/workspace", headers=other)).json()["failureStop"][
        "lastDials"
    ] == 20
    # null resets the default.
    reset = await h.client.put(RULE, headers=h.headers, content=b"null")
    assert reset.status_code == 200 and reset.json()["failureStop"]["lastDials"] == 20


async def test_a_malformed_rule_is_a_400_naming_the_field(api: Harness) -> None:
    for value, field in [
        ('{"lastDials": 0}', "failureStop.lastDials"),
        ('{"failedShare": 2}', "failureStop.failedShare"),
        ('{"lastDial": 3}', "lastDial"),
        ("[1]", "failureStop"),
        ("{nope", "failureStop is not valid JSON"),
    ]:
        r = await start_batch(api, numbers(2), failureStop=value)
        assert field in assert_error_shape(r, 400)["message"], (value, r.text)
    r = await api.client.post(
        BASE,
        headers=api.headers,
        json={
            "agentId": api.demo.agent_id,
            "calls": [{"phone_number": numbers(1)[0]}],
            "failureStop": {"withinSeconds": -1},
        },
    )
    assert "failureStop.withinSeconds" in assert_error_shape(r, 400)["message"]
    for body, field in [
        ({"enabled": "no"}, "failureStop.enabled"),
        ({"lastDials": 5000}, "failureStop.lastDials"),
        ({"x": 1}, "x"),
    ]:
        r = await api.client.put(RULE, headers=api.headers, json=body)
        assert field in assert_error_shape(r, 400)["message"], (body, r.text)
    r = await api.client.put(RULE, headers=api.headers, content=b"{bad")
    assert "not valid JSON" in assert_error_shape(r, 400)["message"]
    r = await api.client.put(RULE, json={})
    assert r.status_code == 401
