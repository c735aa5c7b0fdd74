"""The upload's `timezone`, `consent_basis` and `consent_at` columns and `requireConsent`
(extension, issue 10 item 6 and the CSV timezone column), through the real app on SQLite and
PostgreSQL: bad cells are row-numbered 400s that write nothing, the values are kept on the
call (not in metadata) and shown on its detail and in the export, requireConsent refuses (or,
with skipInvalid, skips) rows without consent, the workspace's setting is a floor, and a
call's own zone is the one the gate reads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dialbatch.domain.clock import FixedClock
from dialbatch.store import queue
from tests.api.conftest import (
    BASE,
    Harness,
    assert_error_shape,
    batch_count,
    csv_bytes,
    get_batch,
    get_call,
    list_all_calls,
    start_batch,
)
from tests.domain._time import LOS_ANGELES, NEW_YORK, local

NYC, NYC2, NYC3 = "+12125550123", "+12125550124", "+12125550125"
HEADER = "phone_number,name,timezone,consent_basis,consent_at"
WORKSPACE = "/v1/api/workspace"


def upload(*rows: str, header: str = HEADER) -> bytes:
    return csv_bytes(list(rows), header=header)


async def calls_by_phone(api: Harness, batch_id: str) -> dict[str, dict[str, Any]]:
    listed = await list_all_calls(api, batch_id)
    return {c["phone_number"]: await get_call(api, batch_id, c["jobId"]) for c in listed}


async def test_a_bad_timezone_is_a_row_numbered_400_and_nothing_is_written(api: Harness) -> None:
    before = await batch_count(api)
    content = upload(f"{NYC},Ana,America/New_York,,", f"{NYC2},Bo,Mars/Olympus,,")
    r = await start_batch(api, content=content)
    body = assert_error_shape(r, 400)
    assert "row 3, column timezone" in body["message"], body["message"]
    assert body["problems"] == [
        {
            "row": 3,
            "column": "timezone",
            "reason": body["problems"][0]["reason"],
            "value": "Mars/Olympus",
        }
    ]
    assert "not an IANA time zone" in body["problems"][0]["reason"]
    assert body["acceptWith"] == ["skipInvalid"]
    assert await batch_count(api) == before
    # skipInvalid leaves the row out and says so
    r = await start_batch(api, content=content, skipInvalid="true")
    assert r.status_code == 200, r.text
    assert r.json()["totalCalls"] == 1 and r.json()["skippedRows"][0]["row"] == 3


async def test_a_bad_consent_time_is_a_row_problem(api: Harness) -> None:
    content = upload(
        f"{NYC},Ana,,web form,2025-01-31T09:00:00",  # no zone
        f"{NYC2},Bo,,web form,yesterday",
        f"{NYC3},Cy,,web form,2999-01-01T00:00:00Z",  # in the future
    )
    body = assert_error_shape(await start_batch(api, content=content), 400)
    problems = {p["row"]: p for p in body["problems"]}
    assert set(problems) == {2, 3, 4}
    assert all(p["column"] == "consent_at" for p in problems.values())
    assert "no time zone" in problems[2]["reason"]
    assert "ISO 8601" in problems[3]["reason"]
    assert "in the future" in problems[4]["reason"]


async def test_timezone_and_consent_are_kept_on_the_call_not_in_metadata(api: Harness) -> None:
    content = upload(
        f"{NYC},Ana,America/Los_Angeles,web form 2025,2025-01-31T09:00:00Z",
        f"{NYC2},Bo,,,",
        f'{NYC3},Cy,,"say ""yes"" \\ ü 日本",{1738314000000}',
    )
    r = await start_batch(api, content=content)
    assert r.status_code == 200, r.text
    batch_id = r.json()["batchId"]
    listed = {c["phone_number"]: c for c in await list_all_calls(api, batch_id)}
    assert listed[NYC]["metadata"] == {"name": "Ana"}  # the agent does not get them
    shown = await calls_by_phone(api, batch_id)
    assert shown[NYC]["timezone"] == "America/Los_Angeles"
    assert shown[NYC]["consent"] == {"basis": "web form 2025", "at": 1738314000000}
    assert "timezone" not in shown[NYC2] and "consent" not in shown[NYC2]
    # free text is stored as written, whatever it holds
    assert shown[NYC3]["consent"] == {"basis": 'say "yes" \\ ü 日本', "at": 1738314000000}


async def test_consent_and_timezone_are_in_both_exports(api: Harness) -> None:
    content = upload(
        f'{NYC},Ana,America/Chicago,"opt-in, web",2025-01-31T10:00:00+01:00',
        f"{NYC2},Bo,,,",
    )
    batch_id = (await start_batch(api, content=content)).json()["batchId"]
    r = await api.client.get(f"{BASE}/{batch_id}/export", headers=api.headers)
    assert r.status_code == 200, r.text
    lines = r.text.strip().split("\r\n")
    header = lines[0].split(",")
    assert header[-3:] == ["timezone", "consent_basis", "consent_at"]
    assert header[-4] == "name"  # the upload's columns before them, unchanged
    assert lines[1].endswith(',America/Chicago,"opt-in, web",1738314000000')
    assert lines[2].endswith(",,,")
    r = await api.client.get(
        f"{BASE}/{batch_id}/export", params={"format": "jsonl"}, headers=api.headers
    )
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert rows[0]["timezone"] == "America/Chicago"
    assert rows[0]["consent"] == {"basis": "opt-in, web", "at": 1738314000000}
    assert rows[0]["metadata"] == {"name": "Ana"}
    assert "timezone" not in rows[1] and "consent" not in rows[1]


async def test_the_json_body_takes_the_same_keys(api: Harness) -> None:
    body = {
        "agentId": api.demo.agent_id,
        "calls": [
            {
                "phone_number": NYC,
                "timezone": "Europe/London",
                "consent_basis": "contract",
                "consent_at": 1738314000000,
            },
            {"phone_number": NYC2, "timezone": "EST"},
        ],
        "requireConsent": True,
    }
    r = await api.client.post(BASE, headers=api.headers, json=body)
    err = assert_error_shape(r, 400)
    problems = {p["name"]: p for p in err["problems"]}
    assert set(problems) == {"calls[1]"}
    assert problems["calls[1]"]["column"] == "timezone"  # checked before consent
    body["calls"][1]["timezone"] = "America/New_York"
    r = await api.client.post(BASE, headers=api.headers, json=body)
    err = assert_error_shape(r, 400)
    assert "no consent" in err["problems"][0]["reason"]
    body["skipInvalid"] = True
    r = await api.client.post(BASE, headers=api.headers, json=body)
    assert r.status_code == 200, r.text
    shown = await calls_by_phone(api, r.json()["batchId"])
    assert shown[NYC]["timezone"] == "Europe/London"
    assert shown[NYC]["consent"] == {"basis": "contract", "at": 1738314000000}


async def test_require_consent_refuses_rows_without_it_with_their_row_numbers(
    api: Harness,
) -> None:
    content = upload(
        f"{NYC},Ana,,web form,2025-01-31T09:00:00Z",
        f"{NYC2},Bo,,,2025-01-31T09:00:00Z",
        f"{NYC3},Cy,,web form,",
    )
    before = await batch_count(api)
    body = assert_error_shape(await start_batch(api, content=content, requireConsent="on"), 400)
    assert [(p["row"], p["column"]) for p in body["problems"]] == [
        (3, "consent_basis"),
        (4, "consent_at"),
    ]
    assert body["problems"][0]["reason"] == (
        "no consent: consent_basis and consent_at are required because requireConsent is on"
    )
    assert body["acceptWith"] == ["skipInvalid"]
    assert await batch_count(api) == before
    r = await start_batch(api, content=content, requireConsent="true", skipInvalid="true")
    assert r.status_code == 200, r.text
    assert r.json()["totalCalls"] == 1
    assert [p["row"] for p in r.json()["skippedRows"]] == [3, 4]
    assert (await get_batch(api, r.json()["batchId"]))["requireConsent"] is True
    # without the flag the same file is taken whole
    r = await start_batch(api, content=content)
    assert r.json()["totalCalls"] == 3
    assert (await get_batch(api, r.json()["batchId"]))["requireConsent"] is False


async def test_require_consent_without_the_columns_says_which_to_add(api: Harness) -> None:
    r = await start_batch(api, [f"{NYC},A,B,a@example.com"], requireConsent="yes")
    body = assert_error_shape(r, 400)
    assert "requireConsent is on" in body["message"]
    assert "consent_basis and consent_at" in body["message"]


async def test_a_bad_require_consent_spelling_is_a_400(api: Harness) -> None:
    r = await start_batch(api, requireConsent="maybe")
    assert "requireConsent must be true or false" in assert_error_shape(r, 400)["message"]


async def test_the_workspace_setting_is_a_floor_no_batch_turns_off(api: Harness) -> None:
    r = await api.client.get(WORKSPACE, headers=api.headers)
    assert r.json()["requireConsent"] is False
    r = await api.client.patch(WORKSPACE, headers=api.headers, json={"requireConsent": True})
    assert r.status_code == 200, r.text
    assert r.json()["requireConsent"] is True
    assert r.json()["frequencyCaps"] is None  # left out: unchanged
    assert (await api.client.get(WORKSPACE, headers=api.headers)).json()["requireConsent"]
    content = upload(f"{NYC},Ana,,,")
    for flag in ("false", ""):
        body = assert_error_shape(await start_batch(api, content=content, requireConsent=flag), 400)
        assert "no consent" in body["problems"][0]["reason"]
    # validate reports the same problems
    mixed = upload(f"{NYC},Ana,,,", f"{NYC2},Bo,,web form,2025-01-31T09:00:00Z")
    r = await api.client.post(
        f"{BASE}/validate",
        headers=api.headers,
        files={"file": ("c.csv", mixed, "text/csv")},
        data={"agentId": api.demo.agent_id},
    )
    assert r.status_code == 200, r.text
    assert r.json()["valid"] is False and r.json()["invalidRows"] == 1
    assert r.json()["problems"][0]["row"] == 2
    assert "no consent" in r.json()["problems"][0]["reason"]
    r = await api.client.patch(WORKSPACE, headers=api.headers, json={"requireConsent": False})
    assert r.json()["requireConsent"] is False
    assert (await start_batch(api, content=content)).status_code == 200


@pytest.mark.parametrize("value", ["yes", 1, None])
async def test_a_workspace_require_consent_that_is_not_a_boolean_is_a_400(
    api: Harness, value: Any
) -> None:
    r = await api.client.patch(WORKSPACE, headers=api.headers, json={"requireConsent": value})
    assert "requireConsent must be true or false" in assert_error_shape(r, 400)["message"]
    assert (await api.client.get(WORKSPACE, headers=api.headers)).json()["requireConsent"] is False


async def test_validate_counts_each_row_under_its_own_zone(api: Harness) -> None:
    content = upload(f"{NYC},Ana,America/Los_Angeles,,", f"{NYC2},Bo,,,")
    r = await api.client.post(
        f"{BASE}/validate",
        headers=api.headers,
        files={"file": ("c.csv", content, "text/csv")},
        data={"agentId": api.demo.agent_id},
    )
    assert r.status_code == 200, r.text
    zones = {tuple(z["zones"]): z["calls"] for z in r.json()["timeZones"]}
    assert zones == {("America/Los_Angeles",): 1, ("America/New_York",): 1}


EIGHT_TO_NINE = {"days": {d: [["08:00", "21:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}}
WED = (2026, 6, 10)


async def test_the_gate_uses_the_rows_own_zone_over_the_numbers(api: Harness) -> None:
    """A New York number (+1 212) whose row says America/Los_Angeles starts at 08:00 in Los
    Angeles; the one without a zone, at 08:00 in New York."""
    content = upload(f"{NYC},Ana,America/Los_Angeles,,", f"{NYC2},Bo,,,")
    r = await start_batch(api, content=content, callingWindow=json.dumps(EIGHT_TO_NINE))
    assert r.status_code == 200, r.text
    db, ws = api.runtime.db, api.demo.workspace_id

    async def claim(at: int) -> list[str]:
        async with db.write() as conn:
            got, _ = await queue.claim(conn, ws, "w1", 10, 30_000, clock=FixedClock(at))
        async with db.write() as conn:
            intents = await queue.begin_dials(
                conn, [(c, "simulated") for c in got], "w1", 30_000, clock=FixedClock(at)
            )
        return [i.call.phone_number for i in intents]

    assert await claim(local(NEW_YORK, *WED, 8, 0)) == [NYC2]
    assert await claim(local(LOS_ANGELES, *WED, 7, 59)) == []
    assert await claim(local(LOS_ANGELES, *WED, 8, 0)) == [NYC]


async def test_the_openapi_document_describes_every_new_field(api: Harness) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    body = doc["paths"][BASE]["post"]["requestBody"]["content"]
    form = body["multipart/form-data"]["schema"]["properties"]
    assert "extension" in form["requireConsent"]["description"]
    assert "requireConsent" in body["application/json"]["schema"]["properties"]
    patch = doc["paths"][WORKSPACE]["patch"]["requestBody"]["content"]["application/json"]
    assert patch["schema"]["properties"]["requireConsent"]["type"] == "boolean"
    detail = doc["components"]["schemas"]["CallDetail"]["properties"]
    assert "extension" in detail["timezone"]["description"]
    assert "extension" in detail["consent"]["description"]
    batch = doc["components"]["schemas"]["BatchResponse"]["properties"]
    assert "extension" in batch["requireConsent"]["description"]
