"""Every endpoint and field of the wire contract (/work/shared/spec), as a client reads them:
names, types, units, status words, pagination, and the documented examples' keys."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from dialbatch.settings import Settings
from tests.api.conftest import (
    BASE,
    LEGACY_BASE,
    PROGRESS_KEYS,
    SPEC_DIR,
    Frozen,
    Harness,
    assert_error_shape,
    assert_ms_near_now,
    assert_seconds,
    check_counts,
    check_recent_call,
    create_agent,
    csv_bytes,
    frozen_batch,
    get_batch,
    get_call,
    list_all_calls,
    missing_keys,
    not_applicable,
    numbers,
    people,
    row_metadata,
    spec_examples,
    start_batch,
    status_of,
    wait_for_batch,
)

_DETAIL_KEYS = {"completedCalls", "failedCalls", "cancelledCalls", "totalCalls"}
_PAGINATION_KEYS = {"page", "limit", "total", "totalPages", "hasNext", "hasPrev"}


# --- POST /v1/api/batch-calls --------------------------------------------------------------


async def test_start_batch_answers_the_documented_fields(api: Harness) -> None:
    r = await start_batch(api, people(numbers(4)))
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["batchId"], str) and body["batchId"]
    assert body["totalCalls"] == 4 and type(body["totalCalls"]) is int
    assert body["status"] == "queued"
    assert isinstance(body["message"], str) and body["message"]
    batch = await get_batch(api, body["batchId"])
    assert batch["id"] == body["batchId"] and batch["totalCalls"] == 4


async def test_start_batch_accepts_every_documented_field(api: Harness) -> None:
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    policy = {"enabled": True, "maxAttempts": 3, "gaps": [{"days": 0, "hours": 2}]}
    r = await start_batch(
        api,
        people(numbers(2)),
        scheduledAt=when,
        smartCallbackConfig=json.dumps(policy),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "queued"
    assert r.json()["totalCalls"] == 2


# --- GET batch / status on a batch nothing has touched -------------------------------------


async def test_queued_batch_reads_as_documented(api: Harness) -> None:
    batch_id = (await start_batch(api, people(numbers(3)))).json()["batchId"]
    body = await get_batch(api, batch_id)
    assert {"id", "status", "isComplete", "totalCalls", "progress", "timestamp"} <= set(body)
    assert body["id"] == batch_id
    assert body["status"] == "queued"
    assert body["isComplete"] is False
    assert body["totalCalls"] == 3
    assert_ms_near_now(body["timestamp"], slack_s=5)
    progress = body["progress"]
    assert set(progress) >= PROGRESS_KEYS
    check_counts(progress, 3)
    assert progress["waiting"] == 3
    # Nothing has started: the times are there and empty, not zero or made up.
    assert progress["startTime"] is None
    assert progress["lastCompletedTime"] is None
    assert progress["completedTime"] is None
    assert_seconds(progress["averageCallDuration"])
    assert progress["averageCallDuration"] == 0
    assert progress["recent_calls"] == []


async def test_status_endpoint_is_the_flat_form_of_get_batch(api: Harness) -> None:
    batch_id = (await start_batch(api, people(numbers(3)))).json()["batchId"]
    flat = await status_of(api, batch_id)
    nested = await get_batch(api, batch_id)
    assert {"status", "isComplete"} | PROGRESS_KEYS <= set(flat)
    assert "progress" not in flat
    assert flat["status"] == nested["status"]
    assert flat["isComplete"] == nested["isComplete"]
    for key in PROGRESS_KEYS:
        assert flat[key] == nested["progress"][key], key


# --- A run driven to completion ---------------------------------------------------------------


async def test_completed_run_reports_times_durations_and_results(harness: Harness) -> None:
    agent = await create_agent(harness, {"completed": 1})
    phones = numbers(5)
    started = time.time() * 1000
    batch_id = (await start_batch(harness, people(phones), agent_id=agent)).json()["batchId"]
    body = await wait_for_batch(harness, batch_id)

    assert body["status"] == "completed"
    assert body["isComplete"] is True
    p = body["progress"]
    check_counts(p, 5)
    assert (p["completed"], p["failed"], p["waiting"], p["active"]) == (5, 0, 0, 0)
    for key in ("startTime", "lastCompletedTime", "completedTime"):
        assert_ms_near_now(p[key])
        assert p[key] >= started - 1000, key
    assert p["startTime"] <= p["lastCompletedTime"] <= p["completedTime"] <= body["timestamp"]
    assert_seconds(p["averageCallDuration"], low=1)
    assert len(p["recent_calls"]) == 5
    for item in p["recent_calls"]:
        check_recent_call(item)
        assert item["status"] == "completed"
    assert {c["phone_number"] for c in p["recent_calls"]} == set(phones)
    assert p["lastCompletedTime"] == max(c["completedAt"] for c in p["recent_calls"])

    listed = await list_all_calls(harness, batch_id)
    assert [c["phone_number"] for c in listed] == phones
    durations = []
    for i, call in enumerate(listed):
        assert call["status"] == "completed"
        assert_ms_near_now(call["startTime"])
        assert_ms_near_now(call["endTime"])
        assert call["startTime"] <= call["endTime"]
        assert_seconds(call["duration"], low=0.1)
        durations.append(call["duration"])
        assert call.get("error") in (None, "")
        assert call["metadata"] == row_metadata(i)

        detail = await get_call(harness, batch_id, call["jobId"])
        assert detail["jobId"] == call["jobId"]
        assert detail["status"] == "completed"
        assert detail["phone_number"] == call["phone_number"]
        assert detail["startTime"] == call["startTime"]
        assert detail["endTime"] == call["endTime"]
        assert detail["duration"] == call["duration"]
        result = detail["result"]
        assert isinstance(result["callId"], str) and result["callId"]
        assert isinstance(result["transcript"], str) and result["transcript"]
        assert isinstance(result["outcome"], str) and result["outcome"]
        assert result["metadata"] == row_metadata(i)
    assert p["averageCallDuration"] == pytest.approx(sum(durations) / len(durations), abs=0.01)


async def test_failed_calls_report_error_and_failedAt(harness: Harness) -> None:
    agent = await create_agent(harness, {"busy": 1})
    phones = numbers(3)
    batch_id = (await start_batch(harness, people(phones), agent_id=agent)).json()["batchId"]
    body = await wait_for_batch(harness, batch_id)

    assert body["isComplete"] is True
    assert body["status"] in ("completed", "failed")
    p = body["progress"]
    check_counts(p, 3)
    assert (p["failed"], p["completed"], p["waiting"], p["active"]) == (3, 0, 0, 0)
    assert p["lastCompletedTime"] is None  # no call completed
    assert p["averageCallDuration"] == 0
    assert_ms_near_now(p["completedTime"])
    assert len(p["recent_calls"]) == 3
    for item in p["recent_calls"]:
        check_recent_call(item)
        assert item["status"] == "failed"
        assert "busy" in item["error"].lower()

    for i, call in enumerate(await list_all_calls(harness, batch_id)):
        assert call["status"] == "failed"
        assert_ms_near_now(call["startTime"])
        assert_ms_near_now(call["endTime"])
        assert call["startTime"] <= call["endTime"]
        assert isinstance(call["error"], str) and "busy" in call["error"].lower()
        assert call["metadata"] == row_metadata(i)
        detail = await get_call(harness, batch_id, call["jobId"])
        assert detail["status"] == "failed"
        assert detail["error"] == call["error"]
        assert detail["endTime"] == call["endTime"]
        assert "result" not in detail and "duration" not in detail
    # Without smartCallbackConfig, a call that did not reach the person is not tried again.
    assert harness.runtime.providers["simulated"].dials == 3  # type: ignore[attr-defined]


# --- smartCallbackConfig at work --------------------------------------------------------------


async def test_smart_callbacks_retry_unreached_calls_up_to_max_attempts(harness: Harness) -> None:
    agent = await create_agent(harness, {"busy": 1})
    policy = {"enabled": True, "maxAttempts": 3, "gaps": [{"days": 0, "hours": 0}]}
    r = await start_batch(
        harness, people(numbers(2)), agent_id=agent, smartCallbackConfig=json.dumps(policy)
    )
    batch_id = r.json()["batchId"]
    body = await wait_for_batch(harness, batch_id)
    assert body["progress"]["failed"] == 2
    assert harness.runtime.providers["simulated"].dials == 6  # type: ignore[attr-defined]
    for call in await list_all_calls(harness, batch_id):
        assert call["status"] == "failed"
        assert "busy" in call["error"].lower() and "3" in call["error"]


async def test_smart_callbacks_wait_for_the_gap(harness: Harness) -> None:
    agent = await create_agent(harness, {"busy": 1})
    policy = {"enabled": True, "maxAttempts": 2, "gaps": [{"days": 0, "hours": 1}]}
    r = await start_batch(
        harness, people(numbers(3)), agent_id=agent, smartCallbackConfig=json.dumps(policy)
    )
    batch_id = r.json()["batchId"]
    provider = harness.runtime.providers["simulated"]
    deadline = time.monotonic() + 10
    while provider.dials < 3 and time.monotonic() < deadline:  # type: ignore[attr-defined]
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.4)
    body = await get_batch(harness, batch_id)
    assert provider.dials == 3  # type: ignore[attr-defined]
    assert body["isComplete"] is False
    assert body["status"] == "processing"
    p = body["progress"]
    assert (p["waiting"], p["active"], p["failed"], p["completed"]) == (3, 0, 0, 0)
    for call in await list_all_calls(harness, batch_id):
        assert call["status"] == "waiting"


# --- Cancelling a batch mid-run (its reading is in test_running_batch.py) ----------------------


@pytest.fixture
async def frozen(
    make_settings: Callable[..., Settings], template_db: Path, tmp_path: Path
) -> AsyncIterator[Frozen]:
    """See frozen_batch; this one is the test's own, to cancel."""

    def settings_for(db: Path) -> Settings:
        return make_settings(database_url=f"sqlite:///{db}", demo_max_concurrent_calls=3)

    async with frozen_batch(settings_for, tmp_path, template_db) as found:
        yield found


