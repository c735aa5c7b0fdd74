"""A call's attempt history (`attemptHistory` on GET .../calls/{jobId}, an extension): one
entry per dial, matching the carrier's own record dial for dial; and its error cases."""

from __future__ import annotations

import json

from dialbatch.providers.simulated import SimulatedProvider
from tests.api.conftest import (
    BASE,
    MISSING_BATCH,
    Harness,
    get_call,
    list_all_calls,
    numbers,
    people,
    start_batch,
    wait_for_batch,
)

CALLER = "+12025550100"


async def test_every_dial_of_a_retried_call_is_in_its_history(harness: Harness) -> None:
    h = harness
    r = await h.client.post(
        "/v1/api/agents",
        headers=h.headers,
        json={
            "name": "history",
            "fromNumbers": [CALLER],
            "providerConfig": {
                "outcomes": {"busy": 2, "no-answer": 1, "completed": 1},
                "ringTimeoutSeconds": 5,
                "meanTalkSeconds": 5,
            },
        },
    )
    assert r.status_code == 201, r.text
    policy = {"enabled": True, "maxAttempts": 3, "gaps": [{"days": 0, "hours": 0}]}
    started = await start_batch(
        h,
        people(numbers(8)),
        agent_id=r.json()["id"],
        smartCallbackConfig=json.dumps(policy),
    )
    assert started.status_code == 200, started.text
    batch_id = started.json()["batchId"]
    await wait_for_batch(h, batch_id, timeout=30)
    carrier = h.runtime.providers["simulated"]
    assert isinstance(carrier, SimulatedProvider)
    total = 0
    for call in await list_all_calls(h, batch_id):
        detail = await get_call(h, batch_id, call["jobId"])
        history = detail["attemptHistory"]
        assert [a["attempt"] for a in history] == list(range(1, detail["attempts"] + 1))
        total += len(history)
        previous_end = 0
        for entry in history:
            record = carrier.record(f"{call['jobId']}:{entry['attempt']}")
            assert record is not None, entry  # every dial in the history reached the carrier
            request, event, ended = record
            assert ended
            assert entry["outcome"] == event.outcome.value
            assert entry["providerCallId"] == event.provider_call_id
            assert entry["providerCode"] == event.provider_code
            assert entry["duration"] == event.duration_s
            assert entry["fromNumber"] == request.from_ == CALLER
            assert entry["provider"] == "simulated"
            assert previous_end <= entry["startTime"] <= entry["endTime"]
            previous_end = entry["endTime"]
        # Only the last dial may have reached the person; the others are why it was retried.
        assert all(a["outcome"] != "completed" for a in history[:-1])
        last = history[-1]["outcome"]
        assert (last == "completed") == (detail["status"] == "completed")
        assert last == "completed" or len(history) == 3
    assert total == carrier.dials > 8  # and the carrier placed no dial the history lacks


async def test_a_call_not_yet_dialed_has_an_empty_history(api: Harness) -> None:
    started = await start_batch(api, numbers(2))
    batch_id = started.json()["batchId"]
    (first, _) = await list_all_calls(api, batch_id)
    detail = await get_call(api, batch_id, first["jobId"])
    assert detail["attemptHistory"] == [] and detail["attempts"] == 0


async def test_history_error_cases(api: Harness) -> None:
    """The contract's call-not-found answer (its own shape) for an unknown batch, another
    workspace's batch and a malformed job id: no history leaks across workspaces."""
    started = await start_batch(api, numbers(2))
    batch_id = started.json()["batchId"]
    (first, _) = await list_all_calls(api, batch_id)
    job = first["jobId"]
    other = await api.other_workspace()
    for path, headers in [
        (f"{BASE}/{MISSING_BATCH}/calls/{job}", api.headers),
        (f"{BASE}/{batch_id}/calls/{job}", other),
        (f"{BASE}/{batch_id}/calls/not-a-job", api.headers),
    ]:
        r = await api.client.get(path, headers=headers)
        assert r.status_code == 404, r.text
        assert r.json()["status"] == "not_found" and "attemptHistory" not in r.json()
