"""`maxConcurrency` and `priority` on batch creation (extensions, issue 11 item 7): validated
with a 400 that names the field and writes nothing, stored, and shown on the batch."""

from __future__ import annotations

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


async def test_the_form_fields_are_stored_and_shown_on_the_batch(api: Harness) -> None:
    r = await start_batch(api, maxConcurrency="3", priority="-7")
    assert r.status_code == 200, r.text
    batch = await get_batch(api, r.json()["batchId"])
    assert batch["maxConcurrency"] == 3
    assert batch["priority"] == -7


async def test_a_batch_without_them_has_no_cap_of_its_own_and_priority_0(api: Harness) -> None:
    r = await start_batch(api)
    assert r.status_code == 200, r.text
    batch = await get_batch(api, r.json()["batchId"])
    assert batch["maxConcurrency"] is None
    assert batch["priority"] == 0


async def test_the_json_body_takes_integers(api: Harness) -> None:
    body = {
        "agentId": api.demo.agent_id,
        "calls": [{"phone_number": n} for n in numbers(2)],
        "maxConcurrency": 50,  # above the workspace's cap: allowed, means the workspace's
        "priority": 100,
    }
    r = await api.client.post(BASE, headers=api.headers, json=body)
    assert r.status_code == 200, r.text
    batch = await get_batch(api, r.json()["batchId"])
    assert (batch["maxConcurrency"], batch["priority"]) == (50, 100)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("maxConcurrency", "0"),
        ("maxConcurrency", "-2"),
        ("maxConcurrency", "2.5"),
        ("maxConcurrency", "three"),
        ("priority", "101"),
        ("priority", "-101"),
        ("priority", "1.5"),
        ("priority", "urgent"),
    ],
)
async def test_bad_form_values_are_a_400_naming_the_field_and_nothing_is_written(
    api: Harness, field: str, value: str
) -> None:
    before = await batch_count(api)
    r = await start_batch(api, **{field: value})
    body = assert_error_shape(r, 400)
    assert field in body["message"], body["message"]
    assert await batch_count(api) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("maxConcurrency", 0),
        ("maxConcurrency", -1),
        ("maxConcurrency", 2.5),
        ("maxConcurrency", True),
        ("priority", 1000),
        ("priority", 0.5),
        ("priority", [1]),
    ],
)
async def test_bad_json_values_are_a_400_naming_the_field(
    api: Harness, field: str, value: object
) -> None:
    before = await batch_count(api)
    body = {"agentId": api.demo.agent_id, "calls": [{"phone_number": numbers(1)[0]}], field: value}
    r = await api.client.post(BASE, headers=api.headers, json=body)
    err = assert_error_shape(r, 400)
    assert field in err["message"], err["message"]
    assert await batch_count(api) == before


async def test_validate_refuses_the_same_bad_values(api: Harness) -> None:
    r = await api.client.post(
        f"{BASE}/validate",
        headers=api.headers,
        json={
            "agentId": api.demo.agent_id,
            "calls": [{"phone_number": numbers(1)[0]}],
            "priority": 200,
        },
    )
    assert "priority" in assert_error_shape(r, 400)["message"]


async def test_the_openapi_document_describes_both_fields(api: Harness) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    body = doc["paths"][BASE]["post"]["requestBody"]["content"]
    form = body["multipart/form-data"]["schema"]["properties"]
    as_json = body["application/json"]["schema"]["properties"]
    for field in ("maxConcurrency", "priority"):
        assert "extension" in form[field]["description"]
        assert as_json[field]["type"] == "integer"
    batch = doc["components"]["schemas"]["BatchResponse"]["properties"]
    assert "extension" in batch["maxConcurrency"]["description"]
    assert "extension" in batch["priority"]["description"]


# -- PATCH /v1/api/batch-calls/{batchId}: a running batch's limits ----------------------


async def test_a_running_batch_s_limits_change_and_show(api: Harness) -> None:
    batch_id = (await start_batch(api, maxConcurrency="3")).json()["batchId"]
    r = await api.client.patch(f"{BASE}/{batch_id}", headers=api.headers, json={"priority": 12})
    assert r.status_code == 200, r.text
    assert (r.json()["maxConcurrency"], r.json()["priority"]) == (3, 12)
    r = await api.client.patch(
        f"{BASE}/{batch_id}", headers=api.headers, json={"maxConcurrency": None}
    )
    assert r.status_code == 200, r.text
    batch = await get_batch(api, batch_id)
    assert (batch["maxConcurrency"], batch["priority"]) == (None, 12)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "maxConcurrency and/or priority"),
        ([1], "maxConcurrency and/or priority"),
        ({"maxConcurrency": 0}, "maxConcurrency"),
        ({"maxConcurrency": "4"}, "maxConcurrency"),
        ({"priority": None}, "priority"),
        ({"priority": 300}, "priority"),
        ({"status": "paused"}, "Unknown field"),
    ],
)
async def test_a_bad_change_is_a_400_naming_the_field(
    api: Harness, body: object, words: str
) -> None:
    batch_id = (await start_batch(api)).json()["batchId"]
    r = await api.client.patch(f"{BASE}/{batch_id}", headers=api.headers, json=body)
    assert words in assert_error_shape(r, 400)["message"]
    batch = await get_batch(api, batch_id)
    assert (batch["maxConcurrency"], batch["priority"]) == (None, 0)


async def test_an_unknown_or_another_workspace_s_batch_is_404(api: Harness) -> None:
    r = await api.client.patch(
        f"{BASE}/batch_00000000deadbeef", headers=api.headers, json={"priority": 1}
    )
    assert assert_error_shape(r, 404)["error"] == "Batch not found"
    batch_id = (await start_batch(api)).json()["batchId"]
    other = await api.other_workspace()
    foreign = await api.client.patch(f"{BASE}/{batch_id}", headers=other, json={"priority": 1})
    assert assert_error_shape(foreign, 404)["error"] == "Batch not found"
    assert (await get_batch(api, batch_id))["priority"] == 0


async def test_a_finished_batch_is_409(api: Harness) -> None:
    batch_id = (await start_batch(api)).json()["batchId"]
    assert (await api.client.delete(f"{BASE}/{batch_id}", headers=api.headers)).status_code == 200
    r = await api.client.patch(f"{BASE}/{batch_id}", headers=api.headers, json={"priority": 1})
    assert "cancelled" in assert_error_shape(r, 409)["message"]
