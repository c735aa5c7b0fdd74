"""Frequency caps as a client meets them: set on the workspace, they hold across batches
(the dial ledger, not any one batch's counters), and a capped call waits, with the reason on
the call, instead of failing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import sqlalchemy as sa

from dialbatch.domain.caps import DAY_MS
from dialbatch.store.tables import attempts, calls, number_dials
from tests.api.conftest import (
    BASE,
    Harness,
    assert_error_shape,
    create_agent,
    get_call,
    numbers,
    people,
    start_batch,
)

W = "/v1/api/workspace"


async def set_caps(h: Harness, caps: Any) -> dict[str, Any]:
    r = await h.client.patch(W, headers=h.headers, json={"frequencyCaps": caps})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_caps_are_set_shown_and_removed(harness: Harness) -> None:
    h = harness
    assert (await h.client.get(W, headers=h.headers)).json()["frequencyCaps"] is None
    assert (await set_caps(h, {"per24h": 3, "per30d": 10}))["frequencyCaps"] == {
        "per24h": 3,
        "per30d": 10,
    }
    assert (await h.client.get(W, headers=h.headers)).json()["frequencyCaps"] == {
        "per24h": 3,
        "per30d": 10,
    }
    await set_caps(h, {"per24h": 2})
    assert (await h.client.get(W, headers=h.headers)).json()["frequencyCaps"] == {"per24h": 2}
    assert (await set_caps(h, None))["frequencyCaps"] is None


async def test_bad_caps_are_400_and_change_nothing(harness: Harness) -> None:
    h = harness
    await set_caps(h, {"per24h": 3})
    for body in (
        {"frequencyCaps": {"per24h": 0}},
        {"frequencyCaps": {"per24h": -1}},
        {"frequencyCaps": {"per24h": 1.5}},
        {"frequencyCaps": {"per24h": True}},
        {"frequencyCaps": {"perWeek": 3}},
        {"frequencyCaps": "3"},
        {"caps": {"per24h": 3}},
        {},
        [],
    ):
        r = await h.client.patch(W, headers=h.headers, json=body)
        assert_error_shape(r, 400)
    r = await h.client.patch(W, headers=h.headers, content=b"{")
    assert_error_shape(r, 400)
    assert (await h.client.get(W, headers=h.headers)).json()["frequencyCaps"] == {"per24h": 3}


async def test_a_24_hour_cap_holds_across_batches_and_defers_the_rest(harness: Harness) -> None:
    """Three batches call the same number (and one number each of their own) under a cap
    of 2 per 24 h: the number is dialed twice; its third call waits until the first dial
    is 24 h old, with the reason on the call; every other call completes."""
    h = harness
    await set_caps(h, {"per24h": 2})
    agent = await create_agent(h, {"completed": 1})
    shared = numbers(1)[0]
    batch_ids = []
    for i in range(3):
        r = await start_batch(h, people([shared, numbers(1, start=100 + i)[0]]), agent_id=agent)
        assert r.status_code == 200, r.text
        batch_ids.append(r.json()["batchId"])
    deadline = time.monotonic() + 30
    while True:
        held, done = [], 0
        for b in batch_ids:
            page = (await h.client.get(f"{BASE}/{b}/calls", headers=h.headers)).json()["calls"]
            done += sum(c["status"] == "completed" for c in page)
            held += [(b, c) for c in page if c["status"] == "waiting"]
        if done == 5 and len(held) == 1:
            break
        assert time.monotonic() < deadline, (done, held)
        await asyncio.sleep(0.05)
    batch_id, waiting = held[0]
    assert waiting["phone_number"] == shared
    detail = await get_call(h, batch_id, waiting["jobId"])
    decision = detail["gateDecision"]
    assert decision["kind"] == "capped" and "at most 2 per 24 hours" in decision["message"]
    async with h.runtime.db.read() as conn:
        dialed_at = sorted(
            r.at
            for r in await conn.execute(
                sa.select(number_dials.c.at).where(number_dials.c.phone_number == shared)
            )
        )
        dials = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(attempts.join(calls, attempts.c.call_id == calls.c.id))
                .where(calls.c.phone_number == shared)
            )
        ).scalar_one()
        due = (
            await conn.execute(
                sa.select(calls.c.next_attempt_at).where(
                    calls.c.batch_id == batch_id, calls.c.phone_number == shared
                )
            )
        ).scalar_one()
    assert dials == 2 and len(dialed_at) == 2
    assert decision["until"] == due == dialed_at[0] + DAY_MS
    # Waiting, not finished: its batch is not complete.
    r = await h.client.get(f"{BASE}/{batch_id}", headers=h.headers)
    assert r.json()["isComplete"] is False


async def test_a_hold_between_two_dials_is_in_the_calls_history(harness: Harness) -> None:
    """A busy number retried under a cap of 1 per 24 h: the retry is held by the cap, and
    once the cap allows it (the first dial aged 24 h) it is dialed. The second dial's
    `gateBefore` and the call's `gateHistory` both show the hold, after one dial."""
    h = harness
    await set_caps(h, {"per24h": 1})
    agent = await create_agent(h, {"busy": 1})
    policy = '{"busy": {"maxDials": 2, "gapsSeconds": [0.01]}}'
    phone = numbers(1, start=300)[0]
    r = await start_batch(h, people([phone]), agent_id=agent, retryPolicy=policy)
    assert r.status_code == 200, r.text
    batch_id = r.json()["batchId"]
    job = (await h.client.get(f"{BASE}/{batch_id}/calls", headers=h.headers)).json()["calls"][0]
    deadline = time.monotonic() + 30
    while (detail := await get_call(h, batch_id, job["jobId"]))["gateHistory"] == []:
        assert time.monotonic() < deadline, detail
        await asyncio.sleep(0.05)
    assert detail["status"] == "waiting" and detail["attempts"] == 1
    [hold] = detail["gateHistory"]
    assert hold["kind"] == "capped" and hold["afterDials"] == 1
    assert hold == {**detail["gateDecision"], "afterDials": 1}
    assert detail["attemptHistory"][0]["gateBefore"] == []
    # The first dial ages past the cap's 24 hours: the retry is dialed.
    async with h.runtime.db.write() as conn:
        await conn.execute(
            number_dials.update()
            .where(number_dials.c.phone_number == phone)
            .values(at=number_dials.c.at - DAY_MS)
        )
        await conn.execute(
            calls.update().where(calls.c.batch_id == batch_id).values(next_attempt_at=0)
        )
    while (detail := await get_call(h, batch_id, job["jobId"]))["status"] != "failed":
        assert time.monotonic() < deadline, detail
        await asyncio.sleep(0.05)
    first, second = detail["attemptHistory"]
    assert (first["outcome"], second["outcome"]) == ("busy", "busy")
    assert first["gateBefore"] == [] and second["gateBefore"] == [hold]
    assert detail["gateHistory"] == [hold]
    assert hold["at"] <= second["startTime"]
