"""Helpers shared by the API tests: starting batches as a client would, waiting for the
dispatcher, checking the contract's error shape and units, reading the spec's examples, and a
batch frozen mid-run (waiting, active, completed and failed calls at once)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dialbatch.settings import Settings
from tests.conftest import Harness, csv_bytes, numbers, start_harness

BASE = "/v1/api/batch-calls"
LEGACY_BASE = "/v1/batch-calls"
SPEC_DIR = Path(__file__).parents[2].parent / "shared" / "spec"

CALL_STATUSES = {"waiting", "active", "completed", "failed", "cancelled"}
BATCH_STATUSES = {"queued", "processing", "completed", "cancelled", "failed"}
MISSING_BATCH = "batch_00000000deadbeef"

__all__ = [
    "BASE",
    "BATCH_STATUSES",
    "CALL_STATUSES",
    "COUNT_KEYS",
    "LEGACY_BASE",
    "MISSING_BATCH",
    "PROGRESS_KEYS",
    "SPEC_DIR",
    "STUCK_AFTER_S",
    "STUCK_AGENT",
    "Frozen",
    "Harness",
    "as_a_client_sees_it",
    "assert_error_shape",
    "assert_ms_near_now",
    "assert_seconds",
    "batch_count",
    "check_counts",
    "check_recent_call",
    "create_agent",
    "csv_bytes",
    "freeze",
    "frozen_batch",
    "get_batch",
    "get_call",
    "list_all_calls",
    "missing_keys",
    "not_applicable",
    "numbers",
    "open_harness",
    "people",
    "row_metadata",
    "spec_examples",
    "start_batch",
    "start_harness",
    "status_of",
    "wait_for_batch",
]


async def start_batch(
    h: Harness,
    rows: list[str] | None = None,
    *,
    content: bytes | None = None,
    agent_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    filename: str = "contacts.csv",
    **fields: str,
) -> httpx.Response:
    """POST a CSV as multipart/form-data, the way the contract's clients do."""
    if content is None:
        content = csv_bytes(rows if rows is not None else numbers(3))
    data = {"agentId": agent_id if agent_id is not None else h.demo.agent_id, **fields}
    return await h.client.post(
        BASE,
        headers=dict(headers or h.headers),
        files={"file": (filename, content, "text/csv")},
        data=data,
    )


async def create_agent(
    h: Harness, outcomes: dict[str, float], headers: Mapping[str, str] | None = None, **config: Any
) -> str:
    """An agent on the simulated provider with a fixed outcome distribution."""
    r = await h.client.post(
        "/v1/api/agents",
        headers=dict(headers or h.headers),
        json={"name": "test agent", "providerConfig": {"outcomes": outcomes, **config}},
    )
    assert r.status_code == 201, r.text
    agent_id: str = r.json()["id"]
    return agent_id


