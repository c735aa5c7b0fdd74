"""`callingWindow` on batch creation (extension, issue 10 item 1): validated with a 400 that
names the field and writes nothing, stored as validated, and shown on the batch."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import (
    BASE,
    Harness,
    assert_error_shape,
    batch_count,
    get_batch,
    numbers,
    start_batch,
)

WINDOW = {
    "timezone": "recipient",
    "days": {"mon": [["09:00", "17:00"]], "sat": [["22:00", "02:00"]]},
    "skipDates": ["2026-12-25"],
}


async def test_a_window_sent_in_the_form_is_stored_and_shown_on_the_batch(api: Harness) -> None:
    r = await start_batch(api, callingWindow=json.dumps(WINDOW))
    assert r.status_code == 200, r.text
    batch = await get_batch(api, r.json()["batchId"])
    assert batch["callingWindow"] == {
        "timezone": "recipient",
        "days": {"mon": [["09:00", "17:00"]], "sat": [["22:00", "02:00"]]},
        "skipDates": ["2026-12-25"],
    }


async def test_a_batch_without_a_window_shows_null(api: Harness) -> None:
    r = await start_batch(api)
    assert r.status_code == 200, r.text
    assert (await get_batch(api, r.json()["batchId"]))["callingWindow"] is None


async def test_the_json_body_takes_the_window_as_an_object(api: Harness) -> None:
    body = {
        "agentId": api.demo.agent_id,
        "calls": [{"phone_number": n} for n in numbers(2)],
        "callingWindow": {"timezone": "America/New_York", "days": {"fri": [["08:00", "20:00"]]}},
    }
    r = await api.client.post(BASE, headers=api.headers, json=body)
    assert r.status_code == 200, r.text
    shown = (await get_batch(api, r.json()["batchId"]))["callingWindow"]
    assert shown == {
        "timezone": "America/New_York",
        "days": {"fri": [["08:00", "20:00"]]},
        "skipDates": [],
    }


@pytest.mark.parametrize(
    ("window", "words"),
    [
        ("{not json", "callingWindow is not valid JSON"),
        ('["09:00", "17:00"]', "callingWindow must be a JSON object"),
        ('{"days": {"mon": [["09:00", "25:00"]]}}', "callingWindow.days.mon[0]"),
        ('{"days": {"funday": [["09:00", "17:00"]]}}', "unknown weekday 'funday'"),
        ('{"days": {"mon": [["09:00", "09:00"]]}}', "starts and ends at the same time"),
        ('{"timezone": "Mars/Olympus", "days": {"mon": [["09:00", "17:00"]]}}', "timezone"),
        ('{"timezone": "EST", "days": {"mon": [["09:00", "17:00"]]}}', "not a known IANA"),
        ('{"days": {"mon": [["09:00", "17:00"]]}, "skipDates": ["25/12/2026"]}', "skipDates[0]"),
        ('{"days": {}}', "opens no range"),
        ('{"hours": "9-5"}', "unknown callingWindow fields"),
    ],
)
async def test_a_bad_window_is_a_400_naming_the_field_and_nothing_is_written(
    api: Harness, window: str, words: str
) -> None:
    before = await batch_count(api)
    r = await start_batch(api, callingWindow=window)
    body = assert_error_shape(r, 400)
    assert words in body["message"], body["message"]
    assert "callingWindow" in body["message"]
    assert await batch_count(api) == before


async def test_the_openapi_document_describes_the_form_field(api: Harness) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    body = doc["paths"][BASE]["post"]["requestBody"]["content"]
    form = body["multipart/form-data"]["schema"]["properties"]
    assert "extension" in form["callingWindow"]["description"]
    assert "callingWindow" in body["application/json"]["schema"]["properties"]


async def test_the_openapi_document_describes_the_gate_summary_and_validate_counts(
    api: Harness,
) -> None:
    schemas = (await api.client.get("/openapi.json")).json()["components"]["schemas"]
    assert "extension" in schemas["BatchResponse"]["properties"]["gate"]["description"]
    assert set(schemas["GateCounts"]["properties"]) == {
        "waitingForWindow",
        "waitingForCap",
        "refused",
    }
    validate = schemas["ValidateResponse"]["properties"]
    assert {"suppressedRows", "outsideWindowAtStart", "windowCannotPlace"} <= set(validate)
    assert "until" in schemas["CallDetail"]["properties"]["gateDecision"]["description"]
