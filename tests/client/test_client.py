"""The SDK against the real app: AsyncClient in-process (ASGI), Client over real HTTP, and
the reading of responses against a mock transport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from dialbatch.client import (
    AsyncClient,
    BadRequest,
    Client,
    Conflict,
    DialbatchError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    Unauthorized,
)
from dialbatch.client.types import BatchProgress
from dialbatch.settings import Settings
from tests.client._server import LiveServer
from tests.conftest import Harness, csv_bytes, numbers, start_harness

FINAL = {"completed", "failed", "cancelled"}


def contacts(n: int, start: int = 0) -> bytes:
    return csv_bytes(
        [f"{p},First{i},Last{i},p{i}@example.com" for i, p in enumerate(numbers(n, start), start)]
    )


def client_for(h: Harness, api_key: str | None = None) -> AsyncClient:
    transport = httpx.ASGITransport(app=h.runtime.app())
    key = api_key or h.demo.api_key
    return AsyncClient("http://test", key, h.demo.workspace_id, transport=transport)


@pytest.fixture
async def client(harness: Harness) -> AsyncIterator[AsyncClient]:
    async with client_for(harness) as c:
        yield c


def in_an_hour() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


# -- the happy path ------------------------------------------------------------------------


async def test_start_wait_and_walk_every_call(client: AsyncClient) -> None:
    started = await client.start_batch(contacts(25), "agent_demo")
    assert started["status"] == "queued"
    assert started["totalCalls"] == 25
    batch_id = started["batchId"]

    seen: list[BatchProgress] = []
    final = await client.wait(batch_id, poll_interval=0.02, timeout=30, on_progress=seen.append)

    assert final["isComplete"] is True
    assert final["completed"] + final["failed"] + final.get("cancelled", 0) == 25
    assert seen[-1] == final
    calls = [c async for c in client.iter_calls(batch_id, limit=10)]
    assert [c["jobId"] for c in calls] == [f"call_{batch_id[6:]}_{i}" for i in range(25)]
    assert {c["status"] for c in calls} <= FINAL
    assert calls[7]["phone_number"] == numbers(25)[7]
    assert calls[7]["metadata"] == {
        "first_name": "First7",
        "last_name": "Last7",
        "email": "p7@example.com",
    }
    last = await client.list_calls(batch_id, page=3, limit=10)
    assert len(last["calls"]) == 5
    assert last["pagination"] == {
        "page": 3,
        "limit": 10,
        "total": 25,
        "totalPages": 3,
        "hasNext": False,
        "hasPrev": True,
    }
    failed = await client.list_calls(batch_id, status="failed", limit=100)
    assert failed["pagination"]["total"] == final["failed"]
    assert all(c["status"] == "failed" and c["error"] for c in failed["calls"])


async def test_export_and_results_a_page_at_a_time(client: AsyncClient) -> None:
    batch_id = (await client.start_batch(contacts(5), "agent_demo"))["batchId"]
    await client.wait(batch_id, poll_interval=0.02, timeout=30)
    chunks = [c async for c in client.iter_export(batch_id)]
    lines = b"".join(chunks).decode().splitlines()
    assert lines[0].startswith("jobId,phone_number,status") and len(lines) > 5
    page = await client.list_calls(batch_id, include_result=True)
    completed = [c for c in page["calls"] if c["status"] == "completed"]
    assert all("Hello First" in c["result"]["transcript"] for c in completed)
    dials = await client.list_calls(batch_id, include_result=True, include_attempts=True)
    assert all(len(c["attemptHistory"]) == c["attempts"] for c in dials["calls"])
    with pytest.raises(NotFound):
        _ = [c async for c in client.iter_export("batch_nope")]


async def test_batch_and_call_details(client: AsyncClient) -> None:
    batch_id = (await client.start_batch(contacts(6), "agent_demo"))["batchId"]
    await client.wait(batch_id, poll_interval=0.02, timeout=30)

    batch = await client.get_batch(batch_id)
    assert batch["id"] == batch_id
    assert batch["agentId"] == "agent_demo"
    assert batch["progress"]["total"] == 6
    assert batch["status"] == "completed"
    for call in [c async for c in client.iter_calls(batch_id)]:
        detail = await client.get_call(batch_id, call["jobId"])
        assert detail["jobId"] == call["jobId"]
        assert detail["attempts"] >= 1
        if detail["status"] == "completed":
            assert detail["result"]["metadata"]["first_name"].startswith("First")
        else:
            assert detail["error"]


async def test_csv_from_a_path_a_str_and_a_file(client: AsyncClient, tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(contacts(3))
    with path.open("rb") as file:
        results = [
            await client.start_batch(path, "agent_demo"),
            await client.start_batch(str(path), "agent_demo"),
            await client.start_batch(file, "agent_demo"),
        ]
    assert [r["totalCalls"] for r in results] == [3, 3, 3]


async def test_scheduled_batch_waits_and_cancels(client: AsyncClient) -> None:
    when = in_an_hour()
    batch_id = (await client.start_batch(contacts(5), "agent_demo", scheduled_at=when))["batchId"]

    batch = await client.get_batch(batch_id)
    assert batch["status"] == "queued"
    assert batch["isComplete"] is False
    assert batch["scheduledAt"] == int(when.timestamp()) * 1000  # sent to the second
    cancelled = await client.cancel_batch(batch_id)
    assert cancelled["status"] == "cancelled"
    assert cancelled["details"] == {
        "completedCalls": 0,
        "failedCalls": 0,
        "cancelledCalls": 5,
        "totalCalls": 5,
    }
    progress = await client.get_progress(batch_id)
    assert (progress["isComplete"], progress["status"], progress["cancelled"]) == (
        True,
        "cancelled",
        5,
    )
    again = await client.cancel_batch(batch_id)  # cancelling is idempotent
    assert again["details"] == cancelled["details"]


async def test_cancelling_a_finished_batch_raises_conflict(client: AsyncClient) -> None:
    batch_id = (await client.start_batch(contacts(2), "agent_demo"))["batchId"]
    final = await client.wait(batch_id, poll_interval=0.02, timeout=30)
    with pytest.raises(Conflict) as caught:
        await client.cancel_batch(batch_id)
    assert caught.value.status_code == 409
    assert (
        caught.value.message == f"Batch {batch_id} is already {final['status']}; nothing to cancel"
    )


async def test_scheduled_at_as_string_with_offset_and_epoch_ms(client: AsyncClient) -> None:
    when = in_an_hour().replace(microsecond=0)
    local = when.astimezone(timezone(timedelta(hours=2))).isoformat()
    for value in (local, int(when.timestamp() * 1000)):
        batch_id = (await client.start_batch(contacts(1), "agent_demo", value))["batchId"]
        assert (await client.get_batch(batch_id))["scheduledAt"] == int(when.timestamp() * 1000)


async def test_a_naive_datetime_is_refused_before_sending(client: AsyncClient) -> None:
    with pytest.raises(ValueError, match="no time zone"):
        await client.start_batch(contacts(1), "agent_demo", scheduled_at=datetime(2030, 1, 1))


async def test_wait_times_out_and_awaits_async_callbacks(client: AsyncClient) -> None:
    batch_id = (await client.start_batch(contacts(2), "agent_demo", in_an_hour()))["batchId"]
    polls: list[str] = []

    async def record(p: BatchProgress) -> None:
        polls.append(p["status"])

    with pytest.raises(TimeoutError, match="keeps running"):
        # generous: on a loaded 2-core machine one poll can take ~0.1 s
        await client.wait(batch_id, poll_interval=0.02, timeout=1.5, on_progress=record)
    assert len(polls) >= 2
    assert set(polls) == {"queued"}


# -- extensions ----------------------------------------------------------------------------


async def test_default_country_skip_invalid_and_dedupe(client: AsyncClient) -> None:
    csv = csv_bytes(
        [
            "2025550100,Ada,L,a@example.com",  # national: needs a default country
            "+12025550101,Alan,T,t@example.com",
            "12345,Bad,Row,b@example.com",  # invalid: row 4 of the spreadsheet
            "+1 202 555 0100,Ada,Again,a2@example.com",  # the first number again
        ]
    )
    started = await client.start_batch(
        csv, "agent_demo", default_country="US", skip_invalid=True, dedupe=True
    )
    assert started["totalCalls"] == 2
    assert started["duplicatesRemoved"] == 1
    assert started["skipped"] == 2
    assert [p["row"] for p in started["skippedRows"]] == [4, 5]
    calls = [c async for c in client.iter_calls(started["batchId"])]
    assert [c["phone_number"] for c in calls] == ["+12025550100", "+12025550101"]


async def test_smart_callback_config_is_sent_as_json(client: AsyncClient) -> None:
    good = {"enabled": True, "maxAttempts": 2, "gaps": [{"days": 0, "hours": 1}]}
    assert (await client.start_batch(contacts(1), "agent_demo", smart_callback=good))["batchId"]
    with pytest.raises(BadRequest, match="maxAttempts"):
        await client.start_batch(contacts(1), "agent_demo", smart_callback={"maxAttempts": 0})


async def test_agents_and_batches_listings(client: AsyncClient) -> None:
    assert "agent_demo" in [a["id"] for a in await client.list_agents()]
    agent = await client.create_agent(
        "Always answers", provider_config={"outcomes": {"completed": 1}}
    )
    assert agent["provider"] == "simulated"
    secret = agent.pop("signingSecret")  # shown once, at creation
    assert secret.startswith("whsec_")
    assert agent in await client.list_agents()

    first = (await client.start_batch(contacts(3), agent["id"]))["batchId"]
    second = (await client.start_batch(contacts(2), "agent_demo"))["batchId"]
    final = await client.wait(first, poll_interval=0.02, timeout=30)
    assert final["completed"] == 3

    listing = await client.list_batches()
    assert [b["id"] for b in listing["batches"]][:2] == [second, first]
    assert listing["batches"][1]["agentId"] == agent["id"]
    assert listing["pagination"]["total"] == 2


async def test_an_agents_caller_numbers_and_their_limits(client: AsyncClient) -> None:
    agent = await client.create_agent(
        "Pool",
        from_numbers=["+12125550100", "+13105550100"],
        caller_number_limits={"+12125550100": {"callsPerSecond": 1}},
    )
    assert agent["callerNumberLimits"] == {"+12125550100": {"callsPerSecond": 1}}
    shown = await client.get_agent(agent["id"])
    assert shown["fromNumbers"] == ["+12125550100", "+13105550100"]
    assert shown["warnings"]  # 2 numbers for the workspace's cap
    changed = await client.set_caller_numbers(agent["id"], from_numbers=["+13105550100"])
    assert (changed["fromNumbers"], changed["callerNumberLimits"]) == (["+13105550100"], {})
    with pytest.raises(BadRequest, match=r"\+13105550100\.perDay"):
        await client.set_caller_numbers(
            agent["id"], caller_number_limits={"+13105550100": {"perDay": 0}}
        )
    with pytest.raises(NotFound):
        await client.get_agent("agent_nope")


# -- errors --------------------------------------------------------------------------------


async def test_unknown_batch_and_call_raise_not_found(client: AsyncClient) -> None:
    with pytest.raises(NotFound) as caught:
        await client.get_batch("batch_nope")
    assert (caught.value.status_code, caught.value.error) == (404, "Batch not found")
    assert caught.value.message == "No batch with id 'batch_nope' in this workspace"
    assert caught.value.body["id"] == "batch_nope"
    for call in (client.get_progress, client.cancel_batch, client.list_calls):
        with pytest.raises(NotFound, match="batch_nope"):
            await call("batch_nope")

    batch_id = (await client.start_batch(contacts(1), "agent_demo"))["batchId"]
    with pytest.raises(NotFound) as caught:
        await client.get_call(batch_id, "call_nope_1")
    # the contract's other shape: {"status": "not_found", "error": "..."}
    assert caught.value.error == "not_found"
    assert caught.value.message == f"No call 'call_nope_1' in batch '{batch_id}'"


async def test_bad_key_raises_unauthorized(harness: Harness) -> None:
    async with client_for(harness, api_key="wrong") as client:
        with pytest.raises(Unauthorized, match="Invalid API key or workspace") as caught:
            await client.list_batches()
    assert caught.value.status_code == 401


async def test_refusals_raise_bad_request_with_the_servers_message(client: AsyncClient) -> None:
    bad = csv_bytes(["+12025550100,A,B,a@example.com", "12345,C,D,c@example.com"])
    with pytest.raises(BadRequest) as caught:
        await client.start_batch(bad, "agent_demo")
    assert caught.value.error == "Validation failed"
    assert [p["row"] for p in caught.value.body["problems"]] == [3]

    with pytest.raises(NotFound, match="No agent with id 'agent_nope'"):
        await client.start_batch(contacts(1), "agent_nope")

    batch_id = (await client.start_batch(contacts(3), "agent_demo"))["batchId"]
    past = await client.list_calls(batch_id, page=2)
    assert past["calls"] == [] and past["pagination"]["hasNext"] is False
    with pytest.raises(BadRequest, match="Unknown status filter"):
        await client.list_calls(batch_id, status="ringing")


async def test_an_upload_over_the_limit_raises_payload_too_large(
    make_settings: Callable[..., Settings],
) -> None:
    h = await start_harness(make_settings(max_upload_mb=0.01), dispatch=False)
    try:
        async with client_for(h) as client:
            with pytest.raises(PayloadTooLarge, match="limit") as caught:
                await client.start_batch(contacts(600), "agent_demo")
        assert caught.value.status_code == 413
    finally:
        await h.client.aclose()
        await h.runtime.stop()


# -- the blocking client over real HTTP ----------------------------------------------------


def test_blocking_client_end_to_end(server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(contacts(101))
    demo = server.demo
    with Client(server.url, demo.api_key, demo.workspace_id, timeout=10) as client:
        batch_id = client.start_batch(path, demo.agent_id)["batchId"]
        polls: list[BatchProgress] = []
        final = client.wait(batch_id, poll_interval=0.05, timeout=60, on_progress=polls.append)
        assert final["isComplete"] is True
        assert polls[-1] == final
        pages = list(client.iter_call_pages(batch_id))
        assert [len(p["calls"]) for p in pages] == [100, 1]
        calls = list(client.iter_calls(batch_id, status="completed", limit=7))
        assert len(calls) == final["completed"]
        assert client.get_call(batch_id, calls[0]["jobId"])["status"] == "completed"
        with_results = list(client.iter_calls(batch_id, status="completed", include_result=True))
        assert all(c["result"]["transcript"] and c["attempts"] >= 1 for c in with_results)
        exported = b"".join(client.iter_export(batch_id, format="jsonl"))
        assert len(exported.splitlines()) == 101
        with pytest.raises(BadRequest):
            next(client.iter_export(batch_id, format="xlsx"))
        assert client.get_batch(batch_id)["isComplete"] is True
        assert client.list_batches()["batches"][0]["id"] == batch_id
        assert demo.agent_id in [a["id"] for a in client.list_agents()]
        with pytest.raises(Conflict):
            client.cancel_batch(batch_id)
        with pytest.raises(NotFound):
            client.get_progress("batch_nope")

        scheduled = client.start_batch(contacts(2), demo.agent_id, in_an_hour())["batchId"]
        with pytest.raises(TimeoutError):
            client.wait(scheduled, poll_interval=0.02, timeout=0.1)
        assert client.cancel_batch(scheduled)["details"]["cancelledCalls"] == 2

    with Client(server.url, "wrong", demo.workspace_id) as client, pytest.raises(Unauthorized):
        client.list_agents()


def test_network_failures_are_httpx_errors() -> None:
    with (
        Client("http://127.0.0.1:9", "k", "w", timeout=2) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.list_batches()


# -- requests and responses, against a mock transport --------------------------------------


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> Client:
    return Client("http://mock", "key-1", "ws-1", transport=httpx.MockTransport(handler))


def test_requests_carry_credentials_escaped_ids_and_only_the_fields_given() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        sent.append(request)
        return httpx.Response(200, json={"batchId": "b", "totalCalls": 1})

    with mock_client(handler) as client:
        client.get_call("a/b", "c?d")
        client.start_batch(b"phone_number\n+12025550100\n", "agent_1")
        two_hours_east = timezone(timedelta(hours=2))
        client.start_batch(
            b"phone_number\n",
            "agent_1",
            scheduled_at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=two_hours_east),
            smart_callback={"enabled": False},
            default_country="GB",
            skip_invalid=True,
            dedupe=True,
        )
    first, plain, full = sent
    assert first.url.raw_path == b"/v1/api/batch-calls/a%2Fb/calls/c%3Fd"
    assert first.headers["x-api-key"] == "key-1"
    assert first.headers["x-workspace-id"] == "ws-1"
    assert first.headers["user-agent"].startswith("dialbatch-client/")

    def fields(request: httpx.Request) -> dict[str, str]:
        boundary = request.headers["content-type"].split("boundary=")[1].encode()
        out = {}
        for part in request.content.split(b"--" + boundary)[1:-1]:
            head, _, value = part.partition(b"\r\n\r\n")
            name = head.split(b'name="')[1].split(b'"')[0].decode()
            out[name] = value.removesuffix(b"\r\n").decode()
        return out

    assert fields(plain) == {"agentId": "agent_1", "file": "phone_number\n+12025550100\n"}
    assert fields(full) == {
        "agentId": "agent_1",
        "scheduledAt": "2030-01-02T01:04:05Z",
        "smartCallbackConfig": json.dumps({"enabled": False}),
        "defaultCountry": "GB",
        "skipInvalid": "true",
        "dedupe": "true",
        "file": "phone_number\n",
    }


@pytest.mark.parametrize(
    ("response", "kind", "error", "message"),
    [
        (httpx.Response(502, text="<html>upstream down</html>"), ServerError, "Bad Gateway", None),
        (
            httpx.Response(500, json={"error": "Internal error", "message": "it broke"}),
            ServerError,
            "Internal error",
            "it broke",
        ),
        (httpx.Response(418, json={"detail": "?"}), DialbatchError, "I'm a teapot", None),
        (httpx.Response(200, text="not json"), DialbatchError, "Invalid response", None),
    ],
)
def test_any_error_body_becomes_a_dialbatch_error(
    response: httpx.Response, kind: type[DialbatchError], error: str, message: str | None
) -> None:
    with mock_client(lambda _: response) as client, pytest.raises(kind) as caught:
        client.get_batch("b")
    assert type(caught.value) is kind
    assert caught.value.status_code == response.status_code
    assert caught.value.error == error
    if message is not None:
        assert str(caught.value) == message
    assert caught.value.message


async def test_a_refused_request_raises_rate_limited_with_when_to_retry(
    make_settings: Callable[..., Settings],
) -> None:
    h = await start_harness(make_settings(rate_limit_per_s=0.1, rate_limit_burst=2), dispatch=False)
    try:
        async with client_for(h) as client:
            await client.list_batches()
            await client.list_batches()
            with pytest.raises(RateLimited) as caught:
                await client.list_batches()
    finally:
        await h.client.aclose()
        await h.runtime.stop()
    exc = caught.value
    assert exc.status_code == 429 and exc.error == "rate_limit_exceeded"
    assert "API key" in exc.message
    assert exc.retry_after is not None and exc.retry_after >= 1
    assert exc.reset_at is not None and exc.reset_at.endswith("Z")
