"""The SDK's suppression-list methods, blocking and async, against a real server."""

from __future__ import annotations

import time

import pytest

from dialbatch.client import AsyncClient, BadRequest, Client, NotFound
from tests.client._server import LiveServer


def test_the_blocking_client_manages_the_suppression_list(server: LiveServer) -> None:
    with Client(server.url, server.demo.api_key, server.demo.workspace_id) as client:
        added = client.suppress(["(202) 555-0140"], reason="asked", default_country="US")
        assert added == {"added": 1, "expiresAt": None}
        entry = client.get_suppression("+12025550140")
        assert (entry["reason"], entry["source"]) == ("asked", "api")
        csv = b"phone_number,reason\n+12025550141,complaint\n+12025550142,\n"
        assert client.import_suppressions(csv, reason="list")["added"] == 2
        page = client.list_suppressions(limit=2)
        assert page["pagination"]["total"] == 3 and len(page["suppressions"]) == 2
        with pytest.raises(BadRequest) as bad:
            client.suppress(["+12025550143", "nope"])
        assert [p["index"] for p in bad.value.body["problems"]] == [1]
        assert client.remove_suppression("+12025550140")["deleted"] is True
        with pytest.raises(NotFound):
            client.get_suppression("+12025550140")
        # A batch with a suppressed number is refused with the row.
        with pytest.raises(BadRequest) as refused:
            client.start_batch(b"phone_number\n+12025550141\n", server.demo.agent_id)
        assert refused.value.body["problems"][0]["row"] == 2


async def test_the_async_client_manages_the_suppression_list(server: LiveServer) -> None:
    async with AsyncClient(server.url, server.demo.api_key, server.demo.workspace_id) as client:
        await client.suppress(["+12025550150"], expires_at="2099-01-01T00:00:00Z")
        found = await client.list_suppressions()
        assert [s["phoneNumber"] for s in found["suppressions"]] == ["+12025550150"]
        assert found["suppressions"][0]["expiresAt"] == 4070908800000
        await client.remove_suppression("+12025550150")
        assert (await client.list_suppressions())["suppressions"] == []


def test_the_client_sets_and_clears_frequency_caps(server: LiveServer) -> None:
    with Client(server.url, server.demo.api_key, server.demo.workspace_id) as client:
        assert client.set_frequency_caps(per_24h=3)["frequencyCaps"] == {"per24h": 3}
        assert client.get_workspace()["frequencyCaps"] == {"per24h": 3}
        with pytest.raises(BadRequest):
            client.set_frequency_caps(per_30d=0)
        assert client.set_frequency_caps()["frequencyCaps"] is None


def test_the_client_sets_the_profile_and_the_default_window(server: LiveServer) -> None:
    window = {"days": {"mon": [["09:00", "17:00"]]}}
    with Client(server.url, server.demo.api_key, server.demo.workspace_id) as client:
        assert client.set_compliance_profile("us")["complianceProfile"] == "us"
        rules = client.set_default_calling_window(window)
        assert rules["callingWindow"] is not None
        assert rules["callingWindow"]["days"] == window["days"]
        assert client.get_workspace().get("complianceProfile") == "us"
        with pytest.raises(BadRequest):
            client.set_compliance_profile("eu")
        with pytest.raises(BadRequest):  # a batch may not loosen its workspace's profile
            client.create_batch_from_rows(
                [{"phone_number": "+12025550160"}], server.demo.agent_id, compliance_profile="none"
            )
        assert client.set_default_calling_window(None)["callingWindow"] is None


async def test_the_async_client_sets_the_profile_and_the_default_window(
    server: LiveServer,
) -> None:
    async with AsyncClient(server.url, server.demo.api_key, server.demo.workspace_id) as client:
        assert (await client.set_compliance_profile("ca"))["complianceProfile"] == "ca"
        window = {"days": {"sat": [["10:00", "12:00"]]}}
        assert (await client.set_default_calling_window(window))["callingWindow"] is not None
        started = await client.create_batch_from_rows(
            [{"phone_number": "+12025550161"}],
            server.demo.agent_id,
            scheduled_at=int(time.time() * 1000) + 30 * 24 * 3600 * 1000,  # not dialed here
            compliance_profile="ca",
            calling_window={"days": {"sun": [["10:00", "12:00"]]}},
        )
        batch = await client.get_batch(started["batchId"])
        assert batch.get("complianceProfile") == "ca"
        assert (batch.get("callingWindow") or {})["days"] == {"sun": [["10:00", "12:00"]]}