@pytest.mark.parametrize("base", [BASE, LEGACY_BASE], ids=["api", "legacy"])
async def test_cancel_processing_batch(frozen: Frozen, base: str) -> None:
    h, batch_id = frozen.h, frozen.batch_id
    before = await status_of(h, batch_id)
    finished_before = await list_all_calls(h, batch_id, status="completed")
    dials = h.runtime.providers["simulated"].dials  # type: ignore[attr-defined]

    r = await h.client.delete(f"{base}/{batch_id}", headers=h.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["batchId"] == batch_id
    assert body["status"] == "cancelled"
    assert isinstance(body["message"], str) and body["message"]
    details = {k: body["details"][k] for k in _DETAIL_KEYS}
    assert details == {
        "completedCalls": before["completed"],
        "failedCalls": before["failed"],
        "cancelledCalls": before["waiting"],
        "totalCalls": 40,
    }

    await asyncio.sleep(0.3)
    after = await get_batch(h, batch_id)
    assert after["status"] == "cancelled"
    assert after["isComplete"] is False  # the three active calls run to their end
    p = after["progress"]
    assert (p["waiting"], p["active"]) == (0, 3)
    assert (p["completed"], p["failed"]) == (before["completed"], before["failed"])
    assert p["completedTime"] is None
    assert h.runtime.providers["simulated"].dials == dials  # type: ignore[attr-defined]
    cancelled = await list_all_calls(h, batch_id, status="cancelled")
    assert len(cancelled) == before["waiting"]
    for call in cancelled:
        assert call["status"] == "cancelled"
        assert not_applicable(call, "startTime", "duration")
    assert await list_all_calls(h, batch_id, status="completed") == finished_before
    statuses = {c["status"] for c in await list_all_calls(h, batch_id)}
    assert statuses == {"cancelled", "active", "completed", "failed"}


async def test_cancel_lets_active_calls_finish_and_dials_nothing_new(
    small_pool: Harness,
) -> None:
    h = small_pool
    agent = await create_agent(h, {"completed": 1}, meanTalkSeconds=400, ringSeconds=[1, 1])
    batch_id = (await start_batch(h, people(numbers(10)), agent_id=agent)).json()["batchId"]
    await wait_for_batch(h, batch_id, lambda b: b["progress"]["active"] == 3)
    r = await h.client.delete(f"{BASE}/{batch_id}", headers=h.headers)
    assert r.status_code == 200, r.text
    details = r.json()["details"]
    assert details["totalCalls"] == 10
    assert details["cancelledCalls"] >= 1

    done = await wait_for_batch(h, batch_id)
    p = done["progress"]
    assert done["status"] == "cancelled"
    assert p["waiting"] == 0 and p["active"] == 0
    assert p["completed"] >= 3  # the calls up at cancel time ended normally
    assert p["completed"] + p["failed"] + details["cancelledCalls"] == 10
    assert_ms_near_now(p["completedTime"])
    dials = h.runtime.providers["simulated"].dials  # type: ignore[attr-defined]
    assert dials == p["completed"] + p["failed"]


@pytest.mark.parametrize("base", [BASE, LEGACY_BASE], ids=["api", "legacy"])
async def test_cancel_queued_batch(api: Harness, base: str) -> None:
    batch_id = (await start_batch(api, people(numbers(6)))).json()["batchId"]
    r = await api.client.delete(f"{base}/{batch_id}", headers=api.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "cancelled" and body["batchId"] == batch_id
    assert isinstance(body["message"], str) and body["message"]
    d = body["details"]
    assert set(d) >= _DETAIL_KEYS
    assert (d["completedCalls"], d["failedCalls"], d["cancelledCalls"], d["totalCalls"]) == (
        0,
        0,
        6,
        6,
    )
    batch = await get_batch(api, batch_id)
    assert batch["status"] == "cancelled"
    assert batch["isComplete"] is True  # no call of it can run any more
    assert batch["progress"]["waiting"] == 0
    r = await api.client.get(
        f"{BASE}/{batch_id}/calls", headers=api.headers, params={"status": "cancelled"}
    )
    assert r.status_code == 200
    assert r.json()["pagination"]["total"] == 6
    assert {c["status"] for c in r.json()["calls"]} == {"cancelled"}
    # Cancelling cannot be undone: a second cancel leaves it cancelled and changes nothing.
    again = await api.client.delete(f"{base}/{batch_id}", headers=api.headers)
    assert again.status_code < 500
    assert (await get_batch(api, batch_id))["status"] == "cancelled"


@pytest.mark.parametrize("base", [BASE, LEGACY_BASE], ids=["api", "legacy"])
async def test_cancel_unknown_batch_is_404_with_id(api: Harness, base: str) -> None:
    r = await api.client.delete(f"{base}/batch_nope", headers=api.headers)
    body = assert_error_shape(r, 404)
    assert body["id"] == "batch_nope"


async def test_cancel_completed_batch_leaves_it_completed(harness: Harness) -> None:
    agent = await create_agent(harness, {"completed": 1})
    batch_id = (await start_batch(harness, people(numbers(2)), agent_id=agent)).json()["batchId"]
    await wait_for_batch(harness, batch_id)
    r = await harness.client.delete(f"{BASE}/{batch_id}", headers=harness.headers)
    assert r.status_code < 500
    if r.status_code >= 400:
        assert_error_shape(r, r.status_code)
    body = await get_batch(harness, batch_id)
    assert body["status"] == "completed"
    assert body["progress"]["completed"] == 2


# --- Pagination on a plain batch ---------------------------------------------------------------


async def test_pagination_defaults_and_boundaries(api: Harness) -> None:
    phones = numbers(45, start=100)[::-1]
    batch_id = (await start_batch(api, people(phones))).json()["batchId"]
    url = f"{BASE}/{batch_id}/calls"

    first = (await api.client.get(url, headers=api.headers)).json()
    assert {k: first["pagination"][k] for k in _PAGINATION_KEYS} == {
        "page": 1,
        "limit": 20,
        "total": 45,
        "totalPages": 3,
        "hasNext": True,
        "hasPrev": False,
    }
    assert first["summary"]["total"] == 45 and first["summary"]["waiting"] == 45
    got = [c["phone_number"] for c in first["calls"]]

    for page, size, has_next in ((2, 20, True), (3, 5, False)):
        body = (await api.client.get(url, headers=api.headers, params={"page": page})).json()
        assert len(body["calls"]) == size
        assert body["pagination"]["hasNext"] is has_next
        assert body["pagination"]["hasPrev"] is True
        got += [c["phone_number"] for c in body["calls"]]
    assert got == phones

    whole = (await api.client.get(url, headers=api.headers, params={"limit": 100})).json()
    assert [c["phone_number"] for c in whole["calls"]] == phones
    assert whole["pagination"]["totalPages"] == 1 and whole["pagination"]["hasNext"] is False

    exact = (await api.client.get(url, headers=api.headers, params={"limit": 15})).json()
    assert exact["pagination"]["totalPages"] == 3
    last = await api.client.get(url, headers=api.headers, params={"limit": 15, "page": 3})
    assert last.status_code == 200
    assert len(last.json()["calls"]) == 15 and last.json()["pagination"]["hasNext"] is False

    none = (await api.client.get(url, headers=api.headers, params={"status": "failed"})).json()
    assert none["calls"] == [] and none["pagination"]["total"] == 0
    assert none["pagination"]["hasNext"] is False and none["summary"]["total"] == 45


async def test_metadata_carries_every_non_phone_column(api: Harness) -> None:
    header = "first_name,phone_number,last_name,email,company,notes,empty"
    rows = [
        'Zoë,+12025550150,Ångström,zoe@example.com,"Acme, Inc.","said ""call back""",',
        "Bob,+12025550151,Smith,bob@example.com,Globex,,",
    ]
    r = await start_batch(api, content=csv_bytes(rows, header=header))
    assert r.status_code == 200, r.text
    calls = await list_all_calls(api, r.json()["batchId"])
    assert [c["phone_number"] for c in calls] == ["+12025550150", "+12025550151"]
    first, second = (c["metadata"] for c in calls)
    assert "phone_number" not in first
    assert set(first) == {"first_name", "last_name", "email", "company", "notes", "empty"}
    assert first["first_name"] == "Zoë" and first["last_name"] == "Ångström"
    assert first["company"] == "Acme, Inc."
    assert first["notes"] == 'said "call back"'
    assert first["empty"] in ("", None)
    assert second["first_name"] == "Bob" and second["notes"] in ("", None)


async def test_job_ids_are_unique_and_each_opens_its_call(api: Harness) -> None:
    phones = numbers(5, start=200)
    batch_id = (await start_batch(api, people(phones))).json()["batchId"]
    calls = await list_all_calls(api, batch_id)
    assert len({c["jobId"] for c in calls}) == 5
    for call in calls:
        detail = await get_call(api, batch_id, call["jobId"])
        assert detail["jobId"] == call["jobId"]
        assert detail["phone_number"] == call["phone_number"]
        assert detail["status"] == "waiting"


# --- The documented examples' keys --------------------------------------------------------------


async def _completed_mixed_batch(h: Harness) -> str:
    """A finished batch whose recent calls include a completed and a failed one."""
    agent = await create_agent(h, {"completed": 1, "busy": 1}, meanTalkSeconds=10)
    for _ in range(8):
        r = await start_batch(h, people(numbers(6, start=300)), agent_id=agent)
        batch_id: str = r.json()["batchId"]
        body = await wait_for_batch(h, batch_id)
        if {c["status"] for c in body["progress"]["recent_calls"]} == {"completed", "failed"}:
            return batch_id
    raise AssertionError("8 batches in a row had only one outcome")


async def test_spec_example_keys_are_all_present(harness: Harness) -> None:
    examples = {
        name: spec_examples(name)
        for name in ("get-batch.md", "get-batch-progress.txt", "list-calls.md", "get-call.md")
    }
    rendered = SPEC_DIR / "list-calls-rendered.txt"
    if rendered.exists():
        examples["list-calls-rendered.txt"] = spec_examples(rendered.name)
    assert {e["status"] for e in examples["get-call.md"]} == {"completed", "failed", "active"}
    h = harness
    batch_id = await _completed_mixed_batch(h)
    ours = {
        "get-batch.md": await get_batch(h, batch_id),
        "get-batch-progress.txt": await status_of(h, batch_id),
    }
    r = await h.client.get(f"{BASE}/{batch_id}/calls", headers=h.headers)
    ours["list-calls.md"] = ours["list-calls-rendered.txt"] = r.json()
    details = {}
    for call in r.json()["calls"]:
        details[call["status"]] = await get_call(h, batch_id, call["jobId"])

    problems = []
    for name, found in examples.items():
        for example in found:
            if name == "get-call.md":
                status = example["status"]
                if status == "active":
                    continue  # checked on a running batch below
                problems += [f"{name}: {k}" for k in missing_keys(example, details[status])]
            else:
                problems += [f"{name}: {k}" for k in missing_keys(example, ours[name])]
    assert not problems, problems


# --- Agents, health, docs -----------------------------------------------------------------------


async def test_agents_list_and_create(api: Harness) -> None:
    r = await api.client.get("/v1/api/agents", headers=api.headers)
    assert r.status_code == 200, r.text
    assert api.demo.agent_id in {a["id"] for a in r.json()["agents"]}

    r = await api.client.post(
        "/v1/api/agents",
        headers=api.headers,
        json={
            "name": "Sales",
            "provider": "simulated",
            "providerConfig": {"outcomes": {"completed": 1}},
            "fromNumbers": ["+12025550199"],
        },
    )
    assert r.status_code == 201, r.text
    agent = r.json()
    assert isinstance(agent["id"], str) and agent["id"]
    assert agent["name"] == "Sales" and agent["provider"] == "simulated"
    assert agent["providerConfig"] == {"outcomes": {"completed": 1}}
    assert agent["fromNumbers"] == ["+12025550199"]
    assert_ms_near_now(agent["createdAt"], slack_s=5)

    listed = (await api.client.get("/v1/api/agents", headers=api.headers)).json()["agents"]
    assert {k: v for k, v in agent.items() if k != "signingSecret"} in listed
    r = await start_batch(api, people(numbers(1)), agent_id=agent["id"])
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"name": ""},
        {"name": "x", "provider": "carrier-pigeon"},
        {"name": "x", "providerConfig": {"outcomes": {"teleport": 1}}},
        {"name": "x", "providerConfig": {"outcomes": {"completed": 0}}},
        {"name": "x", "fromNumbers": ["not a number"]},
        {"name": "x", "colour": "blue"},
    ],
    ids=["empty", "blank-name", "provider", "outcome", "zero-weights", "from-number", "extra"],
)
async def test_bad_agents_are_refused(api: Harness, payload: dict[str, Any]) -> None:
    r = await api.client.post("/v1/api/agents", headers=api.headers, json=payload)
    assert_error_shape(r, 400)
    listed = (await api.client.get("/v1/api/agents", headers=api.headers)).json()["agents"]
    assert [a["id"] for a in listed] == [api.demo.agent_id]


