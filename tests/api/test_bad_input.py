"""Bad input gets a clear 4xx in the contract's error shape, never a 5xx, and writes nothing;
the upload options (skipInvalid, dedupe, defaultCountry, scheduledAt) do what they say."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from dialbatch.domain.ids import job_id
from tests.api.conftest import (
    BASE,
    MISSING_BATCH,
    Harness,
    assert_error_shape,
    batch_count,
    create_agent,
    csv_bytes,
    get_batch,
    list_all_calls,
    numbers,
    start_batch,
    wait_for_batch,
)

MB = 1024 * 1024
HEADER = "phone_number,first_name,last_name,email"


async def refused(h: Harness, r: httpx.Response, status: int = 400) -> dict[str, Any]:
    """A clear 4xx in the contract's error shape, and no batch was created."""
    body = assert_error_shape(r, status)
    assert await batch_count(h) == 0
    return body


def _csv_of_size(size: int) -> bytes:
    row = b"+12025550123,Ada,Lovelace," + b"x" * 60 + b"@example.com\n"
    head = (HEADER + "\n").encode()
    return head + row * ((size - len(head)) // len(row) + 1)


@pytest.fixture(scope="module")
def upload_21mb() -> bytes:
    """A 21 MB CSV, built once for the module."""
    return _csv_of_size(21 * MB)


@pytest.fixture(scope="module")
def upload_just_over() -> bytes:
    """A file 100 KB over the 20 MB limit: small enough that its request passes the
    Content-Length check (which allows room for the other form fields)."""
    return _csv_of_size(20 * MB + 100 * 1024)


# --- The multipart form ---------------------------------------------------------------------


async def test_no_file(api: Harness) -> None:
    r = await api.client.post(BASE, headers=api.headers, data={"agentId": api.demo.agent_id})
    body = await refused(api, r)
    assert "file" in body["message"].lower()


async def test_file_sent_under_another_name(api: Harness) -> None:
    r = await api.client.post(
        BASE,
        headers=api.headers,
        files={"csv": ("c.csv", csv_bytes(numbers(1)), "text/csv")},
        data={"agentId": api.demo.agent_id},
    )
    await refused(api, r)


async def test_two_files(api: Harness) -> None:
    r = await api.client.post(
        BASE,
        headers=api.headers,
        files=[
            ("file", ("a.csv", csv_bytes(numbers(1)), "text/csv")),
            ("file", ("b.csv", csv_bytes(numbers(1, start=1)), "text/csv")),
        ],
        data={"agentId": api.demo.agent_id},
    )
    await refused(api, r)


@pytest.mark.parametrize("agent_id", [None, "", "   "], ids=["absent", "empty", "blank"])
async def test_no_agent_id(api: Harness, agent_id: str | None) -> None:
    data = {} if agent_id is None else {"agentId": agent_id}
    r = await api.client.post(
        BASE,
        headers=api.headers,
        files={"file": ("c.csv", csv_bytes(numbers(1)), "text/csv")},
        data=data,
    )
    body = await refused(api, r)
    assert "agentid" in body["message"].lower()


async def test_json_body_instead_of_multipart(api: Harness) -> None:
    r = await api.client.post(
        BASE,
        headers=api.headers,
        json={"agentId": api.demo.agent_id, "file": "phone_number\n+12025550123\n"},
    )
    await refused(api, r)


async def test_urlencoded_form_instead_of_multipart(api: Harness) -> None:
    r = await api.client.post(
        BASE,
        headers=api.headers,
        data={"agentId": api.demo.agent_id, "file": "phone_number\n+12025550123\n"},
    )
    await refused(api, r)


async def test_truncated_multipart_body(api: Harness) -> None:
    body = (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="c.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\nphone_number\n+120255"
    )
    r = await api.client.post(
        BASE,
        headers={**api.headers, "content-type": "multipart/form-data; boundary=xyz"},
        content=body,
    )
    assert 400 <= r.status_code < 500, r.text
    await refused(api, r, r.status_code)


# --- The CSV itself -------------------------------------------------------------------------


async def test_empty_file(api: Harness) -> None:
    await refused(api, await start_batch(api, content=b""))


async def test_header_only(api: Harness) -> None:
    await refused(api, await start_batch(api, content=(HEADER + "\n").encode()))


async def test_blank_lines_only_after_header(api: Harness) -> None:
    await refused(api, await start_batch(api, content=(HEADER + "\n\n\n").encode()))


async def test_no_phone_column(api: Harness) -> None:
    content = b"first_name,last_name,email\nAda,Lovelace,ada@example.com\n"
    body = await refused(api, await start_batch(api, content=content))
    assert "phone_number" in body["message"]


async def test_invalid_numbers_are_reported_with_row_column_and_reason(api: Harness) -> None:
    rows = [
        "+12025550101,Ada,Lovelace,ada@example.com",  # row 2
        "12345,Bad,One,b1@example.com",  # row 3
        "+12025550102,Alan,Turing,alan@example.com",  # row 4
        "not-a-number,Bad,Two,b2@example.com",  # row 5
        ",Bad,Three,b3@example.com",  # row 6
    ]
    body = await refused(api, await start_batch(api, rows))
    problems = body["problems"]
    assert [p["row"] for p in problems] == [3, 5, 6]
    for p in problems:
        assert p["column"] == "phone_number"
        assert isinstance(p["reason"], str) and p["reason"]
    assert body["problemCount"] == 3


async def test_row_numbers_count_records_not_lines(api: Harness) -> None:
    """A quoted cell spanning lines is still one spreadsheet row."""
    rows = [
        '+12025550101,Ada,Lovelace,"ada@example.com\nsecond line"',  # row 2, two lines
        "555,Bad,Row,bad@example.com",  # row 3
    ]
    body = await refused(api, await start_batch(api, rows))
    assert [p["row"] for p in body["problems"]] == [3]


async def test_many_invalid_rows_give_a_bounded_report(api: Harness) -> None:
    rows = [f"{i},x,y,z@example.com" for i in range(1000, 1500)]
    body = await refused(api, await start_batch(api, rows))
    assert body["problemCount"] == 500
    assert 1 <= len(body["problems"]) <= 500
    assert body["problems"][0]["row"] == 2


@pytest.mark.parametrize(
    "content",
    [
        os.urandom(4096) + b"\x00" * 64 + os.urandom(4096),
        b"phone_number\n+12025550123\x00\n",
        b"PK\x03\x04" + os.urandom(2048),
        b"\xd0\xcf\x11\xe0" + os.urandom(2048),
    ],
    ids=["random-bytes-with-nul", "nul-in-a-cell", "xlsx", "xls"],
)
async def test_binary_garbage(api: Harness, content: bytes) -> None:
    await refused(api, await start_batch(api, content=content))


@pytest.mark.parametrize(
    "content",
    [
        "phone_number,name\n+12025550123,Zoë\n".encode("latin-1"),
        "phone_number,name\n+12025550123,Zoë\n".encode("utf-16-le"),
        b'phone_number,notes\n+12025550123,"never closed\n',
        b"phone_number,notes\n+12025550123," + b"y" * 200_000 + b"\n",
        b"\n\n\n\n",
        ",".join(f"c{i}" for i in range(5000)).encode() + b",phone_number\n",
        b"phone_number,a\n+12025550123,1,2,3,4\n",
    ],
    ids=[
        "latin-1",
        "utf-16-without-bom",
        "unclosed-quote",
        "200kb-cell",
        "only-newlines",
        "5000-columns",
        "ragged-row",
    ],
)
async def test_awkward_files_never_cause_a_5xx(api: Harness, content: bytes) -> None:
    r = await start_batch(api, content=content)
    assert r.status_code < 500, r.text
    if r.status_code != 200:
        await refused(api, r, r.status_code)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xef\xbb\xbfphone_number,first_name\r\n+12025550123,Ada\r\n", {"first_name": "Ada"}),
        ("phone_number,name\n+12025550123,Zoë\n".encode("utf-16"), {"name": "Zoë"}),
    ],
    ids=["excel-utf8-bom-crlf", "utf-16-with-bom"],
)
async def test_spreadsheet_exports_are_accepted(
    api: Harness, content: bytes, expected: dict[str, str]
) -> None:
    r = await start_batch(api, content=content)
    assert r.status_code == 200, r.text
    calls = await list_all_calls(api, r.json()["batchId"])
    assert [(c["phone_number"], c["metadata"]) for c in calls] == [("+12025550123", expected)]


