"""`complianceProfile` and the workspace's default `callingWindow` as a client meets them
(extensions, issue 10 items 1 and 2): set with PATCH /v1/api/workspace and shown by GET; a
batch may name its own profile only if it is at least as strict; bad input is a 400 in the
contract's error shape that names the field and writes nothing. How the profile holds calls
back is tested in the queue, with an injected clock (tests/store/test_gating.py)."""

from __future__ import annotations

import json
from typing import Any

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

W = "/v1/api/workspace"
WINDOW = {"days": {"mon": [["09:00", "17:00"]]}}


async def patch(h: Harness, body: Any) -> dict[str, Any]:
    r = await h.client.patch(W, headers=h.headers, json=body)
    assert r.status_code == 200, r.text
    shown: dict[str, Any] = r.json()
    return shown


async def workspace(h: Harness) -> dict[str, Any]:
    shown: dict[str, Any] = (await h.client.get(W, headers=h.headers)).json()
    return shown


async def test_the_default_profile_is_none_and_there_is_no_default_window(api: Harness) -> None:
    shown = await workspace(api)
    assert (shown["complianceProfile"], shown["callingWindow"]) == ("none", None)


async def test_profile_and_default_window_are_set_shown_and_cleared(api: Harness) -> None:
    after = await patch(api, {"complianceProfile": "us", "callingWindow": WINDOW})
    assert after["complianceProfile"] == "us"
    assert after["callingWindow"] == {
        "timezone": "recipient",
        "days": {"mon": [["09:00", "17:00"]]},
        "skipDates": [],
    }
    assert (await workspace(api))["callingWindow"] == after["callingWindow"]
    await patch(api, {"frequencyCaps": {"per24h": 5}})  # other fields keep their value
    shown = await workspace(api)
    assert (shown["complianceProfile"], shown["frequencyCaps"]) == ("us", {"per24h": 5})
    assert shown["callingWindow"] is not None
    cleared = await patch(api, {"callingWindow": None, "complianceProfile": "none"})
    assert (cleared["complianceProfile"], cleared["callingWindow"]) == ("none", None)
    assert cleared["frequencyCaps"] == {"per24h": 5}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"complianceProfile": "eu"}, "complianceProfile 'eu' is not a compliance profile"),
        ({"complianceProfile": 1}, "complianceProfile"),
        ({"complianceProfile": None}, "complianceProfile"),
        ({"callingWindow": {"days": {"mon": [["09:00", "25:00"]]}}}, "callingWindow.days.mon"),
        ({"callingWindow": {"days": {"mon": [["9", "17:00"]]}}}, "callingWindow.days.mon[0]"),
        ({"callingWindow": "[]"}, "callingWindow"),
        # One bad field: the good one beside it is not written either.
        ({"complianceProfile": "us", "callingWindow": {"days": {}}}, "callingWindow"),
        ({"complianceProfile": "us", "frequencyCaps": {"per24h": 0}}, "frequencyCaps.per24h"),
    ],
)
async def test_bad_settings_are_400_naming_the_field_and_change_nothing(
    api: Harness, body: dict[str, Any], words: str
) -> None:
    before = await workspace(api)
    r = await api.client.patch(W, headers=api.headers, json=body)
    err = assert_error_shape(r, 400)
    assert words in err["message"], err["message"]
    assert await workspace(api) == before


async def test_a_batch_shows_the_profile_it_was_created_under(api: Harness) -> None:
    r = await start_batch(api)
    assert r.status_code == 200, r.text
    assert (await get_batch(api, r.json()["batchId"]))["complianceProfile"] == "none"
    await patch(api, {"complianceProfile": "us"})
    r = await start_batch(api)
    assert (await get_batch(api, r.json()["batchId"]))["complianceProfile"] == "us"


async def test_a_batch_may_be_stricter_than_its_workspace_in_the_form_and_the_json_body(
    api: Harness,
) -> None:
    r = await start_batch(api, complianceProfile="ca")
    assert r.status_code == 200, r.text
    assert (await get_batch(api, r.json()["batchId"]))["complianceProfile"] == "ca"
    body = {
        "agentId": api.demo.agent_id,
        "calls": [{"phone_number": n} for n in numbers(2)],
        "complianceProfile": "us",
    }
    r = await api.client.post(BASE, headers=api.headers, json=body)
    assert r.status_code == 200, r.text
    assert (await get_batch(api, r.json()["batchId"]))["complianceProfile"] == "us"


@pytest.mark.parametrize(
    ("workspace_profile", "asked", "words"),
    [
        ("none", "eu", "complianceProfile 'eu' is not a compliance profile"),
        ("us", "none", "complianceProfile 'none' is not at least as strict"),
        ("us", "ca", "complianceProfile 'ca' is not at least as strict"),
    ],
)
async def test_an_unknown_or_looser_batch_profile_is_a_400_and_nothing_is_written(
    api: Harness, workspace_profile: str, asked: str, words: str
) -> None:
    await patch(api, {"complianceProfile": workspace_profile})
    before = await batch_count(api)
    r = await start_batch(api, complianceProfile=asked)
    err = assert_error_shape(r, 400)
    assert words in err["message"], err["message"]
    body = {
        "agentId": api.demo.agent_id,
        "calls": [{"phone_number": numbers(1)[0]}],
        "complianceProfile": asked,
    }
    err = assert_error_shape(await api.client.post(BASE, headers=api.headers, json=body), 400)
    assert words in err["message"], err["message"]
    assert await batch_count(api) == before


async def test_validate_refuses_a_looser_profile_as_the_create_would(api: Harness) -> None:
    await patch(api, {"complianceProfile": "us"})
    body = {
        "agentId": api.demo.agent_id,
        "calls": [{"phone_number": numbers(1)[0]}],
        "complianceProfile": "none",
    }
    r = await api.client.post(f"{BASE}/validate", headers=api.headers, json=body)
    assert "complianceProfile" in assert_error_shape(r, 400)["message"]


async def test_the_openapi_document_describes_every_new_field(api: Harness) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    create = doc["paths"][BASE]["post"]["requestBody"]["content"]
    form = create["multipart/form-data"]["schema"]["properties"]["complianceProfile"]
    assert "extension" in form["description"] and form["enum"] == ["none", "us", "ca"]
    assert "complianceProfile" in create["application/json"]["schema"]["properties"]
    settings = doc["paths"][W]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"complianceProfile", "callingWindow", "frequencyCaps"} <= set(settings["properties"])
    batch = doc["components"]["schemas"]["BatchResponse"]["properties"]
    assert "extension" in batch["complianceProfile"]["description"]


async def test_the_form_field_takes_the_window_as_json_text_and_the_profile_as_text(
    api: Harness,
) -> None:
    r = await start_batch(api, complianceProfile="us", callingWindow=json.dumps(WINDOW))
    assert r.status_code == 200, r.text
    shown = await get_batch(api, r.json()["batchId"])
    assert shown["complianceProfile"] == "us"
    assert shown["callingWindow"]["days"] == WINDOW["days"]
