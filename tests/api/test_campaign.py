"""The campaign extensions through the API, as a client meets them: pause and resume (of a
batch and of the workspace), retry-failed, Idempotency-Key and the JSON create, with their
error cases (unknown batch and another workspace's batch -> 404, a finished batch -> 409,
a malformed body -> 400 naming the field)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import sqlalchemy as sa

from dialbatch.store.tables import attempts, calls
from tests.api.conftest import (
    BASE,
    MISSING_BATCH,
    Harness,
    assert_error_shape,
    batch_count,
    create_agent,
    get_batch,
    list_all_calls,
    numbers,
    people,
    row_metadata,
    start_batch,
    status_of,
    wait_for_batch,
)
from tests.helpers import assert_consistent

WORKSPACE = "/v1/api/workspace"


def dials(h: Harness) -> int:
    n: int = h.runtime.providers["simulated"].dials  # type: ignore[attr-defined]
    return n


async def new_batch(h: Harness, n: int = 5, **fields: str) -> str:
    r = await start_batch(h, people(numbers(n)), **fields)
    assert r.status_code == 200, r.text
    batch_id: str = r.json()["batchId"]
    return batch_id


async def post(h: Harness, path: str, **kw: Any) -> Any:
    return await h.client.post(path, headers=kw.pop("headers", h.headers), **kw)


# -- pause and resume ---------------------------------------------------------------------


async def test_pause_and_resume_a_queued_batch(api: Harness) -> None:
    batch_id = await new_batch(api)
    r = await post(api, f"{BASE}/{batch_id}/pause")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "paused" and body["changed"] and isinstance(body["pausedAt"], int)
    again = (await post(api, f"{BASE}/{batch_id}/pause")).json()
    assert again["changed"] is False and again["pausedAt"] == body["pausedAt"]  # idempotent
    batch = await get_batch(api, batch_id)
    assert batch["status"] == "paused" and batch["isComplete"] is False
    assert batch["pausedAt"] == body["pausedAt"] and batch["workspacePaused"] is False
    assert (await status_of(api, batch_id))["status"] == "paused"
    listed = (await api.client.get(BASE, headers=api.headers)).json()["batches"]
    assert listed[0]["status"] == "paused"
    r = await post(api, f"{BASE}/{batch_id}/resume")
    assert r.status_code == 200 and r.json()["status"] == "queued" and r.json()["changed"]
    assert (await post(api, f"{BASE}/{batch_id}/resume")).json()["changed"] is False
    assert (await get_batch(api, batch_id))["pausedAt"] is None


@pytest.mark.parametrize("action", ["pause", "resume"])
async def test_pause_and_resume_error_cases(api: Harness, action: str) -> None:
    missing = await post(api, f"{BASE}/{MISSING_BATCH}/{action}")
    assert assert_error_shape(missing, 404)["error"] == "Batch not found"
    batch_id = await new_batch(api)
    other = await api.other_workspace()
    foreign = await post(api, f"{BASE}/{batch_id}/{action}", headers=other)
    assert foreign.status_code == 404
    assert foreign.json()["message"] == missing.json()["message"].replace(MISSING_BATCH, batch_id)
    assert (await api.client.delete(f"{BASE}/{batch_id}", headers=api.headers)).status_code == 200
    finished = await post(api, f"{BASE}/{batch_id}/{action}")
    assert "already cancelled" in assert_error_shape(finished, 409)["message"]


async def intents(h: Harness, batch_id: str) -> list[int]:
    """When each dial's intent was written (the attempts' started_at, database clock)."""
    async with h.runtime.db.read() as conn:
        rows = await conn.execute(
            sa.select(attempts.c.started_at)
            .join(calls, calls.c.id == attempts.c.call_id)
            .where(calls.c.batch_id == batch_id)
        )
        return [int(r[0]) for r in rows]


async def test_a_paused_batch_dials_nothing_new_and_resume_finishes_it(
    small_pool: Harness,
) -> None:
    h = small_pool
    agent = await create_agent(h, {"completed": 1}, ringSeconds=[200, 200], meanTalkSeconds=5)
    batch_id = await new_batch(h, 12, agentId=agent)
    deadline = time.monotonic() + 15
    while (await status_of(h, batch_id))["active"] < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    r = await post(h, f"{BASE}/{batch_id}/pause")
    assert r.status_code == 200
    paused_at = r.json()["pausedAt"]
    # The live calls end (about 0.4 s here) and their slots free up: nothing new starts.
    await wait_for_batch(h, batch_id, lambda b: b["progress"]["active"] == 0)
    await asyncio.sleep(0.5)  # 25 dispatcher ticks
    written = await intents(h, batch_id)
    tick_ms = h.runtime.settings.poll_interval_s * 1000
    assert max(written) <= paused_at + tick_ms  # no intent after the pause (plus a tick)
    assert dials(h) == len(written)  # and no dial without one
    batch = await get_batch(h, batch_id)
    assert batch["status"] == "paused" and not batch["isComplete"]
    assert batch["progress"]["waiting"] == 12 - len(written)
    await assert_consistent(h.runtime.db, batch_id, h.demo.workspace_id)
    assert (await post(h, f"{BASE}/{batch_id}/resume")).status_code == 200
    final = await wait_for_batch(h, batch_id, timeout=30)
    assert final["status"] == "completed" and final["progress"]["completed"] == 12
    await assert_consistent(h.runtime.db, batch_id, h.demo.workspace_id)


async def test_a_workspace_pause_stops_every_batch_until_resumed(api: Harness) -> None:
    one, two = await new_batch(api), await new_batch(api)
    assert (await api.client.get(WORKSPACE, headers=api.headers)).json()["paused"] is False
    r = await post(api, f"{WORKSPACE}/pause")
    assert r.status_code == 200 and r.json()["paused"] and r.json()["changed"]
    assert (await post(api, f"{WORKSPACE}/pause")).json()["changed"] is False
    for batch_id in (one, two):
        batch = await get_batch(api, batch_id)
        assert batch["status"] == "paused" and batch["workspacePaused"] is True
    # Another workspace is not paused by it.
    other = await api.other_workspace()
    assert (await api.client.get(WORKSPACE, headers=other)).json()["paused"] is False
    # A batch paused on its own stays paused when the workspace resumes.
    await post(api, f"{BASE}/{one}/pause")
    r = await post(api, f"{WORKSPACE}/resume")
    assert r.status_code == 200 and r.json()["paused"] is False
    assert (await get_batch(api, one))["status"] == "paused"
    assert (await get_batch(api, two))["status"] == "queued"


# -- retry failed --------------------------------------------------------------------------


async def test_retry_failed_of_a_1000_call_batch_takes_exactly_its_failed_calls(
    harness: Harness,
) -> None:
    h = harness
    agent = await create_agent(
        h, {"completed": 1, "busy": 1, "failed": 1}, ringSeconds=[1, 2], meanTalkSeconds=2
    )
    phones = numbers(1000)
    # A third of the dials fail at the carrier: the automatic stop would pause it.
    r = await start_batch(h, people(phones), agent_id=agent, failureStop='{"enabled": false}')
    assert r.status_code == 200, r.text
    batch_id = r.json()["batchId"]
    await wait_for_batch(h, batch_id, timeout=120)
    failed = await list_all_calls(h, batch_id, status="failed")
    assert 100 < len(failed) < 900
    r = await post(h, f"{BASE}/{batch_id}/retry-failed")
    assert r.status_code == 200, r.text
    body = r.json()
    retry_id = body["batchId"]
    assert body["totalCalls"] == len(failed) and body["parentBatchId"] == batch_id
    # The original number and row variables, in the parent's row order; not the old
    # call's status, error or result.
    index = {p: i for i, p in enumerate(phones)}
    expected = sorted((c["phone_number"] for c in failed), key=index.__getitem__)
    retried = await list_all_calls(h, retry_id)
    assert [c["phone_number"] for c in retried] == expected
    for call in retried:
        assert call["metadata"] == row_metadata(index[call["phone_number"]])
    parent, child = await get_batch(h, batch_id), await get_batch(h, retry_id)
    assert parent["retryBatchIds"] == [retry_id] and parent["parentBatchId"] is None
    assert child["parentBatchId"] == batch_id and child["agentId"] == agent
    # It runs like any batch; running its 100s of calls to their end would only repeat the
    # first half of this test. Cancelled (live calls hung up), its counters are exact: read
    # once it is still (mid-run, the reads are not one snapshot on PostgreSQL).
    r = await h.client.delete(
        f"{BASE}/{retry_id}", headers=h.headers, params={"hangupActive": "true"}
    )
    assert r.status_code == 200, r.text
    await wait_for_batch(h, retry_id, timeout=60)
    await assert_consistent(h.runtime.db, retry_id, h.demo.workspace_id)
    # A filter by outcome takes only the busy ones.
    busy = await post(h, f"{BASE}/{batch_id}/retry-failed", json={"outcome": ["busy"]})
    assert busy.status_code == 200, busy.text
    async with h.runtime.db.read() as conn:  # failed calls whose last dial was busy
        busy_calls = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(calls.join(attempts, attempts.c.call_id == calls.c.id))
            .where(
                calls.c.batch_id == batch_id,
                calls.c.status == "failed",
                attempts.c.n == calls.c.attempt,
                attempts.c.outcome == "busy",
            )
        )
    assert busy.json()["totalCalls"] == busy_calls > 0


async def new_batch_from(h: Harness, rows: list[str], agent: str) -> str:
    r = await start_batch(h, rows, agent_id=agent)
    assert r.status_code == 200, r.text
    batch_id: str = r.json()["batchId"]
    return batch_id


async def test_retry_failed_error_cases(api: Harness) -> None:
    missing = await post(api, f"{BASE}/{MISSING_BATCH}/retry-failed")
    assert_error_shape(missing, 404)
    batch_id = await new_batch(api)
    other = await api.other_workspace()
    assert (await post(api, f"{BASE}/{batch_id}/retry-failed", headers=other)).status_code == 404
    nothing = await post(api, f"{BASE}/{batch_id}/retry-failed")
    assert "Nothing to retry" in assert_error_shape(nothing, 400)["message"]
    for body, field in [
        ({"outcome": "teleported"}, "outcome"),
        ({"outcome": 3}, "outcome"),
        ({"errorContains": ["x"]}, "errorContains"),
        ({"errorContans": "x"}, "errorContans"),
        ([1, 2], "body"),
    ]:
        r = await post(api, f"{BASE}/{batch_id}/retry-failed", json=body)
        assert field in assert_error_shape(r, 400)["message"], (body, r.text)
    r = await post(
        api, f"{BASE}/{batch_id}/retry-failed", content=b"{not json", headers=api.headers
    )
    assert "not valid JSON" in assert_error_shape(r, 400)["message"]


# -- Idempotency-Key ---------------------------------------------------------------------------


async def test_the_same_key_twice_creates_one_batch(api: Harness) -> None:
    headers = {**api.headers, "Idempotency-Key": "upload-2026-12-04-a"}
    first = await start_batch(api, people(numbers(4)), headers=headers)
    second = await start_batch(api, people(numbers(4)), headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers.get("idempotent-replayed") == "true"
    assert await batch_count(api) == 1
    # The same key with a different file: 422, saying so; still one batch.
    other = await start_batch(api, people(numbers(5)), headers=headers)
    assert "different request" in assert_error_shape(other, 422)["message"]
    changed_form = await start_batch(api, people(numbers(4)), headers=headers, dedupe="true")
    assert changed_form.status_code == 422
    # Another workspace's key of the same name is its own.
    mine = await start_batch(
        api,
        people(numbers(4)),
        headers={**(await api.other_workspace()), "Idempotency-Key": "upload-2026-12-04-a"},
        agent_id="agent_other",
    )
    assert mine.status_code == 200 and mine.json()["batchId"] != first.json()["batchId"]
    assert await batch_count(api) == 1


async def test_a_rejected_request_does_not_keep_its_key(api: Harness) -> None:
    headers = {**api.headers, "Idempotency-Key": "k-1"}
    bad = await start_batch(api, ["not a number,A,B,c@example.com"], headers=headers)
    assert bad.status_code == 400
    fixed = await start_batch(api, people(numbers(2)), headers=headers)
    assert fixed.status_code == 200, fixed.text
    blank = {**api.headers, "Idempotency-Key": " "}
    r = await start_batch(api, people(numbers(2)), headers=blank)
    assert "Idempotency-Key" in assert_error_shape(r, 400)["message"]


async def test_concurrent_requests_with_one_key_create_one_batch(api: Harness) -> None:
    headers = {**api.headers, "Idempotency-Key": "concurrent-1"}
    rows = people(numbers(2000))
    answers = await asyncio.gather(*(start_batch(api, rows, headers=headers) for _ in range(4)))
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    assert len({r.json()["batchId"] for r in answers}) == 1
    assert await batch_count(api) == 1


async def test_retry_failed_honours_the_key(harness: Harness) -> None:
    h = harness
    agent = await create_agent(h, {"failed": 1}, ringSeconds=[1, 1])
    batch_id = await new_batch_from(h, people(numbers(3)), agent)
    await wait_for_batch(h, batch_id, timeout=60)
    headers = {**h.headers, "Idempotency-Key": "retry-1"}
    path = f"{BASE}/{batch_id}/retry-failed"
    first = await post(h, path, headers=headers)
    second = await post(h, path, headers=headers)
    assert first.status_code == second.status_code == 200, first.text
    assert first.json()["batchId"] == second.json()["batchId"]
    assert (await get_batch(h, batch_id))["retryBatchIds"] == [first.json()["batchId"]]
    # The same key on another endpoint is another request.
    create = await start_batch(h, people(numbers(3)), headers=headers)
    assert create.status_code == 422


# -- create from JSON --------------------------------------------------------------------------


def json_calls(n: int) -> list[dict[str, Any]]:
    return [{"phone_number": p, **row_metadata(i)} for i, p in enumerate(numbers(n))]


async def test_a_json_create_is_a_batch_like_an_upload(api: Harness) -> None:
    calls = json_calls(5)
    calls[1]["score"] = 7  # stored as text, as a CSV's values are
    calls[2]["vip"] = True
    r = await post(
        api,
        BASE,
        json={
            "agentId": api.demo.agent_id,
            "calls": calls,
            "smartCallbackConfig": {"enabled": True, "maxAttempts": 2, "gaps": [{"hours": 1}]},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totalCalls"] == 5 and body["status"] == "queued"
    listed = await list_all_calls(api, body["batchId"])
    assert [c["phone_number"] for c in listed] == numbers(5)
    assert listed[0]["metadata"] == {**row_metadata(0), "score": "", "vip": ""}
    assert listed[1]["metadata"]["score"] == "7" and listed[2]["metadata"]["vip"] == "true"


async def test_a_json_body_with_a_bad_row_gets_the_row_numbered_400(api: Harness) -> None:
    calls = json_calls(4)
    calls[2]["phone_number"] = "12"
    r = await post(api, BASE, json={"agentId": api.demo.agent_id, "calls": calls})
    body = assert_error_shape(r, 400)
    assert body["error"] == "Validation failed"
    assert body["message"].startswith("1 call is invalid; the first: calls[2].phone_number")
    assert body["problems"][0]["row"] == 2 and body["problems"][0]["name"] == "calls[2]"
    assert await batch_count(api) == 0
    # skipInvalid and dedupe work as in the form; skipped rows are named the same way.
    calls.append(dict(calls[0]))
    r = await post(
        api,
        BASE,
        json={"agentId": api.demo.agent_id, "calls": calls, "skipInvalid": True},
    )
    assert r.status_code == 200, r.text
    skipped = r.json()["skippedRows"]
    assert [p["name"] for p in skipped] == ["calls[2]", "calls[4]"]
    assert skipped[1]["reason"] == "duplicate of calls[0]"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"calls": [{"phone_number": "+12025550100"}]}, "agentId"),
        ({"agentId": "x"}, "calls"),
        ({"agentId": "x", "calls": {"phone_number": "+1"}}, "calls"),
        ({"agentId": "x", "calls": [], "skipInvalid": "yes"}, "skipInvalid"),
        ({"agentId": "x", "calls": [], "scheduledAt": True}, "scheduledAt"),
        ({"agentId": "x", "calls": [], "smartCallbackConfig": {"enabld": True}}, "enabld"),
        ({"agentId": "x", "calls": [], "defaultCountry": "XX"}, "defaultCountry"),
        ({"agentId": "x", "calls": [], "agentID": "y"}, "agentID"),
        ({"agentId": "demo", "calls": []}, "calls"),
        ({"agentId": "demo", "calls": [["+12025550100"]]}, "calls[0]"),
        ({"agentId": "demo", "calls": [{"phone_number": "+12025550100", "x": {}}]}, "calls[0].x"),
        ([], "body"),
    ],
)
async def test_a_malformed_json_body_is_a_400_naming_the_field(
    api: Harness, body: Any, field: str
) -> None:
    if isinstance(body, dict) and body.get("agentId") == "demo":
        body["agentId"] = api.demo.agent_id
    r = await post(api, BASE, json=body)
    assert field in assert_error_shape(r, 400)["message"], r.text


async def test_json_limits(make_settings: Any) -> None:
    from tests.api.conftest import open_harness

    async with open_harness(make_settings(max_json_calls=3, max_upload_mb=0.01)) as h:
        many = await post(h, BASE, json={"agentId": h.demo.agent_id, "calls": json_calls(4)})
        assert "at most 3" in assert_error_shape(many, 400)["message"]
        big = json.dumps({"agentId": h.demo.agent_id, "calls": json_calls(3), "pad": "x" * 20000})
        r = await post(
            h, BASE, content=big, headers={**h.headers, "content-type": "application/json"}
        )
        assert_error_shape(r, 413)
        broken = await post(
            h,
            BASE,
            content=b'{"agentId": ',
            headers={**h.headers, "content-type": "application/json"},
        )
        assert "not valid JSON" in assert_error_shape(broken, 400)["message"]


async def test_the_openapi_document_describes_both_bodies(api: Harness) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    content = spec["paths"][BASE]["post"]["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/json"}
    assert content["application/json"]["schema"]["required"] == ["agentId", "calls"]
    for path in ("/pause", "/resume", "/retry-failed"):
        assert "post" in spec["paths"][BASE + "/{batchId}" + path]
    assert "post" in spec["paths"][WORKSPACE + "/pause"]