# --- Size limit -----------------------------------------------------------------------------


async def test_21mb_upload_is_413(api: Harness, upload_21mb: bytes) -> None:
    await refused(api, await start_batch(api, content=upload_21mb), 413)


async def test_just_over_20mb_is_413(api: Harness, upload_just_over: bytes) -> None:
    await refused(api, await start_batch(api, content=upload_just_over), 413)


async def test_21mb_streamed_without_content_length_is_413(
    api: Harness, upload_21mb: bytes
) -> None:
    boundary = "dialbatch-test-boundary"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="agentId"\r\n\r\n'
        f"{api.demo.agent_id}\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def chunks() -> AsyncIterator[bytes]:
        yield head
        for i in range(0, len(upload_21mb), MB):
            yield upload_21mb[i : i + MB]
        yield tail

    r = await api.client.post(
        BASE,
        headers={**api.headers, "content-type": f"multipart/form-data; boundary={boundary}"},
        content=chunks(),
    )
    assert "content-length" not in r.request.headers
    await refused(api, r, 413)


# --- Agent ------------------------------------------------------------------------------------


async def test_unknown_agent_and_other_workspaces_agent_read_the_same(api: Harness) -> None:
    await api.other_workspace()
    unknown = await start_batch(api, numbers(2), agent_id="agent_nobody")
    foreign = await start_batch(api, numbers(2), agent_id="agent_other")
    a = await refused(api, unknown, 404)
    b = await refused(api, foreign, 404)
    assert sorted(a) == sorted(b)
    assert a["error"] == b["error"]
    assert a["message"].replace("agent_nobody", "<id>") == b["message"].replace(
        "agent_other", "<id>"
    )


