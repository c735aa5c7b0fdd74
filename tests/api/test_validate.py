"""`POST /v1/api/batch-calls/validate` (extension): the create request checked, creating
nothing: row counts and row-numbered problems, whether the create would accept it, time
zones, and a run estimate that the simulated run then matches; error cases as the create's."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from dialbatch.settings import Settings
from tests.api.conftest import (
    BASE,
    Harness,
    assert_error_shape,
    batch_count,
    create_agent,
    csv_bytes,
    numbers,
    open_harness,
    people,
    start_batch,
    wait_for_batch,
)

VALIDATE = f"{BASE}/validate"
LONDON = "+442079460000"
BOISE = "+12085550123"  # area code 208: Mountain or Pacific time


async def validate(
    h: Harness,
    rows: list[str],
    *,
    headers: dict[str, str] | None = None,
    agent_id: str | None = None,
    **fields: str,
) -> httpx.Response:
    data = {"agentId": agent_id or h.demo.agent_id, **fields}
    return await h.client.post(
        VALIDATE,
        headers=headers or h.headers,
        files={"file": ("c.csv", csv_bytes(rows), "text/csv")},
        data=data,
    )


def mixed_rows() -> list[str]:
    dc = numbers(5)
    return people([*dc, "12", dc[0], LONDON, BOISE])  # rows 2-6 DC, 7 bad, 8 repeat


async def test_validate_counts_every_row_and_creates_nothing(api: Harness) -> None:
    r = await validate(api, mixed_rows())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valid"] is False and body["callsToCreate"] == 0
    assert (body["totalRows"], body["validRows"]) == (9, 7)
    assert (body["invalidRows"], body["duplicateRows"]) == (1, 1)
    assert "skipInvalid=true and dedupe=true" in body["message"]
    assert body["problemCount"] == 2
    assert [(p["row"], p["column"]) for p in body["problems"]] == [
        (7, "phone_number"),
        (8, "phone_number"),
    ]
    assert body["problems"][1]["reason"] == "duplicate of row 2"
    assert body["timeZones"] == [
        {"zones": ["America/New_York"], "calls": 5},
        {"zones": ["America/Boise", "America/Los_Angeles"], "calls": 1},
        {"zones": ["Europe/London"], "calls": 1},
    ]
    assert body["unknownTimeZone"] == 0
    assert await batch_count(api) == 0
    # The create itself refuses the same request, as validate said.
    assert (await start_batch(api, mixed_rows())).status_code == 400
    ok = (await validate(api, mixed_rows(), skipInvalid="true")).json()
    assert ok["valid"] is True and ok["callsToCreate"] == 7
    repeat_only = [*mixed_rows()[:5], mixed_rows()[6]]
    assert (await validate(api, repeat_only, dedupe="true")).json()["valid"] is True
    assert await batch_count(api) == 0


async def test_the_estimate_without_history_says_so(api: Harness) -> None:
    scheduled = int(time.time() * 1000) + 10 * 24 * 3600 * 1000
    body = (await validate(api, people(numbers(7)), scheduledAt=str(scheduled))).json()
    e = body["estimate"]
    # The demo workspace: 20 at once, 200 calls/s; a default dial of 60 s.
    assert (e["maxConcurrentCalls"], e["workspaceCallsPerSecond"]) == (20, 200)
    assert (e["callSeconds"], e["callSecondsFrom"], e["historyDials"]) == (60, "default", 0)
    assert e["limitedBy"] == "concurrency" and e["callsPerSecond"] == pytest.approx(1 / 3, 1e-3)
    assert e["durationSeconds"] == pytest.approx(6 * 3 + 60)
    assert e["startAt"] == scheduled
    assert e["finishAt"] == e["startAt"] + round(e["durationSeconds"] * 1000)


async def test_json_rows_are_validated_as_the_json_create_reads_them(api: Harness) -> None:
    body = {
        "agentId": api.demo.agent_id,
        "calls": [{"phone_number": p} for p in [*numbers(2), "nope", numbers(1)[0]]],
        "dedupe": True,
    }
    r = await api.client.post(VALIDATE, headers=api.headers, json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["validRows"], got["invalidRows"], got["duplicateRows"]) == (2, 1, 1)
    assert got["valid"] is False  # dedupe alone does not skip the invalid element
    assert [p["name"] for p in got["problems"]] == ["calls[2]", "calls[3]"]
    assert got["problems"][1]["reason"] == "duplicate of calls[0]"
    assert await batch_count(api) == 0


async def test_validate_error_cases_are_the_creates(api: Harness) -> None:
    missing = await validate(api, people(numbers(2)), agent_id="agent_nope")
    assert assert_error_shape(missing, 404)
    other = await api.other_workspace()
    theirs = await validate(api, people(numbers(2)), headers=other)  # the demo agent: not theirs
    assert_error_shape(theirs, 404)
    for fields, named in [
        ({"defaultCountry": "XX"}, "defaultCountry"),
        ({"smartCallbackConfig": "{nope"}, "smartCallbackConfig"),
        ({"failureStop": '{"lastDials": 0}'}, "failureStop.lastDials"),
        ({"skipInvalid": "maybe"}, "skipInvalid"),
        ({"scheduledAt": "soon"}, "scheduledAt"),
    ]:
        r = await validate(api, people(numbers(2)), **fields)
        assert named in assert_error_shape(r, 400)["message"], (fields, r.text)
    no_phone = await validate(api, ["a,b"], agent_id=None)
    assert_error_shape(no_phone, 400)
    nothing_valid = await validate(api, ["12,A,B,c@d.e"])
    body = assert_error_shape(nothing_valid, 400)
    assert body["problems"][0]["row"] == 2
    no_file = await api.client.post(
        VALIDATE, headers=api.headers, data={"agentId": api.demo.agent_id}
    )
    assert "file" in assert_error_shape(no_file, 400)["message"]
    bad_json = await api.client.post(VALIDATE, headers=api.headers, json={"agentId": "x"})
    assert "calls" in assert_error_shape(bad_json, 400)["message"]
    anonymous = await api.client.post(VALIDATE, files={"file": ("c.csv", b"x", "text/csv")})
    assert anonymous.status_code == 401
    assert await batch_count(api) == 0


# -- the estimate learns from the agent's own dials -------------------------------------
# How close the estimate comes to the run is a timing claim: bench/validate_estimate.py
# measures it (docs/benchmarks.md). Here: what the estimate is made of.

RING_S = 500  # simulated seconds of an unanswered dial; x 0.002 = 1.0 s of real time
CAP = 5


@pytest.fixture
async def capped(make_settings: Callable[..., Settings]) -> AsyncIterator[Harness]:
    async with open_harness(make_settings(demo_max_concurrent_calls=CAP)) as h:
        yield h


async def test_the_estimate_learns_the_call_length_from_the_agents_dials(capped: Harness) -> None:
    h = capped
    agent = await create_agent(h, {"no-answer": 1}, ringTimeoutSeconds=RING_S)
    before: dict[str, Any] = (await validate(h, people(numbers(30)), agent_id=agent)).json()
    assert (before["estimate"]["callSecondsFrom"], before["estimate"]["historyDials"]) == (
        "default",
        0,
    )
    first = await start_batch(h, people(numbers(CAP)), agent_id=agent)
    await wait_for_batch(h, first.json()["batchId"], timeout=30)  # the agent's history
    thirty: dict[str, Any] = (
        await validate(h, people(numbers(30, start=100)), agent_id=agent)
    ).json()["estimate"]
    assert (thirty["callSecondsFrom"], thirty["historyDials"]) == ("history", CAP)
    # Learned from the dials: 1.0 s of ringing, plus what placing and recording one took.
    assert 0.95 <= thirty["callSeconds"] < 1.5
    assert thirty["limitedBy"] == "concurrency"
    # Held back by the cap of 5: 30 more calls take 6 more slots of the length it learned.
    sixty: dict[str, Any] = (
        await validate(h, people(numbers(60, start=100)), agent_id=agent)
    ).json()["estimate"]
    assert sixty["slotSeconds"] == thirty["slotSeconds"] >= thirty["callSeconds"]
    more = sixty["durationSeconds"] - thirty["durationSeconds"]
    assert more == pytest.approx(30 / CAP * thirty["slotSeconds"], rel=0.1), (thirty, sixty)
    assert sixty["finishAt"] - sixty["startAt"] == pytest.approx(
        sixty["durationSeconds"] * 1000, abs=1000
    )


async def test_validate_counts_suppressed_rows_and_calls_outside_the_window(api: Harness) -> None:
    dc = numbers(4)
    r = await api.client.post(
        "/v1/api/suppressions", headers=api.headers, json={"phoneNumbers": [dc[0]]}
    )
    assert r.status_code == 201, r.text
    hour = time.gmtime().tm_hour
    # Open one hour a day from two hours from now, UTC: closed at the start for every call.
    window = {
        "timezone": "Etc/UTC",
        "days": {
            d: [[f"{(hour + 2) % 24:02d}:00", f"{(hour + 3) % 24:02d}:00"]]
            for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        },
    }
    body = (
        await validate(api, people(dc), skipInvalid="true", callingWindow=json.dumps(window))
    ).json()
    assert body["suppressedRows"] == 1 and body["invalidRows"] == 1
    assert body["callsToCreate"] == 3
    assert [p["row"] for p in body["problems"]] == [2]
    assert "suppression list" in body["problems"][0]["reason"]
    assert (body["outsideWindowAtStart"], body["windowCannotPlace"]) == (3, 0)
    # The create refuses the suppressed row as validate said it would.
    assert (await validate(api, people(dc))).json()["valid"] is False
    assert (await start_batch(api, people(dc))).status_code == 400
    plain = (await validate(api, people(dc[1:]))).json()
    assert (plain["suppressedRows"], plain["outsideWindowAtStart"]) == (0, 0)
