"""Results export (extension): `GET .../{batchId}/export?format=csv|jsonl` gives one row per
call with its CSV columns, status, times, attempts and its result's outcome, transcript,
summary and data; spreadsheet formulas in CSV cells are neutralised; `include=result` on
the calls listing carries results a page at a time."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from dialbatch.domain.ids import job_id
from tests.api.conftest import (
    BASE,
    MISSING_BATCH,
    Harness,
    assert_error_shape,
    csv_bytes,
    numbers,
    people,
    start_batch,
    wait_for_batch,
)
from tests.api.test_results import REPORT, new_agent, post_result


async def _finished(h: Harness, rows: list[str], content: bytes | None = None) -> str:
    agent, secret = await new_agent(h)
    content = content or csv_bytes(rows)
    r = await start_batch(h, content=content, agent_id=agent)
    assert r.status_code == 200, r.text
    batch_id: str = r.json()["batchId"]
    await wait_for_batch(h, batch_id)
    assert (await post_result(h, job_id(batch_id, 0), secret)).status_code == 200
    return batch_id


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_csv_export_has_one_row_per_call_with_its_result(harness: Harness) -> None:
    h = harness
    batch_id = await _finished(h, people(numbers(3)))
    r = await h.client.get(f"{BASE}/{batch_id}/export", headers=h.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert f'filename="{batch_id}.csv"' in r.headers["content-disposition"]
    rows = _csv(r.text)
    assert [row["jobId"] for row in rows] == [job_id(batch_id, i) for i in range(3)]
    first = rows[0]
    assert first["status"] == "completed"
    assert first["outcome"] == REPORT["outcome"]
    assert first["transcript"] == REPORT["transcript"]
    assert first["summary"] == REPORT["summary"]
    assert json.loads(first["data"]) == REPORT["data"]
    assert first["attempts"] == "1"
    assert int(first["endTime"]) >= int(first["startTime"]) > 1_600_000_000_000
    assert float(first["duration"]) > 0
    assert (first["first_name"], first["last_name"]) == ("First0", "Last0")
    # The phone number starts with "+", which a spreadsheet would evaluate.
    assert first["phone_number"] == "'" + numbers(1)[0]
    # The others carry the simulated provider's transcript.
    assert all(row["transcript"] for row in rows[1:])


async def test_jsonl_export_and_a_status_filter(harness: Harness) -> None:
    h = harness
    batch_id = await _finished(h, people(numbers(3)))
    r = await h.client.get(
        f"{BASE}/{batch_id}/export", params={"format": "jsonl"}, headers=h.headers
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert r.text.endswith("\n")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert len(lines) == 3
    first = lines[0]
    assert first["phone_number"] == numbers(1)[0]  # JSON is not a spreadsheet: unchanged
    assert first["metadata"]["first_name"] == "First0"
    assert first["attempts"] == 1
    for key, value in REPORT.items():
        assert first["result"][key] == value
    r = await h.client.get(
        f"{BASE}/{batch_id}/export", params={"status": "failed"}, headers=h.headers
    )
    assert r.status_code == 200
    assert _csv(r.text) == []
    assert r.text.startswith("jobId,phone_number,status")


async def test_csv_cells_that_would_be_formulas_are_neutralised(harness: Harness) -> None:
    h = harness
    dangerous = [
        '=HYPERLINK("http://evil.example","x")',
        "+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A2)",
        "\tTAB",
        "\rCR",
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["phone_number", "note"])
    writer.writerows(zip(numbers(len(dangerous)), dangerous, strict=True))
    batch_id = await _finished(h, [], content=out.getvalue().encode())
    r = await h.client.get(f"{BASE}/{batch_id}/export", headers=h.headers)
    notes = [row["note"] for row in _csv(r.text)]
    assert notes == ["'" + v for v in dangerous]
    assert all(not n.startswith(("=", "+", "-", "@", "\t", "\r")) for n in notes)
    # A plain value is left alone.
    plain = csv_bytes([f"{numbers(1, start=50)[0]},hello"], header="phone_number,note")
    batch_id = await _finished(h, [], content=plain)
    r = await h.client.get(f"{BASE}/{batch_id}/export", headers=h.headers)
    assert _csv(r.text)[0]["note"] == "hello"


async def test_export_streams_in_chunks(harness: Harness, monkeypatch: Any) -> None:
    from dialbatch.api import export

    monkeypatch.setattr(export, "CHUNK_ROWS", 2)
    h = harness
    batch_id = await _finished(h, people(numbers(5)))
    async with h.client.stream("GET", f"{BASE}/{batch_id}/export", headers=h.headers) as r:
        chunks = [c async for c in r.aiter_bytes()]
    text = b"".join(chunks).decode()
    assert [row["jobId"] for row in _csv(text)] == [job_id(batch_id, i) for i in range(5)]


async def test_bad_format_or_status_is_400_and_another_workspace_404(harness: Harness) -> None:
    h = harness
    batch_id = await _finished(h, people(numbers(1)))
    r = await h.client.get(f"{BASE}/{batch_id}/export?format=xlsx", headers=h.headers)
    assert "csv or jsonl" in assert_error_shape(r, 400)["message"]
    r = await h.client.get(f"{BASE}/{batch_id}/export?status=done", headers=h.headers)
    assert_error_shape(r, 400)
    other = await h.other_workspace()
    r = await h.client.get(f"{BASE}/{batch_id}/export", headers=other)
    assert_error_shape(r, 404)
    r = await h.client.get(f"{BASE}/{MISSING_BATCH}/export", headers=h.headers)
    assert_error_shape(r, 404)


async def test_calls_listing_includes_results_on_request(harness: Harness) -> None:
    h = harness
    batch_id = await _finished(h, people(numbers(2)))
    plain = (await h.client.get(f"{BASE}/{batch_id}/calls", headers=h.headers)).json()
    assert all("result" not in c and "attempts" not in c for c in plain["calls"])
    r = await h.client.get(f"{BASE}/{batch_id}/calls?include=result", headers=h.headers)
    assert r.status_code == 200, r.text
    calls = r.json()["calls"]
    assert calls[0]["result"]["transcript"] == REPORT["transcript"]
    assert all(c["attempts"] == 1 and c["result"]["transcript"] for c in calls)
    r = await h.client.get(f"{BASE}/{batch_id}/calls?include=everything", headers=h.headers)
    assert_error_shape(r, 400)


async def test_calls_listing_includes_attempt_histories_on_request(harness: Harness) -> None:
    """`include=attempts` gives each call of the page the same `attemptHistory` as its
    detail, so a client reads every dial of a batch a page at a time."""
    h = harness
    batch_id = await _finished(h, people(numbers(3)))
    r = await h.client.get(
        f"{BASE}/{batch_id}/calls?include=result,attempts&limit=2", headers=h.headers
    )
    assert r.status_code == 200, r.text
    listed = r.json()["calls"]
    assert len(listed) == 2
    for item in listed:
        assert item["result"]["transcript"]
        detail = (
            await h.client.get(f"{BASE}/{batch_id}/calls/{item['jobId']}", headers=h.headers)
        ).json()
        assert item["attemptHistory"] == detail["attemptHistory"]
        assert len(item["attemptHistory"]) == 1
        assert item["attemptHistory"][0]["outcome"] == "completed"
    only = (
        await h.client.get(f"{BASE}/{batch_id}/calls?include=attempts", headers=h.headers)
    ).json()["calls"]
    assert all("result" not in c and len(c["attemptHistory"]) == 1 for c in only)
    r = await h.client.get(f"{BASE}/{batch_id}/calls?include=attempts,x", headers=h.headers)
    assert "result,attempts" in assert_error_shape(r, 400)["message"]


# -- the formatter, against a row-at-a-time reference ------------------------------------

TRICKY = [
    "",
    "plain",
    "a,b",
    'say "hi"',
    "two\nlines",
    "cr\rhere",
    "=1+2",
    "+44",
    "-3",
    "@x",
    "\tTAB",
    "\rCR",
    "x=1",
    "tab\tin",
    "\x1fsep",
    "=",
    "'",
    "é ü 漢字",
    " lead",
]


def _reference_rows(batch_id: str, rows: list[tuple[Any, ...]], keys: list[str]) -> str:
    """The CSV of `rows` as the first export wrote it: a row at a time, a call per cell."""
    from dialbatch.api.export import _WIRE, csv_cell
    from dialbatch.domain.states import CallState

    started = {s.value for s in CallState if s is not CallState.WAITING}
    finished = {"completed", "failed", "cancelled"}
    lines = []
    for row in rows:
        seq, phone, metadata, status, attempt, start, end, duration, error = row[:9]
        fields = [job_id(batch_id, seq), csv_cell(phone), _WIRE[status]]
        fields.append(str(start) if status in started and start is not None else "")
        fields.append(str(end) if status in finished and end is not None else "")
        if status == "completed":
            fields += ["" if duration is None else repr(duration), str(attempt), ""]
            fields += [csv_cell(v) for v in row[9:13]]
        else:
            if status in ("failed", "cancelled"):
                error = error or ("Batch cancelled" if status == "cancelled" else None)
            else:
                error = None
            fields += ["", str(attempt), csv_cell(error), "", "", "", ""]
        values = json.loads(metadata)
        fields += [csv_cell(values.get(k)) for k in keys]
        zone, basis, consent_at = row[13:16]
        fields += [csv_cell(zone), csv_cell(basis), "" if consent_at is None else str(consent_at)]
        lines.append(",".join(fields) + "\r\n")
    return "".join(lines)


def _random_rows(rng: Any, start: int, n: int, keys: list[str]) -> list[tuple[Any, ...]]:
    from dialbatch.domain.states import CallState

    def text() -> Any:
        return rng.choice([*TRICKY, None, 7, 2.5, "a" * 300])

    rows = []
    for seq in range(start, start + n):
        status = rng.choice([s.value for s in CallState])
        meta = {k: rng.choice([*TRICKY, None, 3]) for k in keys if rng.random() > 0.1}
        result = [text() for _ in range(3)] + [rng.choice(['{"a": 1, "b": "x"}', "", "[1,2]"])]
        if status != "completed":
            result = ["", "", "", ""]  # what store.calls.after gives for these
        rows.append(
            (
                seq,
                rng.choice(["+12025550100", "12025550100", "=cmd"]),
                json.dumps(meta),
                status,
                rng.randrange(4),
                rng.choice([None, 1_700_000_000_000 + seq]),
                rng.choice([None, 1_700_000_045_000 + seq]),
                rng.choice([None, 45.0, 0.1 + 0.2, 12.345678901234567, 1e-7, 3e20]),
                rng.choice([None, "", "No answer (SIP 480)", '=bad,"quoted"']),
                *result,
                rng.choice([None, "America/New_York"]),
                rng.choice([None, 'written, "web form"', "=x"]),
                rng.choice([None, 1_700_000_000_000]),
            )
        )
    return rows


def test_column_formatting_matches_the_row_at_a_time_reference() -> None:
    import random

    from dialbatch.api.export import CsvRows

    rng = random.Random(12)
    keys = ["first_name", "note", "status", "tab\tkey"]
    for _ in range(20):
        formatter, expected, got = CsvRows("batch_x"), [], []
        for start in (0, 50, 100):
            rows = _random_rows(rng, start, rng.randrange(1, 50), keys)
            if start == 0:
                keys = list(json.loads(rows[0][2]))
            got.append(formatter.rows(rows).decode())
            expected.append(_reference_rows("batch_x", rows, keys))
        assert "".join(got).split("\r\n", 1)[1] == "".join(expected)


def test_csv_column_is_csv_cell_of_each_cell() -> None:
    import itertools

    from dialbatch.api.export import csv_cell, csv_column

    assert csv_column([]) == []
    for n in (1, 2, 3):
        for cells in itertools.product([*TRICKY, None, 5], repeat=n):
            assert list(csv_column(list(cells))) == [csv_cell(c) for c in cells], cells