# --- scheduledAt ----------------------------------------------------------------------------


_SOON = datetime.now(UTC) + timedelta(days=1)


@pytest.mark.parametrize(
    "value",
    [
        "tomorrow",
        "2025-13-01T00:00:00Z",
        _SOON.strftime("%Y-%m-%dT%H:%M:%S"),  # no zone: refused, never guessed
        f"{_SOON.year}-02-30T09:00:00Z",
        "09:00",
        _SOON.strftime("%Y-%m-%dT25:00:00Z"),
        _SOON.strftime("%Y-%m-%dT%H:%M:%S+25:00"),
        "not a date at all, but quite a long text that goes on and on",
    ],
    ids=[
        "tomorrow",
        "month-13",
        "naive",
        "feb-30",
        "time-only",
        "hour-25",
        "offset-25h",
        "long-text",
    ],
)
async def test_malformed_scheduled_at(api: Harness, value: str) -> None:
    body = await refused(api, await start_batch(api, numbers(2), scheduledAt=value))
    assert "scheduledat" in body["message"].lower()


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"], ids=["year-1", "year-9999"]
)
async def test_scheduled_at_at_the_ends_of_the_calendar(api: Harness, value: str) -> None:
    """Converting these to UTC overflows the calendar: a 400, not a 500."""
    body = await refused(api, await start_batch(api, numbers(2), scheduledAt=value))
    assert "scheduledat" in body["message"].lower()


