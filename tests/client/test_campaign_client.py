"""The SDK's campaign methods (extensions) against the real app: pause and resume, the
workspace stop, retry-failed, JSON rows and Idempotency-Key; async in-process, blocking
over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialbatch.client import BadRequest, Client, Conflict, NotFound
from tests.client._server import LiveServer
from tests.client.test_client import client_for
from tests.conftest import Harness, numbers


def rows(n: int) -> list[dict[str, object]]:
    return [{"phone_number": p, "name": f"N{i}", "n": i} for i, p in enumerate(numbers(n))]


async def test_async_client_pauses_retries_and_sends_rows(api: Harness) -> None:
    async with client_for(api) as client:
        started = await client.create_batch_from_rows(
            rows(3), api.demo.agent_id, idempotency_key="rows-1"
        )
        again = await client.create_batch_from_rows(
            rows(3), api.demo.agent_id, idempotency_key="rows-1"
        )
        assert again["batchId"] == started["batchId"] and started["totalCalls"] == 3
        calls = [c async for c in client.iter_calls(started["batchId"])]
        assert calls[2]["metadata"] == {"name": "N2", "n": "2"}
        with pytest.raises(BadRequest) as bad:
            await client.create_batch_from_rows([{"phone_number": "x"}], api.demo.agent_id)
        assert bad.value.body["problems"][0]["name"] == "calls[0]"

        paused = await client.pause_batch(started["batchId"])
        assert paused["status"] == "paused" and paused["changed"]
        assert (await client.get_batch(started["batchId"]))["status"] == "paused"
        assert (await client.resume_batch(started["batchId"]))["status"] == "queued"
        stop = await client.pause_workspace()
        assert stop["paused"] and (await client.get_workspace())["paused"]
        assert not (await client.resume_workspace())["paused"]
        with pytest.raises(BadRequest):  # nothing failed yet
            await client.retry_failed(started["batchId"], outcome=["busy"], error_contains="x")
        with pytest.raises(NotFound):
            await client.pause_batch("batch_00000000deadbeef")
        await client.cancel_batch(started["batchId"])
        with pytest.raises(Conflict):
            await client.resume_batch(started["batchId"])


def test_blocking_client_campaign_methods(server: LiveServer) -> None:
    demo = server.demo
    with Client(server.url, demo.api_key, demo.workspace_id, timeout=10) as client:
        # Scheduled ahead: nothing is dialed (so nothing fails) during the test.
        later = datetime.now(UTC) + timedelta(days=30)
        started = client.create_batch_from_rows(
            rows(2), demo.agent_id, scheduled_at=later, dedupe=True
        )
        assert client.pause_batch(started["batchId"])["status"] == "paused"
        assert client.resume_batch(started["batchId"])["changed"] is True
        assert client.get_workspace()["paused"] is False
        assert client.pause_workspace()["changed"] is True
        assert client.resume_workspace()["changed"] is True
        with pytest.raises(BadRequest):
            client.retry_failed(started["batchId"])


async def test_async_client_sets_the_failure_stop(api: Harness) -> None:
    async with client_for(api) as client:
        rule = (await client.set_failure_stop({"lastDials": 6}))["failureStop"]
        assert rule["lastDials"] == 6 and rule["failedShare"] == 0.5
        assert (await client.get_workspace())["failureStop"]["lastDials"] == 6
        own = await client.create_batch_from_rows(
            rows(2), api.demo.agent_id, failure_stop={"enabled": False}
        )
        assert (await client.get_batch(own["batchId"]))["failureStop"]["enabled"] is False
        with pytest.raises(BadRequest) as bad:
            await client.set_failure_stop({"lastDials": 0})
        assert "failureStop.lastDials" in str(bad.value)
        assert (await client.set_failure_stop(None))["failureStop"]["lastDials"] == 20


def test_blocking_client_sends_a_batch_failure_stop(server: LiveServer, tmp_path: Path) -> None:
    demo = server.demo
    path = tmp_path / "c.csv"
    path.write_text("phone_number\n" + "\n".join(numbers(2)) + "\n")
    later = datetime.now(UTC) + timedelta(days=30)
    with Client(server.url, demo.api_key, demo.workspace_id, timeout=10) as client:
        started = client.start_batch(
            path, demo.agent_id, scheduled_at=later, failure_stop={"lastDials": 8}
        )
        assert client.get_batch(started["batchId"])["failureStop"]["lastDials"] == 8


async def test_async_client_validates_without_creating(api: Harness) -> None:
    async with client_for(api) as client:
        checked = await client.validate_rows(
            [*rows(3), {"phone_number": "x"}], api.demo.agent_id, skip_invalid=True
        )
        assert checked["valid"] and checked["callsToCreate"] == 3
        assert checked["invalidRows"] == 1 and checked["problems"][0]["name"] == "calls[3]"
        assert checked["estimate"]["callSecondsFrom"] == "default"
        assert (await client.list_batches())["pagination"]["total"] == 0
        with pytest.raises(NotFound):
            await client.validate_rows(rows(1), "agent_nope")


def test_blocking_client_validates_a_csv(server: LiveServer, tmp_path: Path) -> None:
    demo = server.demo
    path = tmp_path / "c.csv"
    path.write_text("phone_number\n" + "\n".join([*numbers(2), numbers(1)[0]]) + "\n")
    with Client(server.url, demo.api_key, demo.workspace_id, timeout=10) as client:
        checked = client.validate_batch(path, demo.agent_id)
        assert not checked["valid"] and checked["duplicateRows"] == 1
        assert checked["timeZones"] == [{"zones": ["America/New_York"], "calls": 2}]
        assert client.validate_batch(path, demo.agent_id, dedupe=True)["valid"]
        assert client.list_batches()["pagination"]["total"] == 0


async def test_async_client_sends_require_consent_and_sets_the_workspace_floor(
    api: Harness,
) -> None:
    consented = {"consent_basis": "web form", "consent_at": "2025-01-31T09:00:00Z"}
    async with client_for(api) as client:
        mixed = [{**rows(2)[0], **consented}, {**rows(2)[1], "consent_basis": ""}]
        with pytest.raises(BadRequest) as refused:
            await client.create_batch_from_rows(mixed, api.demo.agent_id, require_consent=True)
        assert "no consent" in refused.value.body["problems"][0]["reason"]
        assert refused.value.body["problems"][0]["name"] == "calls[1]"
        started = await client.create_batch_from_rows(
            [{**r, **consented} for r in rows(2)], api.demo.agent_id, require_consent=True
        )
        assert (await client.get_batch(started["batchId"]))["requireConsent"] is True
        assert (await client.set_require_consent(True))["requireConsent"] is True
        checked = await client.validate_rows(mixed, api.demo.agent_id, skip_invalid=True)
        assert checked["invalidRows"] == 1 and checked["callsToCreate"] == 1
        assert (await client.set_require_consent(False))["requireConsent"] is False


def test_blocking_client_sends_require_consent_in_the_form(
    server: LiveServer, tmp_path: Path
) -> None:
    demo = server.demo
    path = tmp_path / "c.csv"
    path.write_text("phone_number,timezone\n" + "\n".join(numbers(2)) + "\n")
    later = datetime.now(UTC) + timedelta(days=30)
    with Client(server.url, demo.api_key, demo.workspace_id, timeout=10) as client:
        with pytest.raises(BadRequest) as refused:
            client.start_batch(path, demo.agent_id, scheduled_at=later, require_consent=True)
        assert "requireConsent is on" in refused.value.body["message"]
        assert client.validate_batch(path, demo.agent_id)["valid"] is True


async def test_async_client_sends_max_concurrency_and_priority(api: Harness) -> None:
    async with client_for(api) as client:
        own = await client.create_batch_from_rows(
            rows(2), api.demo.agent_id, max_concurrency=2, priority=9
        )
        batch = await client.get_batch(own["batchId"])
        assert (batch.get("maxConcurrency"), batch.get("priority")) == (2, 9)
        checked = await client.validate_rows(rows(2), api.demo.agent_id, max_concurrency=1)
        assert checked["estimate"].get("maxConcurrency") == 1
        with pytest.raises(BadRequest) as bad:
            await client.create_batch_from_rows(rows(1), api.demo.agent_id, max_concurrency=0)
        assert "maxConcurrency" in str(bad.value)


def test_blocking_client_sends_them_in_the_form(server: LiveServer, tmp_path: Path) -> None:
    demo = server.demo
    path = tmp_path / "c.csv"
    path.write_text("phone_number\n" + "\n".join(numbers(2)) + "\n")
    later = datetime.now(UTC) + timedelta(days=30)
    with Client(server.url, demo.api_key, demo.workspace_id, timeout=10) as client:
        started = client.start_batch(
            path, demo.agent_id, scheduled_at=later, max_concurrency=5, priority=-100
        )
        batch = client.get_batch(started["batchId"])
        assert (batch.get("maxConcurrency"), batch.get("priority")) == (5, -100)


async def test_async_client_changes_a_running_batch_s_limits(api: Harness) -> None:
    async with client_for(api) as client:
        own = await client.create_batch_from_rows(rows(2), api.demo.agent_id, max_concurrency=2)
        changed = await client.update_batch(own["batchId"], priority=4)
        assert (changed["maxConcurrency"], changed["priority"]) == (2, 4)
        dropped = await client.update_batch(own["batchId"], remove_max_concurrency=True)
        assert dropped["maxConcurrency"] is None
        await client.cancel_batch(own["batchId"])
        with pytest.raises(Conflict):
            await client.update_batch(own["batchId"], priority=1)
