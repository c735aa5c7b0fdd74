"""`GET /metrics`: Prometheus's text format with this process's counters (calls started and
ended, dial latency) and the store's gauges read at scrape time (waiting and active calls,
limiter saturation); a bearer token when DIALBATCH_METRICS_TOKEN is set."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dialbatch.settings import Settings
from tests.api.conftest import (
    Harness,
    assert_error_shape,
    numbers,
    people,
    start_batch,
    wait_for_batch,
)
from tests.conftest import start_harness

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
    # defined for the other parts of issue 12, present at zero
    assert ("dialbatch_sse_clients", ()) in after
    assert ("dialbatch_webhook_backlog", ()) in after


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