async def test_scheduled_at_too_far_ahead(api: Harness) -> None:
    when = datetime.now(UTC) + timedelta(days=800)
    r = await start_batch(api, numbers(2), scheduledAt=when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    await refused(api, r)


async def test_z_and_offsets_name_the_same_instant(api: Harness) -> None:
    instant = (datetime.now(UTC) + timedelta(hours=5)).replace(microsecond=0)
    plus_two = instant.astimezone(timezone(timedelta(hours=2)))
    forms = [
        instant.strftime("%Y-%m-%dT%H:%M:%SZ"),
        plus_two.isoformat(),  # 2030-01-01T14:00:00+02:00
        instant.astimezone(timezone(timedelta(hours=-5, minutes=-30))).isoformat(),
    ]
    assert forms[1].endswith("+02:00")
    expected_ms = int(instant.timestamp() * 1000)
    for text in forms:
        r = await start_batch(api, numbers(2), scheduledAt=text)
        assert r.status_code == 200, (text, r.text)
        assert r.json()["status"] == "queued"
        batch = await get_batch(api, r.json()["batchId"])
        assert batch["scheduledAt"] == expected_ms, text


async def test_future_schedule_keeps_the_batch_queued(harness: Harness) -> None:
    when = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = await start_batch(harness, numbers(4), scheduledAt=when)
    assert r.status_code == 200, r.text
    batch_id = r.json()["batchId"]
    await asyncio.sleep(0.5)  # the dispatcher polls every 20 ms here
    body = await get_batch(harness, batch_id)
    assert body["status"] == "queued"
    assert body["isComplete"] is False
    assert body["progress"]["waiting"] == 4
    assert body["progress"]["startTime"] is None
    assert harness.runtime.providers["simulated"].dials == 0  # type: ignore[attr-defined]
    calls = await list_all_calls(harness, batch_id)
    assert {c["status"] for c in calls} == {"waiting"}


async def test_past_schedule_starts_at_once(harness: Harness) -> None:
    agent = await create_agent(harness, {"completed": 1})
    r = await start_batch(harness, numbers(2), agent_id=agent, scheduledAt="2020-01-01T00:00:00Z")
    assert r.status_code == 200, r.text
    body = await wait_for_batch(harness, r.json()["batchId"])
    assert body["status"] == "completed" and body["progress"]["completed"] == 2


# --- smartCallbackConfig --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "{enabled: true}",
        "not json",
        "[1, 2]",
        '"enabled"',
        "42",
        '{"enabled": true, "maxAttempts": "three", "gaps": [{"days": 1}]}',
        '{"enabled": true, "maxAttempts": 2, "gaps": [{"days": -1, "hours": 0}]}',
        '{"enabled": true, "maxAttempts": 2, "gaps": [{"days": 0, "hours": -3}]}',
        '{"enabled": "yes", "maxAttempts": 2, "gaps": [{"hours": 1}]}',
        '{"enabled": true, "maxAttempts": 0, "gaps": [{"hours": 1}]}',
        '{"enabled": true, "maxAttempts": 2, "gaps": "daily"}',
        '{"enabled": true, "maxAttempts": 2, "gaps": [{"weeks": 1}]}',
    ],
    ids=[
        "js-object",
        "text",
        "array",
        "string",
        "number",
        "maxAttempts-three",
        "negative-days",
        "negative-hours",
        "enabled-yes",
        "maxAttempts-0",
        "gaps-not-list",
        "gap-weeks",
    ],
)
async def test_malformed_smart_callback_config(api: Harness, value: str) -> None:
    body = await refused(api, await start_batch(api, numbers(2), smartCallbackConfig=value))
    assert "smartcallbackconfig" in body["message"].lower()


@pytest.mark.parametrize(
    "hours", ["NaN", "Infinity", "1e308"], ids=["nan", "infinity", "1e308-hours"]
)
async def test_non_finite_callback_gaps(api: Harness, hours: str) -> None:
    """json.loads takes NaN and Infinity, and 1e308 hours overflow to infinite ms: a 400."""
    value = '{"enabled": true, "maxAttempts": 2, "gaps": [{"hours": HOURS}]}'.replace(
        "HOURS", hours
    )
    body = await refused(api, await start_batch(api, numbers(2), smartCallbackConfig=value))
    assert "smartcallbackconfig" in body["message"].lower()


# --- Listing parameters and unknown ids -------------------------------------------------------


@pytest.fixture
async def queued(api: Harness) -> str:
    r = await start_batch(api, numbers(5))
    assert r.status_code == 200, r.text
    batch_id: str = r.json()["batchId"]
    return batch_id


@pytest.mark.parametrize(
    "params",
    [
        {"status": "done"},
        {"status": "COMPLETED!"},
        {"status": "x" * 200},
        {"page": "0"},
        {"page": "-1"},
        {"page": "abc"},
        {"page": "1.5"},
        {"page": "99999999999999999999"},
        {"limit": "1000"},
        {"limit": "101"},
        {"limit": "0"},
        {"limit": "-5"},
        {"limit": "ten"},
    ],
    ids=lambda p: "&".join(f"{k}={v[:12]}" for k, v in p.items()),
)
async def test_bad_listing_parameters(api: Harness, queued: str, params: dict[str, str]) -> None:
    r = await api.client.get(f"{BASE}/{queued}/calls", headers=api.headers, params=params)
    assert_error_shape(r, 400)


