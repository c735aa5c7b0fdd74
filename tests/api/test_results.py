"""Agent results: the agent runtime reports transcript, outcome label and extracted data on
`POST /v1/api/calls/{jobId}/result`, signed with its own secret; the report shows in the
call's `result` in the contract's shape, whichever of it and the provider's outcome
arrives first, and an unproven request changes nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import sqlalchemy as sa

from dialbatch.client.signing import result_body, result_path, sign_result
from dialbatch.domain.ids import job_id
from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.domain.retry import RetryConfig
from dialbatch.events.apply import apply_outcomes
from dialbatch.store import queue
from dialbatch.store.tables import calls
from tests.api.conftest import (
    BASE,
    Harness,
    assert_error_shape,
    csv_bytes,
    get_call,
    numbers,
    people,
    row_metadata,
    start_batch,
    status_of,
    wait_for_batch,
)

REPORT: dict[str, Any] = {
    "transcript": "Agent: Hi Ada.\nCustomer: Not interested, thanks.",
    "outcome": "not-interested",
    "data": {"callbackRequested": False, "reason": "has a provider"},
    "summary": "Declined politely.",
    "recordingUrl": "https://recordings.example.com/r/1.wav",
}


async def new_agent(h: Harness, headers: dict[str, str] | None = None) -> tuple[str, str]:
    """An agent whose every call completes; (agent id, signing secret)."""
    r = await h.client.post(
        "/v1/api/agents",
        headers=headers or h.headers,
        json={"name": "bot", "providerConfig": {"outcomes": {"completed": 1}}},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return body["id"], body["signingSecret"]


async def post_result(
    h: Harness,
    job: str,
    secret: str,
    *,
    body: bytes | None = None,
    timestamp: int | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    raw = body if body is not None else result_body(job, **REPORT)
    signed = headers if headers is not None else sign_result(secret, raw, timestamp)
    return await h.client.post(result_path(job), content=raw, headers=signed)


async def finished_batch(h: Harness, rows: int = 2) -> tuple[str, str, str]:
    """A completed batch of a fresh agent: (batch id, first jobId, agent secret)."""
    agent, secret = await new_agent(h)
    r = await start_batch(h, people(numbers(rows)), agent_id=agent)
    assert r.status_code == 200, r.text
    batch_id = r.json()["batchId"]
    await wait_for_batch(h, batch_id)
    return batch_id, job_id(batch_id, 0), secret


async def test_agent_creation_shows_the_signing_secret_once(harness: Harness) -> None:
    agent, secret = await new_agent(harness)
    assert secret.startswith("whsec_") and len(secret) > 40
    listed = (await harness.client.get("/v1/api/agents", headers=harness.headers)).json()
    assert agent in {a["id"] for a in listed["agents"]}
    assert secret not in json.dumps(listed)
    _, other = await new_agent(harness)
    assert other != secret


async def test_report_after_the_outcome_shows_in_the_result(harness: Harness) -> None:
    h = harness
    batch_id, job, secret = await finished_batch(h)
    before = await get_call(h, batch_id, job)
    progress = await status_of(h, batch_id)
    r = await post_result(h, job, secret)
    assert r.status_code == 200, r.text
    assert r.json()["jobId"] == job
    after = await get_call(h, batch_id, job)
    assert after["status"] == "completed"
    result = after["result"]
    assert result["callId"] == before["result"]["callId"]
    assert result["metadata"] == row_metadata(0)
    for key, value in REPORT.items():
        assert result[key] == value
    assert r.json()["result"] == result
    # An agent describes the conversation; it moves no call and no counter.
    assert {k: v for k, v in after.items() if k != "result"} == {
        k: v for k, v in before.items() if k != "result"
    }
    assert await status_of(h, batch_id) == progress
    # The listing's view of the call is unchanged too.
    r = await h.client.get(f"{BASE}/{batch_id}/calls", headers=h.headers)
    listed = next(c for c in r.json()["calls"] if c["jobId"] == job)
    assert listed["status"] == "completed" and listed["metadata"] == row_metadata(0)


async def test_same_report_twice_is_harmless_and_a_later_one_replaces_what_it_carries(
    harness: Harness,
) -> None:
    h = harness
    batch_id, job, secret = await finished_batch(h)
    assert (await post_result(h, job, secret)).status_code == 200
    first = (await get_call(h, batch_id, job))["result"]
    assert (await post_result(h, job, secret)).status_code == 200
    assert (await get_call(h, batch_id, job))["result"] == first
    r = await post_result(
        h, job, secret, body=result_body(job, outcome="callback", data={"when": "tomorrow"})
    )
    assert r.status_code == 200, r.text
    later = (await get_call(h, batch_id, job))["result"]
    assert later == {**first, "outcome": "callback", "data": {"when": "tomorrow"}}


def _unsigned(_: str, raw: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json"}


def _no_timestamp(secret: str, raw: bytes) -> dict[str, str]:
    signed = sign_result(secret, raw)
    del signed["X-Dialbatch-Timestamp"]
    return signed


# The cases are signed before any is sent; a margin of a minute beyond the 300 s tolerance
# keeps them outside it however slowly the earlier cases are answered.
def _expired(secret: str, raw: bytes) -> dict[str, str]:
    return sign_result(secret, raw, int(time.time()) - 360)


def _future(secret: str, raw: bytes) -> dict[str, str]:
    return sign_result(secret, raw, int(time.time()) + 360)


def _tampered(secret: str, raw: bytes) -> dict[str, str]:
    return sign_result(secret, raw.replace(b"not-interested", b"successful"))


def _wrong_scheme(secret: str, raw: bytes) -> dict[str, str]:
    signed = sign_result(secret, raw)
    signed["X-Dialbatch-Signature"] = signed["X-Dialbatch-Signature"].replace("v1=", "v0=")
    return signed


def _garbage(secret: str, raw: bytes) -> dict[str, str]:
    return {**sign_result(secret, raw), "X-Dialbatch-Signature": "v1=" + "zz" * 32}


BAD_SIGNERS = [_unsigned, _no_timestamp, _expired, _future, _tampered, _wrong_scheme, _garbage]


async def test_unproven_reports_are_401_and_write_nothing(harness: Harness) -> None:
    h = harness
    batch_id, job, secret = await finished_batch(h)
    _, someone_else = await new_agent(h)  # another agent's secret, same workspace
    before = await get_call(h, batch_id, job)
    raw = result_body(job, **REPORT)
    cases = [(signer.__name__, signer(secret, raw)) for signer in BAD_SIGNERS]
    cases.append(("other agent's secret", sign_result(someone_else, raw)))
    for name, headers in cases:
        r = await post_result(h, job, secret, body=raw, headers=headers)
        body = assert_error_shape(r, 401)
        assert body["error"] == "Unauthorized", (name, body)
    assert await get_call(h, batch_id, job) == before


async def test_a_report_signed_for_one_call_cannot_be_replayed_on_another(
    harness: Harness,
) -> None:
    h = harness
    batch_id, job, secret = await finished_batch(h)
    other_job = job_id(batch_id, 1)
    raw = result_body(job, **REPORT)
    before = await get_call(h, batch_id, other_job)
    r = await post_result(h, other_job, secret, body=raw)
    assert_error_shape(r, 400)
    assert await get_call(h, batch_id, other_job) == before


async def test_unknown_calls_and_other_workspaces_are_404(harness: Harness) -> None:
    h = harness
    batch_id, job, secret = await finished_batch(h)
    before = await get_call(h, batch_id, job)
    for unknown in ("nope", job_id(batch_id, 99), job_id("batch_00000000deadbeef", 0)):
        r = await post_result(h, unknown, secret)
        assert_error_shape(r, 404)
    # The call exists, but not in the workspace the agent says it is in.
    raw = result_body(job, **REPORT)
    headers = {**sign_result(secret, raw), "x-workspace-id": "ws_other"}
    r = await post_result(h, job, secret, body=raw, headers=headers)
    assert_error_shape(r, 404)
    # An agent of another workspace cannot sign for this workspace's calls.
    other_headers = await h.other_workspace()
    _, foreign = await new_agent(h, other_headers)
    r = await post_result(h, job, foreign)
    assert_error_shape(r, 401)
    assert await get_call(h, batch_id, job) == before


async def test_rotation_invalidates_the_old_secret(harness: Harness) -> None:
    h = harness
    agent, old = await new_agent(h)
    r = await start_batch(h, people(numbers(1)), agent_id=agent)
    batch_id = r.json()["batchId"]
    await wait_for_batch(h, batch_id)
    job = job_id(batch_id, 0)
    r = await h.client.post(f"/v1/api/agents/{agent}/secret", headers=h.headers)
    assert r.status_code == 200, r.text
    new = r.json()["signingSecret"]
    assert r.json()["agentId"] == agent and new.startswith("whsec_") and new != old
    assert_error_shape(await post_result(h, job, old), 401)
    assert (await post_result(h, job, new)).status_code == 200
    assert (await get_call(h, batch_id, job))["result"]["outcome"] == REPORT["outcome"]
    missing = await h.client.post("/v1/api/agents/agent_nope/secret", headers=h.headers)
    assert assert_error_shape(missing, 404)["error"] == "Agent not found"
    other_headers = await h.other_workspace()
    foreign = await h.client.post(f"/v1/api/agents/{agent}/secret", headers=other_headers)
    assert_error_shape(foreign, 404)
    unauthenticated = await h.client.post(f"/v1/api/agents/{agent}/secret")
    assert_error_shape(unauthenticated, 401)


async def test_malformed_oversized_and_undialed_reports_are_refused(api: Harness) -> None:
    h = api  # no dispatcher: the calls stay waiting
    agent, secret = await new_agent(h)
    r = await start_batch(h, people(numbers(1)), agent_id=agent)
    batch_id = r.json()["batchId"]
    job = job_id(batch_id, 0)
    for bad in (
        b"not json",
        b"[1, 2]",
        json.dumps({"jobId": job, "outcome": ""}).encode(),
        json.dumps({"jobId": job, "transcript": 42}).encode(),
        json.dumps({"jobId": job, "recordingUrl": "javascript:alert(1)"}).encode(),
        json.dumps({"jobId": job, "surprise": 1}).encode(),
        json.dumps({"jobId": job, "data": {str(i): i for i in range(201)}}).encode(),
        b"[" * 100_000 + b"]" * 100_000,
    ):
        assert_error_shape(await post_result(h, job, secret, body=bad), 400)
    huge = result_body(job, transcript="x" * 300_000)
    assert_error_shape(await post_result(h, job, secret, body=huge), 413)
    never_dialed = await post_result(h, job, secret)
    assert assert_error_shape(never_dialed, 409)["error"] == "Conflict"
    async with h.runtime.db.read() as conn:
        stored = await conn.scalar(sa.select(calls.c.result).where(calls.c.batch_id == batch_id))
    assert stored is None


async def _dialing(h: Harness, batch_id: str, n: int) -> list[queue.Intent]:
    """Claim and dial the batch's calls through the queue, as a worker would."""
    db = h.runtime.db
    async with db.write() as conn:
        claimed, _ = await queue.claim(conn, h.demo.workspace_id, "test", n, 60_000)
    intents = []
    for call in claimed:
        async with db.write() as conn:
            intent = await queue.begin_dial(conn, call, "test", "simulated", 60_000)
            assert intent is not None
            await queue.record_placed(conn, intent.dial_key, f"pcid_{call.seq}")
        intents.append(intent)
    return sorted(intents, key=lambda i: i.call.seq)


