"""Pause and Idempotency-Key across processes on PostgreSQL, as deployed: API processes
(no dispatcher), 3 workers and the carrier process (bench/chaos.py's cluster).

- Pausing a batch, then the workspace, stops new dials within one dispatcher tick: the
  carrier's record holds no dial received later than the pause's commit (`pausedAt`, the
  database's clock) plus one poll interval; resuming lets the batch finish; counters equal
  COUNT(*) by status while running, while paused and at the end.
- Concurrent creations with one Idempotency-Key sent to two API processes make one batch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests import _backends

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import chaos

pytestmark = pytest.mark.skipif(
    "postgresql" not in _backends.selected_backends(), reason="PostgreSQL is not reachable"
)

TICK_MS = 100  # DIALBATCH_POLL_INTERVAL_S of chaos.Cluster


async def _counts(url: str, batch_id: str) -> tuple[dict[str, int], dict[str, int]]:
    conn = await asyncpg.connect(url)
    try:
        # One snapshot for both reads, so that they agree even while calls move.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            real = await conn.fetch(
                "SELECT status, COUNT(*) AS n FROM calls WHERE batch_id = $1 GROUP BY status",
                batch_id,
            )
            kept = await conn.fetch(
                "SELECT status, SUM(n) AS n FROM batch_counters WHERE batch_id = $1"
                " GROUP BY status",
                batch_id,
            )
    finally:
        await conn.close()
    return (
        {r["status"]: int(r["n"]) for r in real},
        {r["status"]: int(r["n"]) for r in kept if r["n"]},
    )


def consistent(url: str, batch_id: str) -> dict[str, int]:
    """Counters equal COUNT(*) by status, both read in one snapshot."""
    real, kept = asyncio.run(_counts(url, batch_id))
    assert kept == real
    return real


def ledger(cluster: chaos.Cluster) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = httpx.get(f"{cluster.carrier_url}/ledger", timeout=30).json()
    return rows


def wait_until(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


async def _intents_after(url: str, batch_id: str, after_ms: int) -> int:
    conn = await asyncpg.connect(url)
    try:
        n = await conn.fetchval(
            "SELECT COUNT(*) FROM attempts a JOIN calls c ON c.id = a.call_id"
            " WHERE c.batch_id = $1 AND a.started_at > $2",
            batch_id,
            after_ms,
        )
        return int(n)
    finally:
        await conn.close()


def pause_and_check(
    client: httpx.Client, cluster: chaos.Cluster, url: str, batch_id: str, path: str
) -> tuple[int, int, int]:
    """Pause (POST `path`); then: no intent written (the engine's `started_at`, database
    clock) later than `pausedAt` + one tick, and no dial received by the carrier later than
    the pause's answer (the commit precedes it) + one tick; the live calls end and then
    nothing moves. Returns (dials so far, the latest dial's lag after the pause's answer
    and after pausedAt, in ms)."""
    paused = client.post(path)
    answered_at = time.time_ns() // 1_000_000
    assert paused.status_code == 200, paused.text
    paused_at = paused.json()["pausedAt"]
    status = lambda: client.get(f"/v1/api/batch-calls/{batch_id}/status").json()  # noqa: E731
    wait_until(lambda: status()["active"] == 0, 60, "the live calls to end")
    time.sleep(1.0)  # ten ticks more: still nothing may start
    assert asyncio.run(_intents_after(url, batch_id, paused_at + TICK_MS)) == 0
    dials = ledger(cluster)
    late = [d for d in dials if d["received_at"] > answered_at + TICK_MS]
    assert late == [], f"{len(late)} dials started after the pause: {late[:3]}"
    latest = max(d["received_at"] for d in dials)
    now = status()
    assert now["status"] == "paused" and now["isComplete"] is False
    assert now["waiting"] > 0
    consistent(url, batch_id)
    return len(dials), latest - answered_at, latest - paused_at


@pytest.mark.timeout(600)
def test_pause_stops_new_dials_within_a_tick_across_three_workers(tmp_path: Path) -> None:
    opts = chaos.Options(calls=400, workers=3, cap=20, rate=100, kills=False, timeout_s=240)
    opts.policy = {"enabled": False, "maxAttempts": 1, "gaps": []}
    opts.agent_config = {
        "outcomes": {"completed": 1},
        "ringSeconds": [1, 4],
        "meanTalkSeconds": 10,
        "ringTimeoutSeconds": 8,
    }
    opts.drop_rate = opts.duplicate_rate = 0.0
    with chaos.scratch_database(_backends.ADMIN_URL) as url:
        api_key = chaos.prepare(url, opts)
        cluster = chaos.Cluster(opts, url, tmp_path)
        try:
            cluster.start()
            headers = {"x-api-key": api_key, "x-workspace-id": chaos.WORKSPACE}
            with httpx.Client(base_url=cluster.api_url, headers=headers, timeout=30) as client:
                batch_id = chaos.upload(client, opts)
                base = f"/v1/api/batch-calls/{batch_id}"
                wait_until(lambda: len(ledger(cluster)) >= 80, 120, "80 dials")
                assert client.get(f"{base}/status").json()["status"] == "processing"
                consistent(url, batch_id)

                dials_1, lag_1, db_lag_1 = pause_and_check(
                    client, cluster, url, batch_id, f"{base}/pause"
                )
                assert client.post(f"{base}/resume").json()["status"] == "processing"
                wait_until(lambda: len(ledger(cluster)) >= dials_1 + 80, 120, "dials again")
                consistent(url, batch_id)
                dials_2, lag_2, db_lag_2 = pause_and_check(
                    client, cluster, url, batch_id, "/v1/api/workspace/pause"
                )
                client.post("/v1/api/workspace/resume")
                wait_until(
                    lambda: client.get(f"{base}/status").json()["isComplete"], 180, "the end"
                )
                final = consistent(url, batch_id)
        finally:
            cluster.close()
    print(
        f"\npause across 3 workers: {dials_1} dials before the batch pause, the latest "
        f"received {lag_1} ms after the pause answered ({db_lag_1} ms after pausedAt); "
        f"{dials_2} before the workspace pause, the latest {lag_2} ms after it answered "
        f"({db_lag_2} ms after pausedAt); final {final}"
    )
    assert final == {"completed": opts.calls}
    assert dials_2 < opts.calls  # the workspace pause did hold dials back


@pytest.mark.timeout(600)
def test_one_idempotency_key_sent_to_two_api_processes_makes_one_batch(tmp_path: Path) -> None:
    opts = chaos.Options(calls=0, workers=0, kills=False)
    with chaos.scratch_database(_backends.ADMIN_URL) as url:
        api_key = chaos.prepare(url, opts)
        cluster = chaos.Cluster(opts, url, tmp_path)
        second_port = chaos.free_port()
        second = chaos.Proc(
            "api2",
            chaos.dialbatch_cmd("serve", "--no-dispatch", "--port", str(second_port)),
            {**cluster.api.env, "DIALBATCH_PORT": str(second_port)},
            tmp_path,
        )
        try:
            cluster.start()
            second.start()
            second_url = f"http://{chaos.HOST}:{second_port}"
            chaos.wait_http(f"{second_url}/readyz", second)
            rows = "\n".join(f"{p},Caller{i}" for i, p in enumerate(chaos.phone_numbers(20_000)))
            csv = f"phone_number,first_name\n{rows}\n".encode()
            headers = {
                "x-api-key": api_key,
                "x-workspace-id": chaos.WORKSPACE,
                "Idempotency-Key": "two-processes-1",
            }

            def send(base_url: str) -> httpx.Response:
                return httpx.post(
                    f"{base_url}/v1/api/batch-calls",
                    headers=headers,
                    files={"file": ("calls.csv", csv, "text/csv")},
                    data={"agentId": chaos.AGENT},
                    timeout=120,
                )

            targets = [cluster.api_url, second_url] * 2
            with concurrent.futures.ThreadPoolExecutor(len(targets)) as pool:
                answers = list(pool.map(send, targets))
            count = asyncio.run(_batch_count(url))
        finally:
            second.stop()
            cluster.close()
    assert [r.status_code for r in answers] == [200] * len(targets), [r.text for r in answers]
    assert len({r.json()["batchId"] for r in answers}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in answers) == 3
    assert count == 1


async def _batch_count(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT COUNT(*) FROM batches"))
    finally:
        await conn.close()