@pytest.mark.parametrize("params", [{"page": "2"}, {"page": "2", "status": "failed"}])
async def test_a_page_past_the_end_is_empty(
    api: Harness, queued: str, params: dict[str, str]
) -> None:
    """Like the batches listing: clients that page until an empty page stop there."""
    r = await api.client.get(f"{BASE}/{queued}/calls", headers=api.headers, params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["calls"] == []
    assert body["pagination"]["hasNext"] is False and body["pagination"]["hasPrev"] is True
    assert body["summary"]["total"] == 5
    far = await api.client.get(
        f"{BASE}/{queued}/calls", headers=api.headers, params={"page": 10_000_000}
    )
    assert far.status_code == 200 and far.json()["calls"] == []
    batches = await api.client.get(BASE, headers=api.headers, params={"page": 1_000})
    assert batches.status_code == 200 and batches.json()["batches"] == []
    assert batches.json()["pagination"]["hasPrev"] is True


async def test_limit_100_is_the_maximum_accepted(api: Harness, queued: str) -> None:
    r = await api.client.get(f"{BASE}/{queued}/calls", headers=api.headers, params={"limit": 100})
    assert r.status_code == 200 and len(r.json()["calls"]) == 5


@pytest.mark.parametrize("suffix", ["", "/status", "/calls"])
async def test_unknown_batch_is_404_with_its_id(api: Harness, suffix: str) -> None:
    r = await api.client.get(f"{BASE}/{MISSING_BATCH}{suffix}", headers=api.headers)
    body = assert_error_shape(r, 404)
    assert body["id"] == MISSING_BATCH


def assert_call_not_found(r: httpx.Response) -> None:
    assert r.status_code == 404, r.text
    body = r.json()
    assert body["status"] == "not_found"
    assert isinstance(body["error"], str) and body["error"]


@pytest.mark.parametrize(
    "job",
    ["call_nope", "nonsense", "call_0_0", "call__1", "call_abc_-1", "x" * 500, "call_%2e%2e_1"],
)
async def test_unknown_job_id(api: Harness, queued: str, job: str) -> None:
    assert_call_not_found(await api.client.get(f"{BASE}/{queued}/calls/{job}", headers=api.headers))


async def test_job_id_past_the_last_row(api: Harness, queued: str) -> None:
    calls = await list_all_calls(api, queued)
    last = calls[-1]["jobId"]
    seq = int(last.rsplit("_", 1)[1])
    beyond = job_id(queued, seq + 1)
    assert_call_not_found(
        await api.client.get(f"{BASE}/{queued}/calls/{beyond}", headers=api.headers)
    )


async def test_job_id_of_another_batch(api: Harness, queued: str) -> None:
    other = (await start_batch(api, numbers(2, start=50))).json()["batchId"]
    foreign_job = (await list_all_calls(api, other))[0]["jobId"]
    assert_call_not_found(
        await api.client.get(f"{BASE}/{queued}/calls/{foreign_job}", headers=api.headers)
    )
    ok = await api.client.get(f"{BASE}/{other}/calls/{foreign_job}", headers=api.headers)
    assert ok.status_code == 200


async def test_call_lookup_in_unknown_batch(api: Harness) -> None:
    r = await api.client.get(
        f"{BASE}/{MISSING_BATCH}/calls/{job_id(MISSING_BATCH, 0)}", headers=api.headers
    )
    assert_call_not_found(r)


# --- Upload options: skipInvalid, dedupe, defaultCountry ---------------------------------------


async def test_skip_invalid_accepts_valid_rows_and_reports_skipped(api: Harness) -> None:
    good = numbers(7, start=400)
    rows = [
        f"{good[0]},A,A,a@example.com",  # 2
        "12345,Bad,1,x@example.com",  # 3
        f"{good[1]},B,B,b@example.com",  # 4
        f"{good[2]},C,C,c@example.com",  # 5
        "+1 000,Bad,2,x@example.com",  # 6
        f"{good[3]},D,D,d@example.com",  # 7
        f"{good[4]},E,E,e@example.com",  # 8
        ",Bad,3,x@example.com",  # 9
        f"{good[5]},F,F,f@example.com",  # 10
        f"{good[6]},G,G,g@example.com",  # 11
    ]
    r = await start_batch(api, rows, skipInvalid="true")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totalCalls"] == 7
    assert body["skipped"] == 3
    assert [p["row"] for p in body["skippedRows"]] == [3, 6, 9]
    assert all(p["column"] == "phone_number" and p["reason"] for p in body["skippedRows"])
    batch_id = body["batchId"]
    assert (await get_batch(api, batch_id))["totalCalls"] == 7

    # The kept rows page like any batch: full pages, CSV order, nothing lost or repeated.
    got: list[str] = []
    for page, size in ((1, 3), (2, 3), (3, 1)):
        r = await api.client.get(
            f"{BASE}/{batch_id}/calls",
            headers=api.headers,
            params={"page": page, "limit": 3},
        )
        assert r.status_code == 200, r.text
        listing = r.json()
        assert listing["pagination"]["total"] == 7
        assert len(listing["calls"]) == size, (page, listing["calls"])
        got += [c["phone_number"] for c in listing["calls"]]
    assert got == good
    for call in await list_all_calls(api, batch_id):
        detail = await api.client.get(
            f"{BASE}/{batch_id}/calls/{call['jobId']}", headers=api.headers
        )
        assert detail.status_code == 200
        assert detail.json()["phone_number"] == call["phone_number"]


async def test_skip_invalid_with_nothing_valid_is_refused(api: Harness) -> None:
    rows = ["12345,a,b,c@example.com", "abc,a,b,c@example.com"]
    await refused(api, await start_batch(api, rows, skipInvalid="true"))


async def test_skip_invalid_flag_must_be_a_boolean(api: Harness) -> None:
    await refused(api, await start_batch(api, numbers(2), skipInvalid="maybe"))


async def test_duplicates_are_refused_by_default(api: Harness) -> None:
    a, b = numbers(2, start=500)
    rows = [f"{a},A,1,a@x.com", f"{b},B,2,b@x.com", f"{a},A,3,a3@x.com"]
    body = await refused(api, await start_batch(api, rows))
    assert 4 in [p["row"] for p in body["problems"]]


async def test_dedupe_keeps_each_number_once(api: Harness) -> None:
    a, b, c = numbers(3, start=600)
    rows = [
        f"{a},First,A,a@x.com",
        f"{b},First,B,b@x.com",
        f"{a},Second,A,a2@x.com",
        f"{c},First,C,c@x.com",
        f"{b},Second,B,b2@x.com",
        f"{a},Third,A,a3@x.com",
    ]
    r = await start_batch(api, rows, dedupe="true")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totalCalls"] == 3
    assert body["duplicatesRemoved"] == 3
    batch_id = body["batchId"]
    calls = await list_all_calls(api, batch_id)
    assert [x["phone_number"] for x in calls] == [a, b, c]
    assert [x["metadata"]["first_name"] for x in calls] == ["First"] * 3
    r = await api.client.get(
        f"{BASE}/{batch_id}/calls", headers=api.headers, params={"limit": 2, "page": 2}
    )
    assert r.status_code == 200 and [x["phone_number"] for x in r.json()["calls"]] == [c]


async def test_duplicates_are_found_after_normalising(api: Harness) -> None:
    rows = ["+12025550101,A,1,a@x.com", "(202) 555-0101,A,2,b@x.com"]
    body = await refused(api, await start_batch(api, rows, defaultCountry="US"))
    assert [p["row"] for p in body["problems"]] == [3]
    r = await start_batch(api, rows, defaultCountry="US", dedupe="true")
    assert r.status_code == 200 and r.json()["totalCalls"] == 1


async def test_default_country_accepts_national_numbers(api: Harness) -> None:
    rows = ["(202) 555-0101,Ada,L,a@x.com", "202.555.0102,Alan,T,b@x.com"]
    r = await start_batch(api, rows, defaultCountry="US")
    assert r.status_code == 200, r.text
    calls = await list_all_calls(api, r.json()["batchId"])
    assert [c["phone_number"] for c in calls] == ["+12025550101", "+12025550102"]


async def test_national_numbers_need_a_default_country(api: Harness) -> None:
    body = await refused(api, await start_batch(api, ["(202) 555-0101,Ada,L,a@x.com"]))
    assert [p["row"] for p in body["problems"]] == [2]


@pytest.mark.parametrize("country", ["XX", "USA", "U", "zz", "1"])
async def test_unknown_default_country(api: Harness, country: str) -> None:
    body = await refused(api, await start_batch(api, numbers(1), defaultCountry=country))
    assert "defaultcountry" in body["message"].lower()
