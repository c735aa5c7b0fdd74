"""Caller-number pools across processes (issue 11's acceptance, at the suite's size): the
API, 3 `dialbatch worker` processes and the carrier process on PostgreSQL. What each dial
showed, and when it reached the carrier, is read from the carrier's ledger, not from the
engine's tables: every number of the pool is used, no number starts two dials within a
second, a retry shows its person's first number, a 212 recipient sees the pool's 212
number; all this with each dial's request taking 0-600 ms to reach the carrier.
bench/caller_pool.py runs the acceptance's full 300 calls the same way."""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import _backends
from tests.test_gate_workers import (
    QUICK,
    complete,
    ledger,
    options,
    running_cluster,
    upload,
    wait_until,
)

pytestmark = pytest.mark.skipif(
    "postgresql" not in _backends.selected_backends(), reason="PostgreSQL is not reachable"
)

NY, LA, DC = "+12125550100", "+13105550100", "+12025550100"
ONE_PER_SECOND = {n: {"callsPerSecond": 1} for n in (NY, LA, DC)}


def pool_agent(client: httpx.Client) -> dict[str, Any]:
    r = client.post(
        "/v1/api/agents",
        json={
            "name": "pool",
            "provider": "carrier",
            "fromNumbers": [NY, LA, DC],
            "callerNumberLimits": ONE_PER_SECOND,
            # An uneven path to the carrier (each dial's request waits 0-600 ms before the
            # carrier records it): a limit kept at the intent alone would let two starts of
            # one number reach the carrier closer than a second.
            "providerConfig": {
                **QUICK,
                "outcomes": {"busy": 0.3, "completed": 0.7},
                "placeDelayMs": 600,
            },
        },
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def recipients(n: int) -> list[str]:
    """A fifth in New York's 212, the rest in San Francisco's 415 (no local number)."""
    return [f"+1212555{i:04d}" if i % 5 == 0 else f"+1415555{i:04d}" for i in range(n)]


def check(dials: list[dict[str, Any]], phones: list[str]) -> dict[str, Any]:
    """The acceptance's checks on the carrier's ledger; returns figures for a report."""
    mine = [d for d in dials if d["to"] in set(phones)]
    by_number: dict[str, list[int]] = defaultdict(list)
    by_person: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for d in mine:
        by_number[d["from"]].append(d["received_at"])
        by_person[d["to"]].append((d["received_at"], d["from"]))
    assert set(by_number) == {NY, LA, DC}, set(by_number)  # all 3 numbers used
    closest = {}
    for number, at in by_number.items():
        at.sort()
        gaps = [b - a for a, b in itertools.pairwise(at)]
        closest[number] = min(gaps)
        assert min(gaps) >= 1000, (number, sorted(gaps)[:5])  # never 2 starts in a second
    retried = 0
    for person, shown in by_person.items():
        shown.sort()
        assert {f for _, f in shown} == {shown[0][1]}, (person, shown)  # retries keep it
        retried += len(shown) > 1
        if person.startswith("+1212"):
            assert shown[0][1] == NY, (person, shown)  # local presence
    assert retried > 0  # the outcomes mix has busy lines: some people were called twice
    return {"dials": len(mine), "closest_ms": closest, "retried": retried}


def test_three_workers_share_the_pool_within_each_numbers_limit(tmp_path: Path) -> None:
    phones = recipients(45)
    retry = {"enabled": True, "maxAttempts": 2, "gaps": [{"hours": 0.0005}]}  # 1.8 s
    with running_cluster(tmp_path, options(cap=10)) as (cluster, client):
        agent = pool_agent(client)
        warned = client.get(f"/v1/api/agents/{agent['id']}").json()["warnings"]
        assert warned and "cap of 10" in warned[0]  # 3 numbers for 10 concurrent calls
        batch_id = upload(client, agent["id"], phones, policy=retry)
        wait_until("the batch to complete", lambda: complete(client, batch_id), timeout_s=240)
        dials = ledger(cluster)
    figures = check(dials, phones)
    assert figures["dials"] >= len(phones)
