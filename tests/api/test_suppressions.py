"""The suppression (do-not-call) list as a client meets it: numbers added one by one, in
bulk or from a CSV, matched in E.164 whatever form they were written in; refused at ingest
like invalid rows; and never dialed, even when suppressed after their batch was uploaded."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from dialbatch.client.signing import result_body, result_path, sign_result
from dialbatch.domain.ids import job_id
from dialbatch.store.tables import attempts, calls
from tests.api.conftest import (
    Harness,
    assert_error_shape,
    create_agent,
    csv_bytes,
    get_call,
    numbers,
    people,
    start_batch,
    wait_for_batch,
)

S = "/v1/api/suppressions"


async def suppress(h: Harness, *phones: str, **extra: Any) -> dict[str, Any]:
    r = await h.client.post(S, headers=h.headers, json={"phoneNumbers": list(phones), **extra})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def listed(h: Harness, **params: Any) -> dict[str, Any]:
    r = await h.client.get(S, headers=h.headers, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_numbers_are_kept_in_e164_whatever_form_they_come_in(harness: Harness) -> None:
    h = harness
    body = await suppress(
        h, "(202) 555-0100", "+1 202 555 0101", reason="asked not to be called", defaultCountry="US"
    )
    assert body == {"added": 2, "expiresAt": None}
    page = await listed(h)
    assert {s["phoneNumber"] for s in page["suppressions"]} == {"+12025550100", "+12025550101"}
    entry = page["suppressions"][0]
    assert entry["reason"] == "asked not to be called" and entry["source"] == "api"
    assert page["pagination"]["total"] == 2
    # One entry per number: adding it again in another form updates it.
    await suppress(h, "+12025550100", reason="complaint")
    r = await h.client.get(f"{S}/+12025550100", headers=h.headers)
    assert r.status_code == 200 and r.json()["reason"] == "complaint"
    assert (await listed(h))["pagination"]["total"] == 2
    r = await h.client.get(f"{S}/2025550100", headers=h.headers, params={"defaultCountry": "US"})
    assert r.status_code == 200 and r.json()["phoneNumber"] == "+12025550100"


async def test_a_csv_import_takes_a_reason_column_and_pages(harness: Harness) -> None:
    h = harness
    rows = [f"{p},{'moved' if i % 2 else ''}" for i, p in enumerate(numbers(45))]
    r = await h.client.post(
        S,
        headers=h.headers,
        files={"file": ("dnc.csv", csv_bytes(rows, header="phone_number,reason"), "text/csv")},
        data={"reason": "imported"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["added"] == 45
    seen: dict[str, dict[str, Any]] = {}
    for page in (1, 2, 3):
        body = await listed(h, page=page, limit=20)
        seen.update({s["phoneNumber"]: s for s in body["suppressions"]})
        assert body["pagination"]["hasNext"] is (page < 3)
    assert len(seen) == 45
    assert seen[numbers(2)[1]]["reason"] == "moved" and seen[numbers(1)[0]]["reason"] == "imported"
    assert {s["source"] for s in seen.values()} == {"import"}
    past_the_end = await listed(h, page=9, limit=20)
    assert past_the_end["suppressions"] == [] and not past_the_end["pagination"]["hasNext"]


async def test_bad_input_is_400_and_writes_nothing(harness: Harness) -> None:
    h = harness
    bad_json = [
        {"phoneNumbers": ["+12025550100", "not a number", "+1202"]},
        {"phoneNumbers": []},
        {"phoneNumbers": "+12025550100"},
        {"phoneNumbers": ["+12025550100"], "defaultCountry": "XX"},
        {"phoneNumbers": ["+12025550100"], "expiresAt": "yesterday"},
        {"phoneNumbers": ["+12025550100"], "expiresAt": "2020-01-01T00:00:00Z"},
        {"phoneNumbers": ["+12025550100"], "reason": "x" * 201},
        {"phoneNumbers": ["+12025550100"], "surprise": 1},
    ]
    for body in bad_json:
        r = await h.client.post(S, headers=h.headers, json=body)
        assert_error_shape(r, 400)
    r = await h.client.post(S, headers=h.headers, json=bad_json[0])
    problems = r.json()["problems"]
    assert [p["index"] for p in problems] == [1, 2]
    content = csv_bytes(["+12025550100", "555", "+12025550102"], header="phone_number")
    r = await h.client.post(S, headers=h.headers, files={"file": ("x.csv", content, "text/csv")})
    body = assert_error_shape(r, 400)
    assert [p["row"] for p in body["problems"]] == [3]
    r = await h.client.post(
        S,
        headers=h.headers,
        content=b"{",
    )
    assert_error_shape(r, 400)
    assert (await listed(h))["pagination"]["total"] == 0
    for path in (f"{S}/+12025550100", f"{S}/nonsense"):
        r = await h.client.delete(path, headers=h.headers)
        assert_error_shape(r, (400, 404))


async def test_another_workspace_sees_and_removes_nothing(harness: Harness) -> None:
    h = harness
    await suppress(h, "+12025550100")
    other = await h.other_workspace()
    r = await h.client.get(S, headers=other)
    assert r.status_code == 200 and r.json()["suppressions"] == []
    assert_error_shape(await h.client.get(f"{S}/+12025550100", headers=other), 404)
    assert_error_shape(await h.client.delete(f"{S}/+12025550100", headers=other), 404)
    assert (await listed(h))["pagination"]["total"] == 1
    # ... and its uploads are not refused for our list.
    r = await start_batch(h, ["+12025550100"], headers=other, agent_id="agent_other")
    assert r.status_code == 200, r.text


async def test_an_upload_with_a_suppressed_number_is_refused_or_skipped(harness: Harness) -> None:
    h = harness
    phones = numbers(3)
    await suppress(h, phones[1], reason="opted out by email")
    r = await start_batch(h, people(phones))
    body = assert_error_shape(r, 400)
    assert body["problems"][0]["row"] == 3  # the header is row 1
    assert "suppression list (opted out by email)" in body["problems"][0]["reason"]
    assert body["acceptWith"] == ["skipInvalid"]
    r = await start_batch(h, people(phones), skipInvalid="true")
    assert r.status_code == 200, r.text
    assert r.json()["totalCalls"] == 2 and r.json()["skippedRows"][0]["row"] == 3
    # Removed from the list, it is accepted again.
    assert (await h.client.delete(f"{S}/{phones[1]}", headers=h.headers)).status_code == 200
    assert (await start_batch(h, people(phones))).status_code == 200


async def test_a_number_suppressed_after_upload_is_never_dialed(harness: Harness) -> None:
    h = harness
    phones = numbers(4)
    agent = await create_agent(h, {"completed": 1})
    soon = str(int(time.time() * 1000) + 1500)
    r = await start_batch(h, people(phones), agent_id=agent, scheduledAt=soon)
    assert r.status_code == 200, r.text
    batch_id = r.json()["batchId"]
    await suppress(h, phones[2], reason="called in to opt out")
    await wait_for_batch(h, batch_id, timeout=30)
    refused = await get_call(h, batch_id, job_id(batch_id, 2))
    assert refused["status"] == "failed"
    assert refused["error"] == "Suppressed (called in to opt out)"
    for seq in (0, 1, 3):
        assert (await get_call(h, batch_id, job_id(batch_id, seq)))["status"] == "completed"
    async with h.runtime.db.read() as conn:
        dialed = {
            r.phone_number
            for r in await conn.execute(
                sa.select(calls.c.phone_number).join(attempts, attempts.c.call_id == calls.c.id)
            )
        }
    assert phones[2] not in dialed and len(dialed) == 3


async def test_an_agent_opt_out_suppresses_the_number_in_every_batch(harness: Harness) -> None:
    """The person says "never call me again" on a call of batch A; the agent's signed result
    says optOut. Batch B, uploaded before, calls the same number: it ends Suppressed,
    undialed, and the list names the call the opt-out came from."""
    h = harness
    r = await h.client.post(
        "/v1/api/agents",
        headers=h.headers,
        json={"name": "bot", "providerConfig": {"outcomes": {"completed": 1}}},
    )
    agent, secret = r.json()["id"], r.json()["signingSecret"]
    phone = numbers(1)[0]
    first = (await start_batch(h, people([phone]), agent_id=agent)).json()["batchId"]
    await wait_for_batch(h, first)
    later = str(int(time.time() * 1000) + 2000)
    r = await start_batch(h, people([phone, numbers(2)[1]]), agent_id=agent, scheduledAt=later)
    second = r.json()["batchId"]
    job = job_id(first, 0)
    raw = result_body(job, outcome="do-not-call", optOut=True)
    r = await h.client.post(result_path(job), content=raw, headers=sign_result(secret, raw))
    assert r.status_code == 200, r.text
    assert "optOut" not in r.json()["result"]
    entry = (await h.client.get(f"{S}/{phone}", headers=h.headers)).json()
    assert (entry["source"], entry["jobId"], entry["reason"]) == (
        "agent",
        job,
        "opted out on a call",
    )
    await wait_for_batch(h, second, timeout=30)
    refused = await get_call(h, second, job_id(second, 0))
    assert (refused["status"], refused["error"]) == ("failed", "Suppressed (opted out on a call)")
    assert (await get_call(h, second, job_id(second, 1)))["status"] == "completed"
    async with h.runtime.db.read() as conn:
        dials = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(attempts.join(calls, attempts.c.call_id == calls.c.id))
                .where(calls.c.phone_number == phone)
            )
        ).scalar_one()
    assert dials == 1  # batch A's call, before the opt-out
    # A reason without an opt-out is refused, and writes nothing.
    raw = result_body(job, optOutReason="x")
    r = await h.client.post(result_path(job), content=raw, headers=sign_result(secret, raw))
    assert_error_shape(r, 400)
