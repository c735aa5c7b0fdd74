"""Cancelling a batch hangs up nothing that is live unless asked (`hangupActive=true`, an
extension), and never dials again either way."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from dialbatch.store import calls as call_store
from tests.api.conftest import (
    BASE,
    LEGACY_BASE,
    Harness,
    assert_error_shape,
    create_agent,
    get_call,
    list_all_calls,
    numbers,
    people,
    start_batch,
    wait_for_batch,
)
from tests.helpers import assert_consistent

ROWS = 10
LIVE = 3  # small_pool: the workspace holds three calls at once


async def live_batch(h: Harness, ring_seconds: float) -> tuple[str, list[str]]:
    """A batch whose first three calls ring for `ring_seconds` (simulated) and then
    complete; returns it once all three are live with a provider id."""
    agent = await create_agent(
        h, {"completed": 1}, ringSeconds=[ring_seconds, ring_seconds], meanTalkSeconds=5
    )
    r = await start_batch(h, people(numbers(ROWS)), agent_id=agent)
    assert r.status_code == 200, r.text
    batch_id = r.json()["batchId"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        async with h.runtime.db.read() as conn:
            live = await call_store.live_provider_call_ids(conn, h.demo.workspace_id, batch_id)
        if len(live) == LIVE:
            active = await list_all_calls(h, batch_id, status="active")
            return batch_id, [c["jobId"] for c in active]
        await asyncio.sleep(0.02)
    raise AssertionError("the batch's first calls never went live")


def dials(h: Harness) -> int:
    n: int = h.runtime.providers["simulated"].dials  # type: ignore[attr-defined]
    return n


async def check_exact(h: Harness, batch_id: str) -> dict[str, int]:
    """Counters equal COUNT(*) by status; the workspace's slots equal the calls holding
    one. Returns the counts."""
    real = await assert_consistent(h.runtime.db, batch_id, h.demo.workspace_id)
    return {str(k): int(v) for k, v in real.items()}


async def ended(h: Harness, batch_id: str, timeout: float = 15.0) -> dict[str, Any]:
    return await wait_for_batch(h, batch_id, timeout=timeout)


async def test_plain_cancel_lets_live_calls_finish_and_dials_nothing_new(
    small_pool: Harness,
) -> None:
    h = small_pool
    # 500 simulated seconds of ringing: about a second here, then each call completes.
    batch_id, live = await live_batch(h, ring_seconds=500)
    r = await h.client.delete(f"{BASE}/{batch_id}", headers=h.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "hungUpCalls" not in body
    assert "run to their end" in body["message"]
    dialed = dials(h)
    final = await ended(h, batch_id)
    assert dials(h) == dialed  # nothing dialed after the cancel
    assert final["status"] == "cancelled"
    for job in live:
        call = await get_call(h, batch_id, job)
        assert call["status"] == "completed", call
    real = await check_exact(h, batch_id)
    assert real == {"completed": dialed, "cancelled": ROWS - dialed}


async def test_hangup_active_ends_live_calls_at_once(small_pool: Harness) -> None:
    h = small_pool
    # 100,000 simulated seconds of ringing: these calls would stay live for minutes.
    batch_id, live = await live_batch(h, ring_seconds=100_000)
    r = await h.client.delete(
        f"{BASE}/{batch_id}", headers=h.headers, params={"hangupActive": "true"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "cancelled"
    assert body["hungUpCalls"] == LIVE
    assert body["details"]["totalCalls"] == ROWS
    dialed = dials(h)
    final = await ended(h, batch_id, timeout=10)
    assert final["status"] == "cancelled"
    assert dials(h) == dialed == LIVE
    for job in live:
        call = await get_call(h, batch_id, job)
        assert call["status"] == "failed", call
        assert call["error"] == "Call canceled"
        assert call["attempts"] == 1  # a canceled call is not retried
    real = await check_exact(h, batch_id)
    assert real == {"failed": LIVE, "cancelled": ROWS - LIVE}


async def test_hangup_on_an_already_cancelled_batch_and_on_the_legacy_path(
    small_pool: Harness,
) -> None:
    """A plain cancel first, then a second one asking to hang up what is still live."""
    h = small_pool
    batch_id, _ = await live_batch(h, ring_seconds=100_000)
    first = await h.client.delete(f"{LEGACY_BASE}/{batch_id}", headers=h.headers)
    assert first.status_code == 200, first.text
    await asyncio.sleep(0.2)
    assert (await wait_for_batch(h, batch_id, lambda b: True))["progress"]["active"] == LIVE
    second = await h.client.delete(
        f"{LEGACY_BASE}/{batch_id}", headers=h.headers, params={"hangupActive": "1"}
    )
    assert second.status_code == 200, second.text
    assert second.json()["hungUpCalls"] == LIVE
    await ended(h, batch_id, timeout=10)
    assert await check_exact(h, batch_id) == {"failed": LIVE, "cancelled": ROWS - LIVE}


async def test_hangup_flag_is_validated_and_scoped_to_the_workspace(
    small_pool: Harness,
) -> None:
    h = small_pool
    batch_id, _ = await live_batch(h, ring_seconds=100_000)
    bad = await h.client.delete(
        f"{BASE}/{batch_id}", headers=h.headers, params={"hangupActive": "maybe"}
    )
    assert_error_shape(bad, 400)
    other = await h.other_workspace()
    foreign = await h.client.delete(
        f"{BASE}/{batch_id}", headers=other, params={"hangupActive": "true"}
    )
    assert_error_shape(foreign, 404)
    status = await wait_for_batch(h, batch_id, lambda b: True)
    assert status["status"] == "processing" and status["progress"]["active"] == LIVE
    # Clean up: the calls would otherwise ring on past the end of the test.
    r = await h.client.delete(
        f"{BASE}/{batch_id}", headers=h.headers, params={"hangupActive": "true"}
    )
    assert r.json()["hungUpCalls"] == LIVE
    await ended(h, batch_id, timeout=10)
