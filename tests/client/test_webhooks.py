"""The SDK's webhook methods, blocking and async, against a real server."""

from __future__ import annotations

import pytest

from dialbatch.client import AsyncClient, BadRequest, Client, NotFound
from tests.client._server import LiveServer

PUBLIC = "https://93.184.216.34/hooks"


def test_the_blocking_client_manages_webhooks(server: LiveServer) -> None:
    with Client(server.url, server.demo.api_key, server.demo.workspace_id) as client:
        made = client.create_webhook(PUBLIC, ["call.failed"], "ops")
        assert made["secret"].startswith("whsec_")
        assert [w["id"] for w in client.list_webhooks()] == [made["id"]]
        assert client.get_webhook(made["id"])["description"] == "ops"
        assert client.list_webhook_deliveries(made["id"])["deliveries"] == []
        with pytest.raises(NotFound):
            client.replay_webhook_delivery(made["id"], 12345)
        with pytest.raises(BadRequest):
            client.create_webhook(PUBLIC, ["nope"])
        assert client.delete_webhook(made["id"])["deleted"] is True
        with pytest.raises(NotFound):
            client.get_webhook(made["id"])


async def test_the_async_client_manages_webhooks(server: LiveServer) -> None:
    async with AsyncClient(server.url, server.demo.api_key, server.demo.workspace_id) as client:
        made = await client.create_webhook(PUBLIC, ["batch.completed"])
        assert [w["id"] for w in await client.list_webhooks()] == [made["id"]]
        await client.delete_webhook(made["id"])
        assert await client.list_webhooks() == []
