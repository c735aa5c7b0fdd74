"""A batch's own maxConcurrency and priority across 3 workers on PostgreSQL, proven from the
carrier's record of the calls it held (bench/chaos.py's cluster: an API process, 3 workers
and the carrier process).

- A batch with maxConcurrency 3 in a workspace whose cap is 10 never has more than 3 calls
  live at once at the carrier, while a second batch uses the rest of the cap.
- With two batches queued and the cap the bottleneck, every call of the higher priority
  starts before any call of the lower.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import _backends
from tests.test_campaign_workers import consistent, ledger, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import chaos

pytestmark = pytest.mark.skipif(
    "postgresql" not in _backends.selected_backends(), reason="PostgreSQL is not reachable"
)

CAP = 10


def _options(calls: int) -> chaos.Options:
    opts = chaos.Options(calls=calls, workers=3, cap=CAP, rate=100, kills=False, timeout_s=240)
    opts.policy = {"enabled": False, "maxAttempts": 1, "gaps": []}
    opts.agent_config = {
        "outcomes": {"completed": 1},
        "ringSeconds": [1, 4],
        "meanTalkSeconds": 10,
        "ringTimeoutSeconds": 8,
    }
    opts.time_scale = 0.08  # calls of about a second
    opts.drop_rate = opts.duplicate_rate = 0.0
    return opts


def _create(client: httpx.Client, numbers: list[str], **fields: str) -> str:
    csv = ("phone_number\n" + "\n".join(numbers) + "\n").encode()
    r = client.post(
        "/v1/api/batch-calls",
        files={"file": ("calls.csv", csv, "text/csv")},
        data={
            "agentId": chaos.AGENT,
            "smartCallbackConfig": json.dumps({"enabled": False}),
            **fields,
        },
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["batchId"])


def _of(batch_id: str, dials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    prefix = f"call_{batch_id.removeprefix('batch_')}_"
    return [d for d in dials if d["job_id"].startswith(prefix)]


def most_live(dials: list[dict[str, Any]]) -> int:
    """The most calls live at one instant, from the carrier's [received_at, ended_at)
    intervals; at equal times an end comes before a start."""
    events = sorted(
        [(d["received_at"], 1) for d in dials] + [(d["ended_at"], -1) for d in dials],
        key=lambda e: (e[0], e[1]),
    )
    live = most = 0
    for _, step in events:
        live += step
        most = max(most, live)
    return most


def _run(tmp_path: Path, opts: chaos.Options, body: Any) -> Any:
    with chaos.scratch_database(_backends.ADMIN_URL) as url:
        api_key = chaos.prepare(url, opts)
        cluster = chaos.Cluster(opts, url, tmp_path)
        try:
            cluster.start()
            headers = {"x-api-key": api_key, "x-workspace-id": chaos.WORKSPACE}
            with httpx.Client(base_url=cluster.api_url, headers=headers, timeout=30) as client:
                return body(client, cluster, url)
        finally:
            cluster.close()


@pytest.mark.timeout(600)
def test_a_batch_cap_of_3_holds_across_three_workers_while_another_batch_uses_the_rest(
    tmp_path: Path,
) -> None:
    numbers = chaos.phone_numbers(200)

    def body(client: httpx.Client, cluster: chaos.Cluster, url: str) -> tuple[Any, ...]:
        capped = _create(client, numbers[:60], maxConcurrency="3")
        other = _create(client, numbers[60:])
        done = lambda b: client.get(f"/v1/api/batch-calls/{b}/status").json()["isComplete"]  # noqa: E731
        wait_until(lambda: done(capped) and done(other), 240, "both batches to end")
        assert client.get(f"/v1/api/batch-calls/{capped}").json()["maxConcurrency"] == 3
        dials = ledger(cluster)
        return capped, other, dials, consistent(url, capped), consistent(url, other)

    capped, other, dials, final_capped, final_other = _run(tmp_path, _options(200), body)
    mine, theirs = _of(capped, dials), _of(other, dials)
    assert final_capped == {"completed": 60} and final_other == {"completed": 140}
    assert len(mine) == 60 and len(theirs) == 140  # each number dialed once
    assert all(d["ended_at"] is not None for d in dials)
    # While the capped batch ran, the other one used the rest of the workspace's cap.
    mine_end = max(d["ended_at"] for d in mine)
    theirs_meanwhile = [d for d in theirs if d["received_at"] < mine_end]
    print(
        f"\nmaxConcurrency 3 across 3 workers: capped batch at most {most_live(mine)} live; "
        f"the other batch at most {most_live(theirs_meanwhile)} live meanwhile; "
        f"the workspace at most {most_live(dials)} (cap {CAP})"
    )
    assert most_live(mine) == 3  # used, never exceeded
    assert most_live(dials) <= CAP
    assert most_live(theirs_meanwhile) >= CAP - 3 - 1


@pytest.mark.timeout(600)
def test_the_higher_priority_batch_is_dialed_first_when_the_cap_is_the_bottleneck(
    tmp_path: Path,
) -> None:
    numbers = chaos.phone_numbers(160)

    def body(client: httpx.Client, cluster: chaos.Cluster, url: str) -> tuple[Any, ...]:
        # Both queued before any may dial: the workspace is paused while they are created,
        # the lower priority first (the fair share alone would serve it first).
        assert client.post("/v1/api/workspace/pause").status_code == 200
        low = _create(client, numbers[:80], priority="-1")
        high = _create(client, numbers[80:], priority="5")
        time.sleep(0.5)
        assert client.post("/v1/api/workspace/resume").status_code == 200
        done = lambda b: client.get(f"/v1/api/batch-calls/{b}/status").json()["isComplete"]  # noqa: E731
        wait_until(lambda: done(low) and done(high), 240, "both batches to end")
        return low, high, ledger(cluster), consistent(url, low), consistent(url, high)

    low, high, dials, final_low, final_high = _run(tmp_path, _options(160), body)
    assert final_low == final_high == {"completed": 80}
    lows, highs = _of(low, dials), _of(high, dials)
    assert len(lows) == len(highs) == 80
    last_high = max(d["received_at"] for d in highs)
    first_low = min(d["received_at"] for d in lows)
    print(
        f"\npriority across 3 workers: the last high-priority dial reached the carrier "
        f"{first_low - last_high} ms before the first low-priority one"
    )
    assert last_high < first_low
