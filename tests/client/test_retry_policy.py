"""The SDK's retry-policy methods (extension): a batch's own `retry_policy` on every create
and validate method, and the workspace default; async in-process, blocking over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialbatch.client import BadRequest, Client
from tests.client._server import LiveServer
from tests.client.test_client import client_for
from tests.conftest import Harness, numbers

POLICY = {"busy": {"maxDials": 3, "gapsSeconds": [60, 120]}, "voicemail": False}


async def test_async_client_sends_a_policy_and_sets_the_default(api: Harness) -> None:
    rows = [{"phone_number": p} for p in numbers(2)]
    async with client_for(api) as client:
        own = await client.create_batch_from_rows(rows, api.demo.agent_id, retry_policy=POLICY)
        shown = (await client.get_batch(own["batchId"]))["retryPolicy"]
        assert shown is not None and shown["busy"]["gapsSeconds"] == [60, 120]
        checked = await client.validate_rows(rows, api.demo.agent_id, retry_policy=POLICY)
        assert checked["valid"]
        with pytest.raises(BadRequest) as bad:
            await client.validate_rows(rows, api.demo.agent_id, retry_policy={"busy": 1})
        assert "retryPolicy.busy" in str(bad.value)

        rules = await client.set_retry_policy({"no-answer": {"maxDials": 2, "gapsSeconds": [60]}})
        assert rules["retryPolicy"] == {
            "no-answer": {"retry": True, "maxDials": 2, "gapsSeconds": [60], "counting": "dials"}
        }
        assert (await client.get_workspace())["retryPolicy"] == rules["retryPolicy"]
        assert (await client.set_retry_policy(None))["retryPolicy"] is None


def test_blocking_client_uploads_a_policy(server: LiveServer, tmp_path: Path) -> None:
    demo = server.demo
    path = tmp_path / "c.csv"
    path.write_text("phone_number\n" + "\n".join(numbers(2)) + "\n")
    later = datetime.now(UTC) + timedelta(days=30)
    with Client(server.url, demo.api_key, demo.workspace_id, timeout=10) as client:
        started = client.start_batch(path, demo.agent_id, scheduled_at=later, retry_policy=POLICY)
        shown = client.get_batch(started["batchId"])["retryPolicy"]
        assert shown is not None and shown["voicemail"] == {"retry": False}
        assert client.set_retry_policy(POLICY)["retryPolicy"] is not None
        assert client.get_workspace()["retryPolicy"] is not None
        assert client.set_retry_policy(None)["retryPolicy"] is None