async def get_batch(h: Harness, batch_id: str) -> dict[str, Any]:
    r = await h.client.get(f"{BASE}/{batch_id}", headers=h.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def wait_for_batch(
    h: Harness,
    batch_id: str,
    predicate: Callable[[dict[str, Any]], bool] = lambda b: bool(b["isComplete"]),
    timeout: float = 15.0,
) -> dict[str, Any]:
    """Poll GET batch until `predicate` holds (default: the batch is complete)."""
    deadline = time.monotonic() + timeout
    while True:
        body = await get_batch(h, batch_id)
        if predicate(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"batch never reached the expected state: {body}")
        await asyncio.sleep(0.02)


async def list_all_calls(
    h: Harness, batch_id: str, status: str = "all", limit: int = 100
) -> list[dict[str, Any]]:
    """Every call of the batch matching `status`, page by page."""
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        r = await h.client.get(
            f"{BASE}/{batch_id}/calls",
            headers=h.headers,
            params={"status": status, "page": page, "limit": limit},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        out.extend(body["calls"])
        if not body["pagination"]["hasNext"]:
            return out
        page += 1


async def batch_count(h: Harness, headers: Mapping[str, str] | None = None) -> int:
    """How many batches the workspace holds (GET /v1/api/batch-calls)."""
    r = await h.client.get(BASE, headers=dict(headers or h.headers))
    assert r.status_code == 200, r.text
    total: int = r.json()["pagination"]["total"]
    return total


def assert_error_shape(r: httpx.Response, status: int | tuple[int, ...]) -> dict[str, Any]:
    """The contract's error body: `{"error": str, "message": str}` and the expected status."""
    expected = (status,) if isinstance(status, int) else status
    assert r.status_code in expected, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body: dict[str, Any] = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert "Traceback" not in r.text
    return body


def assert_ms_near_now(value: Any, *, slack_s: float = 30.0) -> None:
    """An integer count of milliseconds since the epoch, close to now (not seconds, not ISO)."""
    assert type(value) is int, f"timestamp {value!r} is not an integer"
    now = time.time() * 1000
    assert now - slack_s * 1000 <= value <= now + 5000, f"{value} is not ms near {now:.0f}"


def assert_seconds(value: Any, *, low: float = 0.0, high: float = 24 * 3600) -> None:
    """A duration: a JSON number of seconds in a plausible range (not ms)."""
    assert isinstance(value, int | float) and not isinstance(value, bool), value
    assert low <= value <= high, value


@asynccontextmanager
async def as_a_client_sees_it(h: Harness) -> AsyncIterator[Harness]:
    """The same process behind a client that receives a server error as the 500 response a
    real client gets, rather than as the exception re-raised inside the test."""
    transport = httpx.ASGITransport(app=h.runtime.app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Harness(runtime=h.runtime, client=client, demo=h.demo)


@pytest.fixture
async def api(api: Harness) -> AsyncIterator[Harness]:
    """tests/conftest.py's `api` (no dispatcher), seen as a client sees it."""
    async with as_a_client_sees_it(api) as h:
        yield h


@pytest.fixture
async def harness(harness: Harness) -> AsyncIterator[Harness]:
    """tests/conftest.py's `harness` (running dispatcher), seen as a client sees it."""
    async with as_a_client_sees_it(harness) as h:
        yield h


@asynccontextmanager
async def open_harness(settings: Settings) -> AsyncIterator[Harness]:
    """A fresh process (API + dispatcher) on `settings`, stopped on exit."""
    h = await start_harness(settings)
    try:
        async with as_a_client_sees_it(h) as seen:
            yield seen
    finally:
        await h.client.aclose()
        await h.runtime.stop()


@pytest.fixture
async def small_pool(make_settings: Callable[..., Settings]) -> AsyncIterator[Harness]:
    """A running dispatcher whose workspace may hold only 3 calls at once."""
    async with open_harness(make_settings(demo_max_concurrent_calls=3)) as h:
        yield h


# --- Reading the contract's objects -------------------------------------------------------------

PROGRESS_KEYS = {
    "waiting",
    "active",
    "completed",
    "failed",
    "total",
    "startTime",
    "lastCompletedTime",
    "completedTime",
    "averageCallDuration",
    "recent_calls",
}
COUNT_KEYS = ("waiting", "active", "completed", "failed")


def people(phones: list[str]) -> list[str]:
    """CSV rows with a distinct first/last name and email per number."""
    return [f"{p},First{i},Last{i},person{i}@example.com" for i, p in enumerate(phones)]


def row_metadata(i: int) -> dict[str, str]:
    return {"first_name": f"First{i}", "last_name": f"Last{i}", "email": f"person{i}@example.com"}


async def status_of(h: Harness, batch_id: str) -> dict[str, Any]:
    r = await h.client.get(f"{BASE}/{batch_id}/status", headers=h.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def get_call(h: Harness, batch_id: str, job_id: str) -> dict[str, Any]:
    r = await h.client.get(f"{BASE}/{batch_id}/calls/{job_id}", headers=h.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def not_applicable(obj: dict[str, Any], *keys: str) -> bool:
    """The fields do not apply: absent (as the contract's examples show) or null. Absence
    itself is checked once, in test_fields_that_do_not_apply_are_omitted."""
    return all(obj.get(k) is None for k in keys)


def check_recent_call(item: dict[str, Any]) -> None:
    """A recent_calls item: jobId, status, phone_number, and completedAt or failedAt+error."""
    assert isinstance(item["jobId"], str) and item["jobId"]
    assert item["status"] in ("completed", "failed")
    assert item["phone_number"].startswith("+")
    if item["status"] == "completed":
        assert_ms_near_now(item["completedAt"])
        assert item.get("failedAt") is None
        assert_seconds(item["duration"], low=0.1)
    else:
        assert_ms_near_now(item["failedAt"])
        assert isinstance(item["error"], str) and item["error"]
        assert item.get("completedAt") is None


def check_counts(counts: dict[str, Any], total: int) -> None:
    for key in (*COUNT_KEYS, "total"):
        assert type(counts[key]) is int and counts[key] >= 0, (key, counts)
    assert counts["total"] == total
    assert sum(counts[k] for k in COUNT_KEYS) + counts.get("cancelled", 0) == total, counts


@dataclass
class Frozen:
    h: Harness
    batch_id: str
    phones: list[str]
    status: dict[str, Any]


STUCK_AGENT = {
    # no-answer rings for 100000 simulated seconds (200 s here): such calls stay active, and
    # once three of them hold the workspace's three slots, nothing moves any more.
    "outcomes": {"completed": 3, "busy": 3, "no-answer": 1},
    "ringTimeoutSeconds": 100000,
    "meanTalkSeconds": 10,
    "ringSeconds": [1, 2],
}


STUCK_AFTER_S = 0.5


async def freeze(h: Harness, rows: int) -> Frozen | None:
    """Start a batch on STUCK_AGENT and wait until it stops moving: three calls active for
    over STUCK_AFTER_S (a completed or busy call ends within about 50 ms here, so these are
    no-answer calls) hold all three slots, and 0.3 s later nothing has moved. None when the
    draw lacks a status the tests need."""
    agent = await create_agent(h, **STUCK_AGENT)
    phones = numbers(rows)[::-1]  # CSV order differs from sorted order
    r = await start_batch(h, people(phones), agent_id=agent)
    assert r.status_code == 200, r.text
    batch_id = r.json()["batchId"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if (await status_of(h, batch_id))["active"] != 3:
            continue
        active = await list_all_calls(h, batch_id, status="active")
        started_before = time.time() * 1000 - STUCK_AFTER_S * 1000
        if len(active) != 3 or any(c["startTime"] > started_before for c in active):
            continue
        # A starved process can show a call as active after its end is due; give the loop
        # time to apply any such end, and insist that nothing moved meanwhile.
        before = await status_of(h, batch_id)
        await asyncio.sleep(0.3)
        status = await status_of(h, batch_id)
        still = await list_all_calls(h, batch_id, status="active")
        moved = [status[k] != before[k] for k in COUNT_KEYS]
        if any(moved) or {c["jobId"] for c in still} != {c["jobId"] for c in active}:
            continue
        kinds = {c["status"] for c in status["recent_calls"]}
        usable = status["waiting"] >= 3 and status["completed"] and status["failed"]
        if usable and kinds == {"completed", "failed"}:
            return Frozen(h, batch_id, phones, status)
        return None
    return None


def spec_examples(name: str) -> list[dict[str, Any]]:
    """The JSON objects of a spec page (fenced or not). Schema renderings with "<string>"
    placeholders merge the success and error bodies, so they are left out."""
    path = SPEC_DIR / name
    if not path.exists():
        pytest.skip(f"the contract's reference page {path} is not available")
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    found = []
    end = 0
    for m in re.finditer(r"^\{", text, re.MULTILINE):
        if m.start() < end:
            continue  # an object nested in the one just read
        try:
            obj, end = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(obj, dict) and "<string>" not in json.dumps(obj):
            found.append(obj)
    assert found, f"no example response found in {path}"
    return found


def missing_keys(example: Any, ours: Any, path: str = "$") -> list[str]:
    """Keys of `example` absent from `ours`; list items are matched by their `status`."""
    if isinstance(example, dict):
        if not isinstance(ours, dict):
            return [path]
        missing = []
        for key, value in example.items():
            if key not in ours:
                missing.append(f"{path}.{key}")
            else:
                missing += missing_keys(value, ours[key], f"{path}.{key}")
        return missing
    if isinstance(example, list):
        if not isinstance(ours, list):
            return [path]
        missing = []
        for item in example:
            if not isinstance(item, dict):
                continue
            same = [
                o for o in ours if isinstance(o, dict) and o.get("status") == item.get("status")
            ]
            where = f"{path}[status={item.get('status')}]"
            missing += missing_keys(item, same[0], where) if same else [where]
        return missing
    return []


@asynccontextmanager
async def frozen_batch(
    settings_for: Callable[[Path], Settings], directory: Path, template_db: Path
) -> AsyncIterator[Frozen]:
    """A processing batch of 40 calls with some completed, some failed, 3 active, the rest
    waiting, which stays that way. Outcomes are random per dial, so an unlucky draw (say, no
    failed call yet) is discarded and drawn again in a fresh process."""
    for attempt in range(5):
        db = directory / f"frozen{attempt}.db"
        shutil.copy(template_db, db)
        async with open_harness(settings_for(db)) as h:
            found = await freeze(h, 40)
            if found is not None:
                yield found
                return
    raise AssertionError("could not freeze a batch with every call status in 5 attempts")
