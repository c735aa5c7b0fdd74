"""A batch caught mid-run, with waiting, active, completed and failed calls at once: progress,
listing filters and pages, call details and the documented examples, read as a client reads them.

The batch is built once for the module (these tests only read it), in the module's event loop."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from dialbatch.settings import Settings
from tests.api.conftest import (
    BASE,
    BATCH_STATUSES,
    CALL_STATUSES,
    PROGRESS_KEYS,
    Frozen,
    assert_ms_near_now,
    assert_seconds,
    check_counts,
    check_recent_call,
    frozen_batch,
    get_batch,
    get_call,
    list_all_calls,
    missing_keys,
    not_applicable,
    row_metadata,
    spec_examples,
    status_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def frozen(
    template_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Frozen]:
    directory = tmp_path_factory.mktemp("running")

    def settings_for(db: Path) -> Settings:
        # tests/conftest.py's make_settings (function-scoped) with three concurrent calls.
        return Settings(
            database_url=f"sqlite:///{db}",
            data_dir=directory,
            simulated_time_scale=0.002,
            demo_max_concurrent_calls=3,
            demo_calls_per_second=200,
            poll_interval_s=0.02,
            retry_backoff_ms=10,
            demo_api_key="test-key-demo-0001",
        )

    async with frozen_batch(settings_for, directory, template_db) as found:
        yield found


async def test_processing_batch_counts_and_statuses(frozen: Frozen) -> None:
    h, batch_id = frozen.h, frozen.batch_id
    body = await get_batch(h, batch_id)
    assert body["status"] == "processing"
    assert body["isComplete"] is False
    p = body["progress"]
    check_counts(p, 40)
    assert p["active"] == 3
    assert p["waiting"] >= 3 and p["completed"] >= 1 and p["failed"] >= 1
    assert_ms_near_now(p["startTime"])
    assert_ms_near_now(p["lastCompletedTime"])
    assert p["completedTime"] is None
    assert_seconds(p["averageCallDuration"], low=1)
    assert 1 <= len(p["recent_calls"]) <= p["completed"] + p["failed"]
    for item in p["recent_calls"]:
        check_recent_call(item)
    ended = [c.get("completedAt") or c.get("failedAt") for c in p["recent_calls"]]
    assert ended == sorted(ended, reverse=True), "recent_calls are not newest first"

    flat = await status_of(h, batch_id)
    for key in PROGRESS_KEYS:
        assert flat[key] == p[key], key

    calls = await list_all_calls(h, batch_id)
    assert [c["phone_number"] for c in calls] == frozen.phones
    assert {c["status"] for c in calls} <= CALL_STATUSES
    for i, call in enumerate(calls):
        assert call["metadata"] == row_metadata(i)
        if call["status"] == "waiting":
            assert not_applicable(call, "startTime", "endTime", "duration", "error")
        if call["status"] == "active":
            assert_ms_near_now(call["startTime"])
            assert not_applicable(call, "endTime", "duration", "error")
        if call["status"] == "completed":
            assert_seconds(call["duration"], low=0.1)
        if call["status"] == "failed":
            assert call["error"]


async def test_fields_that_do_not_apply_are_omitted(frozen: Frozen) -> None:
    """As in the contract's examples, a call object carries only the fields that apply: a
    client tests `"failedAt" in item` or `"error" in call`, not their values."""
    h, batch_id = frozen.h, frozen.batch_id
    items = list((await get_batch(h, batch_id))["progress"]["recent_calls"])
    items += (await status_of(h, batch_id))["recent_calls"]
    items += await list_all_calls(h, batch_id)
    nulls = sorted({(i["status"], k) for i in items for k, v in i.items() if v is None})
    assert nulls == []


async def test_filters_pages_and_summary_agree(frozen: Frozen) -> None:
    h, batch_id = frozen.h, frozen.batch_id
    everything = await list_all_calls(h, batch_id)
    limit = 7
    seen: dict[str, str] = {}
    for wanted in ("all", "waiting", "active", "completed", "failed", "cancelled"):
        collected: list[dict[str, Any]] = []
        page = 1
        summary: dict[str, Any] = {}
        while True:
            r = await h.client.get(
                f"{BASE}/{batch_id}/calls",
                headers=h.headers,
                params={"status": wanted, "page": page, "limit": limit},
            )
            assert r.status_code == 200, (wanted, page, r.text)
            body = r.json()
            pg, summary = body["pagination"], body["summary"]
            expected_total = summary["total"] if wanted == "all" else summary.get(wanted, 0)
            assert pg["total"] == expected_total, (wanted, pg, summary)
            assert pg["page"] == page and pg["limit"] == limit
            assert pg["totalPages"] == math.ceil(pg["total"] / limit) or (
                pg["total"] == 0 and pg["totalPages"] in (0, 1)
            )
            assert pg["hasPrev"] is (page > 1)
            assert pg["hasNext"] is (page < pg["totalPages"])
            remaining = pg["total"] - (page - 1) * limit
            assert len(body["calls"]) == min(limit, remaining), (wanted, page)
            check_counts(summary, 40)
            collected.extend(body["calls"])
            if not pg["hasNext"]:
                break
            page += 1
        assert len(collected) == (40 if wanted == "all" else summary.get(wanted, 0))
        if wanted != "all":
            assert {c["status"] for c in collected} <= {wanted}, wanted
            for c in collected:
                seen[c["jobId"]] = wanted
        # Filtered or not, the listing keeps CSV order.
        order = [frozen.phones.index(c["phone_number"]) for c in collected]
        assert order == sorted(order), wanted
    # Every call is in exactly one status filter.
    assert set(seen) == {c["jobId"] for c in everything}
    assert len({c["jobId"] for c in everything}) == 40


async def test_active_call_detail(frozen: Frozen) -> None:
    h, batch_id = frozen.h, frozen.batch_id
    active = await list_all_calls(h, batch_id, status="active")
    assert len(active) == 3
    for call in active:
        detail = await get_call(h, batch_id, call["jobId"])
        assert detail["status"] == "active"
        assert detail["phone_number"] == call["phone_number"]
        assert_ms_near_now(detail["startTime"])
        for absent in ("endTime", "duration", "error", "result"):
            assert absent not in detail, absent
    waiting = (await list_all_calls(h, batch_id, status="waiting"))[0]
    detail = await get_call(h, batch_id, waiting["jobId"])
    assert detail["status"] == "waiting"
    for absent in ("startTime", "endTime", "duration", "error", "result"):
        assert absent not in detail, absent


async def test_spec_example_keys_for_a_processing_batch_and_active_call(frozen: Frozen) -> None:
    h, batch_id = frozen.h, frozen.batch_id
    ours = {
        "get-batch.md": await get_batch(h, batch_id),
        "get-batch-progress.txt": await status_of(h, batch_id),
    }
    active = (await list_all_calls(h, batch_id, status="active"))[0]
    detail = await get_call(h, batch_id, active["jobId"])
    problems = []
    for name, body in ours.items():
        for example in spec_examples(name):
            problems += [f"{name}: {k}" for k in missing_keys(example, body)]
    for example in spec_examples("get-call.md"):
        if example["status"] == "active":
            problems += [f"get-call.md: {k}" for k in missing_keys(example, detail)]
    assert not problems, problems


async def test_statuses_are_the_contract_words(frozen: Frozen) -> None:
    h, batch_id = frozen.h, frozen.batch_id
    body = await get_batch(h, batch_id)
    assert body["status"] in BATCH_STATUSES
    calls = await list_all_calls(h, batch_id)
    assert {c["status"] for c in calls} == {"waiting", "active", "completed", "failed"}
    for item in body["progress"]["recent_calls"]:
        assert item["status"] in CALL_STATUSES
