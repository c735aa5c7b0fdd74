"""Caller-number pools through the API (an extension): an agent's `fromNumbers` rotate, a
recipient gets the pool's local number, a retry keeps its first number, each number keeps
its own calls-per-second, all checked against the simulated carrier's record; and the
pool's settings and their error cases."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from typing import Any

from dialbatch.providers.simulated import SimulatedProvider
from dialbatch.store import workspaces
from tests.api.conftest import (
    Harness,
    assert_error_shape,
    get_call,
    list_all_calls,
    numbers,
    people,
    start_batch,
    wait_for_batch,
)

AGENTS = "/v1/api/agents"
NY, LA, DC = "+12125550100", "+13105550100", "+12025550100"


async def make_agent(h: Harness, outcomes: dict[str, float], **extra: Any) -> dict[str, Any]:
    r = await h.client.post(
        AGENTS,
        headers=h.headers,
        json={
            "name": "pool",
            "fromNumbers": [NY, LA, DC],
            "providerConfig": {"outcomes": outcomes, "ringTimeoutSeconds": 2},
            **extra,
        },
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def carrier_of(h: Harness) -> SimulatedProvider:
    carrier = h.runtime.providers["simulated"]
    assert isinstance(carrier, SimulatedProvider)
    return carrier


async def test_the_pool_rotates_keeps_a_persons_number_and_is_local(harness: Harness) -> None:
    h = harness
    agent = await make_agent(h, {"busy": 1})
    new_york = [f"+1212555{n:04d}" for n in range(3)]
    elsewhere = numbers(9, start=400)  # Washington DC numbers: local to the pool's 202
    san_francisco = [f"+1415555{n:04d}" for n in range(6)]
    policy = json.dumps({"busy": {"maxDials": 2, "gapsSeconds": [0.01]}})
    started = await start_batch(
        h,
        people(new_york + san_francisco + elsewhere[:3]),
        agent_id=agent["id"],
        retryPolicy=policy,
    )
    assert started.status_code == 200, started.text
    batch_id = started.json()["batchId"]
    await wait_for_batch(h, batch_id, timeout=60)
    carrier = carrier_of(h)
    by_recipient: dict[str, list[str]] = defaultdict(list)
    for call in await list_all_calls(h, batch_id):
        detail = await get_call(h, batch_id, call["jobId"])
        assert detail["attempts"] == 2
        for entry in detail["attemptHistory"]:
            record = carrier.record(f"{call['jobId']}:{entry['attempt']}")
            assert record is not None
            # The number the history names is the number the carrier was asked to show.
            assert entry["fromNumber"] == record[0].from_
            by_recipient[call["phone_number"]].append(entry["fromNumber"])
    # Every retry of a person shows the number of the first dial.
    assert all(len(set(shown)) == 1 for shown in by_recipient.values()), by_recipient
    # Local presence: 212 recipients see the 212 number, 202 recipients the 202 number.
    assert {by_recipient[p][0] for p in new_york} == {NY}
    assert {by_recipient[p][0] for p in elsewhere[:3]} == {DC}
    # No local number for 415: rotation, across the whole pool.
    assert {by_recipient[p][0] for p in san_francisco} == {NY, LA, DC}


async def test_each_number_keeps_its_own_calls_per_second(harness: Harness) -> None:
    h = harness
    limits = {NY: {"callsPerSecond": 1}, LA: {"callsPerSecond": 1}}
    r = await h.client.post(
        AGENTS,
        headers=h.headers,
        json={
            "name": "paced",
            "fromNumbers": [NY, LA],
            "callerNumberLimits": limits,
            "providerConfig": {"outcomes": {"completed": 1}, "meanTalkSeconds": 3},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["callerNumberLimits"] == limits
    started = await start_batch(h, people(numbers(8, start=500)), agent_id=r.json()["id"])
    batch_id = started.json()["batchId"]
    await wait_for_batch(h, batch_id, timeout=60)
    jobs = {c["jobId"] for c in await list_all_calls(h, batch_id)}
    mine = [d for d in carrier_of(h).ledger() if d["dialKey"].rsplit(":", 1)[0] in jobs]
    assert len(mine) == 8
    starts: dict[str, list[int]] = defaultdict(list)
    for d in mine:
        starts[d["from"]].append(d["startedAt"])
    assert set(starts) == {NY, LA}
    for number, at in starts.items():
        at.sort()
        gaps = [b - a for a, b in itertools.pairwise(at)]
        assert min(gaps) >= 1000, (number, gaps)  # never two starts within a second


async def test_the_pool_is_shown_changed_and_warned_about(harness: Harness) -> None:
    h = harness
    agent = await make_agent(h, {"completed": 1}, callerNumberLimits={NY: {"perDay": 500}})
    r = await h.client.get(f"{AGENTS}/{agent['id']}", headers=h.headers)
    assert r.status_code == 200, r.text
    shown = r.json()
    assert shown["fromNumbers"] == [NY, LA, DC]
    assert shown["callerNumberLimits"] == {NY: {"perDay": 500}}
    # 3 numbers for a cap of 20 concurrent calls (the test workspace's).
    assert len(shown["warnings"]) == 1 and "cap of 20" in shown["warnings"][0]
    # Written in any form, stored in E.164; the limits of a number that left go with it.
    r = await h.client.patch(
        f"{AGENTS}/{agent['id']}", headers=h.headers, json={"fromNumbers": ["(310) 555-0100"]}
    )
    assert r.status_code == 400  # no country code: the pool is E.164 or +country
    r = await h.client.patch(
        f"{AGENTS}/{agent['id']}", headers=h.headers, json={"fromNumbers": [LA, "+1 310 555 0100"]}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["fromNumbers"], r.json()["callerNumberLimits"]) == ([LA], {})
    r = await h.client.patch(
        f"{AGENTS}/{agent['id']}",
        headers=h.headers,
        json={"callerNumberLimits": {"+1 (310) 555-0100": {"callsPerSecond": 2}}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["callerNumberLimits"] == {LA: {"callsPerSecond": 2}}
    listed = (await h.client.get(AGENTS, headers=h.headers)).json()["agents"]
    assert [a["callerNumberLimits"] for a in listed if a["id"] == agent["id"]] == [
        {LA: {"callsPerSecond": 2}}
    ]


async def test_bad_pool_settings_are_400_naming_the_field_and_change_nothing(
    harness: Harness,
) -> None:
    h = harness
    agent = await make_agent(h, {"completed": 1})
    path = f"{AGENTS}/{agent['id']}"
    cases = [
        ({"callerNumberLimits": {NY: {"callsPerSecond": 0}}}, f"{NY}.callsPerSecond"),
        ({"callerNumberLimits": {NY: {"perDay": -1}}}, f"{NY}.perDay"),
        ({"callerNumberLimits": {NY: {"rate": 1}}}, "unknown key 'rate'"),
        ({"callerNumberLimits": {"+14155550100": {"perDay": 1}}}, "not one of"),
        ({"callerNumberLimits": {"banana": {"perDay": 1}}}, "callerNumberLimits.banana"),
        ({"fromNumbers": [NY, "12"]}, "fromNumbers[1]"),
        ({"fromNumbers": "+12125550100"}, "fromNumbers"),
        ({"pool": [NY]}, "pool"),
    ]
    for body, words in cases:
        r = await h.client.patch(path, headers=h.headers, json=body)
        assert words in assert_error_shape(r, 400)["message"], (body, r.text)
    r = await h.client.post(
        AGENTS,
        headers=h.headers,
        json={"name": "x", "fromNumbers": [NY], "callerNumberLimits": {NY: {"perDay": 0}}},
    )
    assert r.status_code == 400 and f"{NY}.perDay" in r.json()["message"]
    after = (await h.client.get(path, headers=h.headers)).json()
    assert (after["fromNumbers"], after["callerNumberLimits"]) == ([NY, LA, DC], {})


async def test_an_unknown_or_another_workspaces_agent_is_404(harness: Harness) -> None:
    h = harness
    for method in ("GET", "PATCH"):
        r = await h.client.request(
            method, f"{AGENTS}/agent_nope", headers=h.headers, json={"fromNumbers": [NY]}
        )
        assert "agent_nope" in assert_error_shape(r, 404)["message"]
    async with h.runtime.db.write() as conn:
        await workspaces.create_workspace(conn, workspace_id="ws_other", name="other")
        theirs = await workspaces.create_agent(
            conn, "ws_other", name="theirs", provider="simulated", from_numbers=[NY]
        )
    for method in ("GET", "PATCH"):
        r = await h.client.request(
            method, f"{AGENTS}/{theirs.id}", headers=h.headers, json={"fromNumbers": [LA]}
        )
        assert r.status_code == 404, r.text
    async with h.runtime.db.read() as conn:
        still = await workspaces.get_agent(conn, "ws_other", theirs.id)
    assert still is not None and still.from_numbers == [NY]
