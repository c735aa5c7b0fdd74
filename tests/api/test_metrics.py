"""`GET /metrics`: Prometheus's text format with this process's counters (calls started and
ended, dial latency, webhook delivery attempts, event-stream clients) and the store's gauges
read at scrape time (waiting and active calls, limiter saturation, webhook backlog); a
bearer token when DIALBATCH_METRICS_TOKEN is set."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dialbatch.settings import Settings
from dialbatch.store import outbox
from dialbatch.store import webhooks as webhook_store
from tests.api.conftest import (
    Harness,
    assert_error_shape,
    get_batch,
    get_call,
    list_all_calls,
    numbers,
    open_harness,
    people,
    start_batch,
    wait_for_batch,
)
from tests.client._server import live_server
from tests.conftest import start_harness
from tests.events._receiver import Receiver

WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(found: Samples, name: str) -> float:
    return sum(v for (n, _), v in found.items() if n == name)


async def scrape(
    h: Harness, **headers: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await h.client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return samples(r.text)


async def test_a_batch_shows_in_the_counters_and_the_gauges(harness: Harness) -> None:
    h = harness
    before = await scrape(h)
    r = await start_batch(h, people(numbers(6)))
    batch_id = r.json()["batchId"]
    await wait_for_batch(h, batch_id)
    after = await scrape(h)

    started = "dialbatch_calls_started_total"
    assert (
        after[(started, (("provider", "simulated"),))]
        - before.get((started, (("provider", "simulated"),)), 0)
        >= 6
    )
    ended = total(after, "dialbatch_calls_ended_total") - total(
        before, "dialbatch_calls_ended_total"
    )
    assert ended >= 6
    latency = "dialbatch_dial_latency_seconds_count"
    assert total(after, latency) - total(before, latency) >= 6
    ws = (("workspace", h.demo.workspace_id),)
    assert after[("dialbatch_calls_waiting", ws)] == 0
    assert after[("dialbatch_calls_active", ws)] == 0
    assert after[("dialbatch_calls_max_active", ws)] == 20
    assert after[("dialbatch_limiter_saturation_ratio", ws)] == 0
    assert ("dialbatch_sse_clients", ()) in after
    assert after[("dialbatch_webhook_backlog", ())] == 0  # no endpoint, nothing to send


async def test_waiting_calls_are_counted_per_workspace(api: Harness) -> None:
    h = api  # no dispatcher: the calls stay waiting
    await start_batch(h, people(numbers(4)))
    found = await scrape(h)
    assert found[("dialbatch_calls_waiting", (("workspace", h.demo.workspace_id),))] == 4


@pytest.fixture
async def guarded(make_settings: Callable[..., Settings]) -> AsyncIterator[Harness]:
    h = await start_harness(make_settings(metrics_token="s3cret-token"), dispatch=False)
    try:
        yield h
    finally:
        await h.client.aclose()
        await h.runtime.stop()


async def test_a_token_guards_metrics_when_set(guarded: Harness) -> None:
    h = guarded
    assert_error_shape(await h.client.get("/metrics"), 401)
    r = await h.client.get("/metrics", headers={"authorization": "Bearer wrong"})
    assert_error_shape(r, 401)
    r = await h.client.get("/metrics", headers={"authorization": "Bearer s3cret-token"})
    assert r.status_code == 200 and "dialbatch_calls_waiting" in r.text


async def test_the_grafana_dashboard_and_docs_name_only_real_metrics(api: Harness) -> None:
    import re
    from pathlib import Path

    r = await api.client.get("/metrics")
    # declared (HELP/TYPE) even before a labelled metric has its first sample
    exposed = set(re.findall(r"^# TYPE (dialbatch_\w+) ", r.text, re.M))
    docs = Path(__file__).parents[2] / "docs"
    for name in ("grafana-dashboard.json", "metrics.md"):
        named = {
            re.sub(r"_(bucket|count|sum)$", "", m)
            for m in re.findall(r"dialbatch_[a-z_]+[a-z]", (docs / name).read_text())
        }
        assert named and named <= exposed, (name, named - exposed)


WEBHOOKS = "/v1/api/webhooks"


async def test_the_webhook_backlog_counts_deliveries_not_yet_sent(
    make_settings: Callable[..., Settings],
) -> None:
    # No dispatcher, so no deliverer: what is fanned out stays pending.
    h = await start_harness(make_settings(webhooks_allow_private=True), dispatch=False)
    try:
        r = await h.client.post(
            WEBHOOKS,
            headers=h.headers,
            json={"url": "http://127.0.0.1:9/hooks", "events": ["batch.started"]},
        )
        assert r.status_code == 201, r.text
        async with h.runtime.db.write() as conn:
            for i in range(3):
                await outbox.emit(conn, h.demo.workspace_id, "batch.started", {"i": i})
            await outbox.emit(conn, h.demo.workspace_id, "call.started", {})  # not wanted
        async with h.runtime.db.write() as conn:
            assert await webhook_store.fan_out(conn, page=100) == 4
        found = await scrape(h)
        assert found[("dialbatch_webhook_backlog", ())] == 3
    finally:
        await h.client.aclose()
        await h.runtime.stop()


async def test_webhook_attempts_are_counted_by_result(
    make_settings: Callable[..., Settings],
) -> None:
    failing, working = Receiver(answer=lambda n: 500), Receiver()
    failing.start()
    working.start()
    settings = make_settings(
        webhooks_allow_private=True,
        webhook_retry_base_s=0.05,
        webhook_retry_max_s=0.1,
        webhook_retry_window_s=0.3,
        webhook_poll_s=0.05,
    )
    try:
        async with open_harness(settings) as h:
            before = await scrape(h)
            hooks = []
            for receiver in (failing, working):
                r = await h.client.post(
                    WEBHOOKS,
                    headers=h.headers,
                    json={"url": receiver.url, "events": ["batch.started"]},
                )
                assert r.status_code == 201, r.text
                hooks.append(r.json()["id"])
            await start_batch(h, people(numbers(2)))
            deadline = time.monotonic() + 30
            for hook, status in zip(hooks, ("dead", "delivered"), strict=True):
                while True:
                    r = await h.client.get(
                        f"{WEBHOOKS}/{hook}/deliveries",
                        headers=h.headers,
                        params={"status": status},
                    )
                    if r.json()["deliveries"]:
                        break
                    assert time.monotonic() < deadline, status
                    await asyncio.sleep(0.05)
            after = await scrape(h)
    finally:
        failing.stop()
        working.stop()

    def moved(result: str) -> float:
        key = ("dialbatch_webhook_deliveries_total", (("result", result),))
        return after.get(key, 0) - before.get(key, 0)

    assert moved("delivered") == len(working.delivered()) == 1
    assert moved("failed") >= 1 and moved("dead") == 1
    assert moved("failed") + moved("dead") == len(failing.snapshot())
    assert after[("dialbatch_webhook_backlog", ())] == 0


def test_event_stream_clients_are_counted_while_connected(
    make_settings: Callable[..., Settings],
) -> None:
    def clients(url: str) -> float:
        found = samples(httpx.get(url + "/metrics").text)
        return found[("dialbatch_sse_clients", ())]

    with live_server(make_settings(sse_heartbeat_s=0.2), dispatch=False) as server:
        headers = {"x-api-key": server.demo.api_key, "x-workspace-id": server.demo.workspace_id}
        before = clients(server.url)
        with (
            httpx.Client(base_url=server.url, timeout=10) as client,
            client.stream("GET", "/v1/api/events", headers=headers) as stream,
        ):
            assert stream.status_code == 200
            lines = stream.iter_lines()  # kept: a dropped iterator closes the response
            assert next(lines).startswith("id:")  # the snapshot: the stream is open
            assert clients(server.url) == before + 1
        deadline = time.monotonic() + 10
        while clients(server.url) != before:  # the server sees the disconnect
            assert time.monotonic() < deadline
            time.sleep(0.05)


async def test_a_gate_hold_is_counted_by_kind_and_rule(harness: Harness) -> None:
    h = harness
    hour = time.gmtime().tm_hour
    # Open one hour a day, starting two hours from now (UTC): closed now, for every call.
    start = f"{(hour + 2) % 24:02d}:00"
    end = f"{(hour + 3) % 24:02d}:00"
    window = {"timezone": "Etc/UTC", "days": {d: [[start, end]] for d in WEEK}}
    before = await scrape(h)
    r = await start_batch(h, people(numbers(3)), callingWindow=json.dumps(window))
    assert r.status_code == 200, r.text
    batch_id = r.json()["batchId"]
    key = (
        "dialbatch_gate_deferrals_total",
        (("kind", "outside_window"), ("rule", "batch.callingWindow")),
    )
    deadline = time.monotonic() + 20
    while True:
        after = await scrape(h)
        if after.get(key, 0) - before.get(key, 0) >= 3:
            break
        assert time.monotonic() < deadline, "the holds were not counted"
        await asyncio.sleep(0.05)
    body = await get_batch(h, batch_id)
    assert body["gate"] == {"waitingForWindow": 3, "waitingForCap": 0, "refused": {}}
    assert body["progress"]["waiting"] == 3
    waiting = await list_all_calls(h, batch_id, status="waiting")
    assert len(waiting) == 3  # still listed as waiting
    detail = await get_call(h, batch_id, waiting[0]["jobId"])
    decision = detail["gateDecision"]
    assert decision["kind"] == "outside_window"
    assert decision["rule"] == "batch.callingWindow"
    assert decision["zone"] == "Etc/UTC"
    assert decision["until"] > decision["at"]
    assert decision["until"] % 3_600_000 == 0  # the top of the hour the window opens at