@pytest.mark.parametrize(
    "config",
    [
        {"ringSeconds": "abc"},
        {"ringSeconds": [5]},
        {"ringSeconds": [1, "x"]},
        {"outcomes": {"completed": 1e308, "busy": 1e308}},
    ],
    ids=["ring-text", "ring-one-value", "ring-not-number", "infinite-weights"],
)
async def test_agent_config_that_cannot_dial_is_refused(
    api: Harness, config: dict[str, Any]
) -> None:
    """An agent whose every dial would fail (and leave its call `active` until the dial lease
    lapses) is refused when it is created."""
    r = await api.client.post(
        "/v1/api/agents", headers=api.headers, json={"name": "x", "providerConfig": config}
    )
    assert_error_shape(r, 400)


async def test_health_probes_need_no_key(api: Harness) -> None:
    r = await api.client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = await api.client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    # the simulated provider needs no settings, so every process has it
    assert "simulated" in r.json()["providers"]


CONTRACT_OPERATIONS = [
    ("post", "/v1/api/batch-calls"),
    ("get", "/v1/api/batch-calls/{batchId}"),
    ("get", "/v1/api/batch-calls/{batchId}/status"),
    ("get", "/v1/api/batch-calls/{batchId}/calls"),
    ("get", "/v1/api/batch-calls/{batchId}/calls/{jobId}"),
    ("delete", "/v1/api/batch-calls/{batchId}"),
    ("delete", "/v1/batch-calls/{batchId}"),
    ("get", "/v1/api/agents"),
    ("post", "/v1/api/agents"),
]


async def test_openapi_and_docs_list_every_contract_path(api: Harness) -> None:
    r = await api.client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    for method, path in CONTRACT_OPERATIONS:
        assert method in spec["paths"].get(path, {}), (method, path)
    post = spec["paths"]["/v1/api/batch-calls"]["post"]
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"file", "agentId"} <= set(form["required"])
    assert {"file", "agentId", "scheduledAt", "smartCallbackConfig"} <= set(form["properties"])
    calls = spec["paths"]["/v1/api/batch-calls/{batchId}/calls"]["get"]
    assert {"page", "limit", "status"} <= {p["name"] for p in calls["parameters"]}

    docs = await api.client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in docs.text
