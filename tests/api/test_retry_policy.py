"""The retry policy per outcome (`retryPolicy`, an extension) through the API: each number is
dialed exactly as the policy says (the carrier's own record, checked against the policy
replayed here), every call's attemptHistory matches that record dial for dial; the
workspace default; and the 400s that name the field. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from dialbatch.providers.simulated import SimulatedProvider
from tests.api.conftest import (
    BASE,
    Harness,
    assert_error_shape,
    get_batch,
    get_call,
    list_all_calls,
    start_batch,
    wait_for_batch,
)

# The brief's policy at 1/1000 of its gaps (60 s -> 0.06 s), so the run takes a second:
# busy 3 dials after 60 s then 120 s; no-answer 2 dials; voicemail none; failed 4 dials.
POLICY: dict[str, Any] = {
    "busy": {"maxDials": 3, "gapsSeconds": [0.06, 0.12]},
    "no-answer": {"maxDials": 2, "gapsSeconds": [0.05]},
    "voicemail": False,
    "failed": {"maxDials": 4, "gapsSeconds": [0.02, 0.04]},
    "provider-error": {"maxDials": 2, "gapsSeconds": [0.03]},
}
# What each number's carrier does on its 1st, 2nd, ... dial (the last step repeats).
SCRIPT = {
    "+12025550101": ["busy"],
    "+12025550102": ["no-answer"],
    "+12025550103": ["voicemail"],
    "+12025550104": ["failed"],
    "+12025550105": ["busy", "completed"],
    "+12025550106": ["failed", "busy", "busy", "busy"],
    "+12025550107": ["refused"],
    "+12025550108": ["no-answer", "completed"],
    "+12025550109": ["completed"],
    "+12025550110": ["failed", "failed", "no-answer", "busy"],
}
SLACK_MS = 5  # the database's clock and the carrier's, read a few ms apart, round apart


def replay(steps: list[str], policy: dict[str, Any]) -> list[tuple[str, float]]:
    """The dials the policy makes against a number scripted `steps`: (outcome, gap in
    seconds before the next dial, 0 for the last). Written from docs/retries.md: the rule
    of the dial's outcome decides; maxDials counts every dial of the call; the k-th dial
    is followed by gapsSeconds[k-1], the last gap repeating."""
    dials: list[tuple[str, float]] = []
    while True:
        outcome = steps[min(len(dials), len(steps) - 1)]
        key = "provider-error" if outcome == "refused" else outcome
        rule = policy.get(key, False)
        n = len(dials) + 1
        if outcome == "completed" or not rule or n >= rule["maxDials"]:
            dials.append((outcome, 0.0))
            return dials
        gaps = rule["gapsSeconds"]
        dials.append((outcome, gaps[min(n, len(gaps)) - 1]))


async def scripted_agent(h: Harness, script: dict[str, list[str]]) -> str:
    r = await h.client.post(
        "/v1/api/agents",
        headers=h.headers,
        json={
            "name": "scripted",
            "fromNumbers": ["+12025550100"],
            "providerConfig": {"script": script, "ringTimeoutSeconds": 5, "meanTalkSeconds": 5},
        },
    )
    assert r.status_code == 201, r.text
    agent_id: str = r.json()["id"]
    return agent_id


async def test_each_number_is_dialed_exactly_as_the_policy_says(harness: Harness) -> None:
    h = harness
    agent = await scripted_agent(h, SCRIPT)
    started = await start_batch(h, list(SCRIPT), agent_id=agent, retryPolicy=json.dumps(POLICY))
    assert started.status_code == 200, started.text
    batch_id = started.json()["batchId"]
    shown = await get_batch(h, batch_id)
    assert shown["retryPolicy"]["busy"] == {
        "retry": True,
        "maxDials": 3,
        "gapsSeconds": [0.06, 0.12],
        "counting": "dials",
    }
    assert shown["retryPolicy"]["voicemail"] == {"retry": False}
    await wait_for_batch(h, batch_id, timeout=60)

    carrier = h.runtime.providers["simulated"]
    assert isinstance(carrier, SimulatedProvider)
    by_number: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for dial in carrier.ledger():
        by_number[dial["to"]].append(dial)
    calls = {c["phone_number"]: c for c in await list_all_calls(h, batch_id)}
    assert set(by_number) == set(SCRIPT) == set(calls)

    for number, steps in SCRIPT.items():
        expected = replay(steps, POLICY)
        dials = by_number[number]
        # The carrier's record: exactly the policy's dials, in order, and never earlier
        # than the policy's gap after the previous dial ended.
        assert [d["outcome"] for d in dials] == [o for o, _ in expected], number
        for before, after, (_, gap) in zip(dials, dials[1:], expected, strict=False):
            assert after["startedAt"] - before["endedAt"] >= gap * 1000 - SLACK_MS, number
        # The call's attemptHistory is that record, dial for dial.
        detail = await get_call(h, batch_id, calls[number]["jobId"])
        history = detail["attemptHistory"]
        assert detail["attempts"] == len(history) == len(dials), number
        for n, (entry, dial) in enumerate(zip(history, dials, strict=True), start=1):
            assert dial["dialKey"] == f"{calls[number]['jobId']}:{n}"
            assert entry["attempt"] == n
            if dial["outcome"] == "refused":  # nothing rang: a provider error
                assert entry["outcome"] == "failed" and entry["providerCallId"] is None
            else:
                assert entry["outcome"] == dial["outcome"]
                assert entry["providerCallId"] == dial["providerCallId"]
                assert entry["providerCode"] == dial["providerCode"]
                assert entry["endTime"] == dial["endedAt"]
            assert entry["startTime"] <= dial["startedAt"] + SLACK_MS
        final = "completed" if expected[-1][0] == "completed" else "failed"
        assert detail["status"] == final, (number, detail)
        if final == "failed" and len(dials) > 1:
            assert detail["error"].endswith(f"unable to connect after {len(dials)} attempts")


async def test_a_batch_without_a_policy_shows_what_happens_by_default(api: Harness) -> None:
    """No retryPolicy and no smartCallbackConfig: only failed dials are retried (the
    connection retries); busy, no-answer and voicemail are final after one dial."""
    started = await start_batch(api)
    body = await get_batch(api, started.json()["batchId"])
    policy = body["retryPolicy"]
    assert list(policy) == ["busy", "no-answer", "voicemail", "failed", "provider-error"]
    for outcome in ("busy", "no-answer", "voicemail"):
        assert policy[outcome] == {"retry": False}
    assert policy["failed"]["retry"] is True
    assert policy["failed"]["counting"] == "failedInARow"
    assert policy["failed"] == policy["provider-error"]


async def test_smart_callbacks_show_as_their_policy_and_retry_policy_wins_per_outcome(
    api: Harness,
) -> None:
    callbacks = {"enabled": True, "maxAttempts": 3, "gaps": [{"days": 0, "hours": 4}]}
    started = await start_batch(
        api,
        smartCallbackConfig=json.dumps(callbacks),
        retryPolicy=json.dumps({"voicemail": False}),
    )
    assert started.status_code == 200, started.text
    policy = (await get_batch(api, started.json()["batchId"]))["retryPolicy"]
    mapped = {"retry": True, "maxDials": 3, "gapsSeconds": [14400], "counting": "unreached"}
    assert policy["busy"] == policy["no-answer"] == mapped
    assert policy["voicemail"] == {"retry": False}


async def test_the_workspace_default_is_taken_by_new_batches(api: Harness) -> None:
    default = {"no-answer": {"maxDials": 2, "gapsSeconds": [3600]}}
    r = await api.client.patch(
        "/v1/api/workspace", headers=api.headers, json={"retryPolicy": default}
    )
    assert r.status_code == 200, r.text
    shown = r.json()["retryPolicy"]
    assert shown == {
        "no-answer": {"retry": True, "maxDials": 2, "gapsSeconds": [3600], "counting": "dials"}
    }
    got = await api.client.get("/v1/api/workspace", headers=api.headers)
    assert got.json()["retryPolicy"] == shown
    assert got.json()["frequencyCaps"] is None  # the other setting is untouched

    plain = await start_batch(api)
    own = await start_batch(api, retryPolicy=json.dumps({"busy": False}))
    with_callbacks = await start_batch(api, smartCallbackConfig=json.dumps({"enabled": False}))
    policy = (await get_batch(api, plain.json()["batchId"]))["retryPolicy"]
    assert policy["no-answer"] == shown["no-answer"]
    policy = (await get_batch(api, own.json()["batchId"]))["retryPolicy"]
    assert policy["no-answer"] == shown["no-answer"] and policy["busy"] == {"retry": False}
    # A smartCallbackConfig is the batch's own choice for every outcome: no default.
    policy = (await get_batch(api, with_callbacks.json()["batchId"]))["retryPolicy"]
    assert policy["no-answer"] == {"retry": False}

    cleared = await api.client.patch(
        "/v1/api/workspace", headers=api.headers, json={"retryPolicy": None}
    )
    assert cleared.status_code == 200 and cleared.json()["retryPolicy"] is None
    # A batch keeps the rules it was created with.
    policy = (await get_batch(api, plain.json()["batchId"]))["retryPolicy"]
    assert policy["no-answer"] == shown["no-answer"]
    later = await start_batch(api)
    policy = (await get_batch(api, later.json()["batchId"]))["retryPolicy"]
    assert policy["no-answer"] == {"retry": False}


async def test_a_workspace_default_is_one_workspaces_own(api: Harness) -> None:
    other = await api.other_workspace()
    r = await api.client.patch(
        "/v1/api/workspace", headers=other, json={"retryPolicy": {"busy": False}}
    )
    assert r.status_code == 200, r.text
    got = await api.client.get("/v1/api/workspace", headers=api.headers)
    assert got.json()["retryPolicy"] is None


BAD = [
    ({"bussy": False}, "retryPolicy: 'bussy' is not an outcome"),
    ({"busy": {"maxDials": 3, "gapsSeconds": [60, -5]}}, "retryPolicy.busy.gapsSeconds[1]"),
    ({"busy": {"maxDials": 3, "gapsSeconds": [0]}}, "retryPolicy.busy.gapsSeconds[0]"),
    ({"failed": {"maxDials": 0, "gapsSeconds": [1]}}, "retryPolicy.failed.maxDials"),
    ({"failed": {"maxDials": 99, "gapsSeconds": [1]}}, "retryPolicy.failed.maxDials"),
    ({"voicemail": {"maxDials": 2}}, "retryPolicy.voicemail.gapsSeconds"),
    ([1], "retryPolicy must be a JSON object"),
]


async def test_a_malformed_policy_is_a_400_naming_the_field_and_nothing_is_made(
    api: Harness,
) -> None:
    before = (await api.client.get(BASE, headers=api.headers)).json()["pagination"]["total"]
    for policy, named in BAD:
        r = await start_batch(api, retryPolicy=json.dumps(policy))
        assert named in assert_error_shape(r, 400)["message"], (policy, r.text)
        r = await api.client.post(
            BASE,
            headers=api.headers,
            json={
                "agentId": api.demo.agent_id,
                "calls": [{"phone_number": "+12025550123"}],
                "retryPolicy": policy,
            },
        )
        assert named in assert_error_shape(r, 400)["message"], (policy, r.text)
        r = await api.client.patch(
            "/v1/api/workspace", headers=api.headers, json={"retryPolicy": policy}
        )
        assert named in assert_error_shape(r, 400)["message"], (policy, r.text)
    r = await start_batch(api, retryPolicy="{not json")
    assert "retryPolicy is not valid JSON" in assert_error_shape(r, 400)["message"]
    after = (await api.client.get(BASE, headers=api.headers)).json()["pagination"]["total"]
    assert after == before
    got = await api.client.get("/v1/api/workspace", headers=api.headers)
    assert got.json()["retryPolicy"] is None


async def test_the_policy_is_in_the_openapi_document(api: Harness) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    create = doc["paths"]["/v1/api/batch-calls"]["post"]["requestBody"]["content"]
    form = create["multipart/form-data"]["schema"]["properties"]["retryPolicy"]
    assert "extension" in form["description"]
    rows = create["application/json"]["schema"]["properties"]["retryPolicy"]
    assert set(rows["properties"]) == {"busy", "no-answer", "voicemail", "failed", "provider-error"}
    patch = doc["paths"]["/v1/api/workspace"]["patch"]["requestBody"]["content"]
    assert "retryPolicy" in patch["application/json"]["schema"]["properties"]
    assert "retryPolicy" in doc["components"]["schemas"]["BatchResponse"]["properties"]
