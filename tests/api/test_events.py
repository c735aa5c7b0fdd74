"""The live-event endpoints' refusals, in the contract's error shape (the streams
themselves run over real HTTP in tests/events/test_stream.py)."""

from __future__ import annotations

import pytest

from tests.api.conftest import MISSING_BATCH, Harness, assert_error_shape, start_batch

EVENTS = "/v1/api/events"


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", " ", "١٢", "9" * 40, "0x10"])
async def test_a_last_event_id_that_is_not_a_number_is_400(api: Harness, value: str) -> None:
    r = await api.client.get(EVENTS, headers={**api.headers, "Last-Event-ID": value.encode()})  # type: ignore[dict-item]
    body = assert_error_shape(r, 400)
    assert "Last-Event-ID" in body["message"]
    r = await api.client.get(EVENTS, headers=api.headers, params={"lastEventId": value})
    assert_error_shape(r, 400)


async def test_another_workspaces_batch_stream_reads_like_a_missing_one(api: Harness) -> None:
    r = await start_batch(api)
    batch_id = r.json()["batchId"]
    other = await api.other_workspace()
    foreign = await api.client.get(f"/v1/api/batch-calls/{batch_id}/events", headers=other)
    missing = await api.client.get(f"/v1/api/batch-calls/{MISSING_BATCH}/events", headers=other)
    assert_error_shape(foreign, 404)
    assert_error_shape(missing, 404)
    assert foreign.json()["error"] == missing.json()["error"] == "Batch not found"


async def test_a_token_is_for_its_workspace_only(api: Harness) -> None:
    r = await start_batch(api)
    batch_id = r.json()["batchId"]
    other = await api.other_workspace()
    token = (await api.client.post(f"{EVENTS}/token", headers=other)).json()["token"]
    r = await api.client.get(f"/v1/api/batch-calls/{batch_id}/events", params={"token": token})
    assert_error_shape(r, 404)


@pytest.mark.parametrize("token", ["", "x", "a.b", "a.b.c", "é" * 10])
async def test_a_malformed_token_is_401(api: Harness, token: str) -> None:
    r = await api.client.get(EVENTS, params={"token": token})
    assert_error_shape(r, 401)
