"""Prometheus metrics: every metric object of dialbatch, defined here once.

Two kinds, and why:

- **Counters and histograms of this process** (calls started and ended, dial latency,
  webhook delivery attempts, gate holds and refusals, SSE clients). Each process (`serve`, `serve
  --no-dispatch`, `worker`) counts what it did itself; Prometheus scrapes every process
  and `sum()` adds them up, which is how counters of several processes are meant to be
  read. (prometheus_client's multiprocess mode is for several processes behind one port,
  which dialbatch never runs; it is not used.) A `worker` has no API, so it serves these
  on `DIALBATCH_METRICS_PORT` when that is set.
- **Gauges that describe the shared state** (calls waiting and active per workspace,
  limiter saturation, the webhook backlog): read from the store at scrape time by
  `collect_store_gauges`, so any API process answers with the whole deployment's
  figures. They are the same on every API process: read them with `max()`, not `sum()`,
  when several are scraped.

Nothing here does I/O except `collect_store_gauges`, which reads through the store.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dialbatch.domain.outcomes import CallEvent
from dialbatch.store import gauges
from dialbatch.store.engine import Database
from dialbatch.store.outcomes import Applied

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# -- counted by this process -------------------------------------------------------------

CALLS_STARTED = Counter(
    "dialbatch_calls_started",
    "Dials this process placed with a provider (the provider accepted the request).",
    ["provider"],
)
CALLS_ENDED = Counter(
    "dialbatch_calls_ended",
    "Dial ends this process applied, by the provider's outcome (completed, busy, "
    "no-answer, voicemail, failed, canceled) and the call's state after it (completed, "
    "failed, or waiting for a retry).",
    ["provider", "outcome", "state"],
)
DIAL_LATENCY = Histogram(
    "dialbatch_dial_latency_seconds",
    "From the intent to dial being durable to the provider's answer to the dial request "
    "(its call id), per provider.",
    ["provider"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
WEBHOOK_DELIVERIES = Counter(
    "dialbatch_webhook_deliveries",
    "Webhook delivery attempts this process made, by result: delivered (a 2xx), failed "
    "(retried later) or dead (the retry window ran out: kept as a dead letter).",
    ["result"],
)
SSE_CLIENTS = Gauge(
    "dialbatch_sse_clients",
    "Server-Sent Events clients connected to this process.",
)
GATE_DEFERRALS = Counter(
    "dialbatch_gate_deferrals",
    "Calls the pre-dial gate held back (kind outside_window or capped: the call waits) or "
    "refused (suppressed, no_zone, no_consent, undecidable: the call ends failed), by kind "
    "and the rule that decided (empty when no named rule did, e.g. a suppression).",
    ["kind", "rule"],
)


def count_gate_hold(kind: str, rule: str | None) -> None:
    """One hold or refusal the gate wrote (store/gating.OnHold)."""
    GATE_DEFERRALS.labels(kind=kind, rule=rule or "").inc()


def count_outcomes(events: Sequence[CallEvent], applied: Sequence[Applied]) -> None:
    """Count the dial ends that changed a call (duplicates and late events do not)."""
    for event, result in zip(events, applied, strict=True):
        if result.changed:
            CALLS_ENDED.labels(
                provider=result.provider or "unknown",
                outcome=event.outcome.value,
                state=result.status.value if result.status else "unknown",
            ).inc()


# -- read from the store at scrape time ---------------------------------------------------


class _Snapshot(Collector):
    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self._families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self._families


async def collect_store_gauges(db: Database) -> bytes:
    """The shared state's gauges, read now, in the exposition format."""
    async with db.read() as conn:
        rows = await gauges.workspace_gauges(conn)
        backlog_n = await gauges.webhook_backlog(conn)
    waiting = GaugeMetricFamily(
        "dialbatch_calls_waiting",
        "Calls of running batches waiting to be dialed, per workspace.",
        labels=["workspace"],
    )
    active = GaugeMetricFamily(
        "dialbatch_calls_active",
        "Calls holding one of the workspace's concurrency slots (claimed, dialing, or "
        "being reconciled), per workspace.",
        labels=["workspace"],
    )
    max_active = GaugeMetricFamily(
        "dialbatch_calls_max_active",
        "The workspace's concurrency limit.",
        labels=["workspace"],
    )
    saturation = GaugeMetricFamily(
        "dialbatch_limiter_saturation_ratio",
        "active / max_active per workspace: 1 means every slot is taken and calls queue.",
        labels=["workspace"],
    )
    rate = GaugeMetricFamily(
        "dialbatch_calls_per_second_limit",
        "The workspace's dialing rate limit.",
        labels=["workspace"],
    )
    backlog = GaugeMetricFamily(
        "dialbatch_webhook_backlog",
        "Webhook deliveries not yet delivered: waiting to be sent, in flight, or waiting "
        "for a retry (dead letters are not counted).",
        value=backlog_n,
    )
    for row in rows:
        label = [row.workspace_id]
        waiting.add_metric(label, row.waiting)
        active.add_metric(label, row.active)
        max_active.add_metric(label, row.max_active)
        saturation.add_metric(label, row.active / row.max_active if row.max_active else 0.0)
        rate.add_metric(label, row.calls_per_second)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot([waiting, active, max_active, saturation, rate, backlog]))
    return generate_latest(registry)


async def exposition(db: Database) -> bytes:
    """Everything /metrics shows: this process's metrics, then the store's gauges."""
    return generate_latest(REGISTRY) + await collect_store_gauges(db)