async def _complete(h: Harness, intent: queue.Intent) -> None:
    pcid = f"pcid_{intent.call.seq}"
    event = CallEvent(
        outcome=Outcome.COMPLETED,
        dial_key=intent.dial_key,
        provider_call_id=pcid,
        duration_s=12.0,
        result={"callId": pcid, "transcript": "provider's transcript", "outcome": "successful"},
    )
    (applied,) = await apply_outcomes(h.runtime.db, [event], RetryConfig())
    assert applied.changed


async def test_report_and_outcome_in_either_order_end_with_the_same_result(
    api: Harness,
) -> None:
    h = api  # no dispatcher: the test plays the worker and the provider
    agent, secret = await new_agent(h)
    # Two rows with the same data, so that their results can be compared whole.
    content = csv_bytes([f"{p},Ada,Lovelace,ada@example.com" for p in numbers(2)])
    r = await start_batch(h, content=content, agent_id=agent)
    batch_id = r.json()["batchId"]
    first, second = await _dialing(h, batch_id, 2)
    early, late = job_id(batch_id, 0), job_id(batch_id, 1)

    # The agent reports while the call is still live: it stays active, counters unmoved.
    progress = await status_of(h, batch_id)
    assert (await post_result(h, early, secret)).status_code == 200
    live = await get_call(h, batch_id, early)
    assert live["status"] == "active" and "result" not in live
    assert await status_of(h, batch_id) == progress
    await _complete(h, first)

    # The other call: the provider's outcome first, the agent's report after.
    await _complete(h, second)
    assert (await post_result(h, late, secret)).status_code == 200

    a = (await get_call(h, batch_id, early))["result"]
    b = (await get_call(h, batch_id, late))["result"]
    assert a["callId"] == "pcid_0" and b["callId"] == "pcid_1"
    assert {**a, "callId": None} == {**b, "callId": None}
    assert a["transcript"] == REPORT["transcript"]  # the provider did not wipe it
    for key, value in REPORT.items():
        assert a[key] == value
    assert a["metadata"] == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
    }
    done = await status_of(h, batch_id)
    assert done["completed"] == 2 and done["active"] == 0


async def test_the_endpoint_is_documented_without_api_key_auth(api: Harness) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    op = spec["paths"]["/v1/api/calls/{jobId}/result"]["post"]
    headers = {p["name"] for p in op["parameters"] if p["in"] == "header"}
    assert {"X-Dialbatch-Timestamp", "X-Dialbatch-Signature"} <= headers
    assert "x-api-key" not in headers and not op.get("security")
    assert "application/json" in op["requestBody"]["content"]
    rotate = spec["paths"]["/v1/api/agents/{agentId}/secret"]["post"]
    assert rotate["security"]


async def test_any_valid_json_text_round_trips(harness: Harness) -> None:
    """NUL characters, emoji and non-Latin keys are stored as sent, on both databases."""
    h = harness
    batch_id, job, secret = await finished_batch(h)
    odd: dict[str, Any] = {
        "transcript": "a\u0000b \U0001f600 日本",
        "data": {"名前": "\u0000", "n": [1, 2.5, None]},
    }
    r = await post_result(h, job, secret, body=result_body(job, **odd))
    assert r.status_code == 200, r.text
    result = (await get_call(h, batch_id, job))["result"]
    assert result["transcript"] == odd["transcript"] and result["data"] == odd["data"]
