"""A batch's results as one streamed file: CSV for spreadsheets, JSON Lines for programs.

Constant memory whatever the batch size: the calls are read in keyset chunks by `seq`
(store/calls.after), each chunk in a short read of its own, formatted and handed to the
response while the next one is read; at most two chunks are in memory. Nothing holds the
batch, and a long export holds no transaction open (on SQLite that would stop the WAL
from being checkpointed meanwhile).

CSV cells that a spreadsheet would run as a formula are neutralised (OWASP's advice for
CSV injection: a leading `'`); JSON Lines carries the values unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from dialbatch.domain.ids import job_id
from dialbatch.domain.states import CallState, wire_status
from dialbatch.store import calls
from dialbatch.store.engine import Database

ExportFormat = Literal["csv", "jsonl"]
FORMATS: tuple[ExportFormat, ...] = ("csv", "jsonl")
MEDIA_TYPES: dict[ExportFormat, str] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
}
# Rows per read: large enough that a 1M-call export is a few hundred queries, small
# enough that a chunk and its text stay well under a megabyte or two.
CHUNK_ROWS = 2000

CSV_COLUMNS = (
    "jobId",
    "phone_number",
    "status",
    "startTime",
    "endTime",
    "duration",
    "attempts",
    "error",
    "outcome",
    "transcript",
    "summary",
    "data",
)
# Extension: after the metadata columns, so that the contract's columns and the upload's
# keep their places.
RECIPIENT_COLUMNS = ("timezone", "consent_basis", "consent_at")
# What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection").
_FORMULA_STARTS = frozenset("=+-@\t\r")
_WIRE = {state.value: wire_status(state) for state in CallState}
_STARTED = frozenset(s.value for s in CallState if s is not CallState.WAITING)
_FINISHED = frozenset(s.value for s in (CallState.COMPLETED, CallState.FAILED, CallState.CANCELLED))
_ERRORED = frozenset((CallState.FAILED.value, CallState.CANCELLED.value))
_COMPLETED = CallState.COMPLETED.value
_DEFAULT_ERROR = {CallState.CANCELLED.value: "Batch cancelled"}
# Joins a column's cells for `csv_column`; a column that holds it is done cell by cell.
_SEP = "\x1f"
# Formula starts that can follow a separator without making the cell need quotes (a CR
# makes it need them, and a quoted cell is handled by `csv_cell`).
_INLINE_FORMULA_STARTS = "=+-@\t"


def neutralise(cell: str) -> str:
    """`cell`, made inert for a spreadsheet: one that would start a formula gets a `'`
    in front, which spreadsheets show as text and never evaluate."""
    return "'" + cell if cell[:1] in _FORMULA_STARTS else cell


def csv_cell(value: object) -> str:
    """One CSV field (RFC 4180) of a value that came from outside: neutralised, then
    quoted when it holds a quote, a comma or a line break. Written by hand because the
    csv module's writer spent about 20 us on a row with a transcript (3x this)."""
    if value is None:
        return ""
    text = value if type(value) is str else _as_text(value)
    if text[:1] in _FORMULA_STARTS:
        text = "'" + text
    if '"' in text or "," in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_column(values: Sequence[object]) -> Sequence[str]:
    """`csv_cell` of every value of a column, in a few passes over the whole column
    when none of its cells needs quoting (names, emails, numbers, statuses): joined by
    a separator that none of them holds, checked for characters that need quotes, made
    inert where a cell starts a formula, and split again. Otherwise cell by cell."""
    if not values:
        return []
    try:
        joined = _SEP.join(values)  # type: ignore[arg-type]  # a None or number: TypeError
    except TypeError:
        if values.count(None) == len(values):
            # A column nobody filled (the recipient's zone and consent, mostly): one C-level
            # count instead of a call per cell (+1.2 us per row for two such columns).
            return [""] * len(values)
        return [csv_cell(v) for v in values]
    if (
        '"' in joined
        or "," in joined
        or "\n" in joined
        or "\r" in joined
        or joined.count(_SEP) != len(values) - 1
    ):
        return [csv_cell(v) for v in values]
    for start in _INLINE_FORMULA_STARTS:
        if start in joined:
            joined = joined.replace(_SEP + start, _SEP + "'" + start)
    if joined[:1] in _FORMULA_STARTS:
        joined = "'" + joined
    return joined.split(_SEP)


def _shown(values: Sequence[Any], status: Sequence[str], when: frozenset[str]) -> list[str]:
    """A time column: the value where the call's state shows it, else empty."""
    if when.issuperset(status) and None not in values:
        return list(map(str, values))
    return [
        str(v) if s in when and v is not None else "" for s, v in zip(status, values, strict=True)
    ]


def _as_text(value: object) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _error(status: str, error: str | None) -> str | None:
    if status not in _ERRORED:
        return None
    return error or _DEFAULT_ERROR.get(status)


class CsvRows:
    """Formats export rows as CSV text. The metadata columns are those of the first row
    (every call of a batch comes from one CSV header, so they all share its keys).

    A chunk is formatted a column at a time, not a row at a time: each column is a few
    C-level passes (`csv_column`), and the lines are put together by one `zip` and
    `join`. A row-at-a-time loop spent ~4.3 us of interpreter time per row (a function
    call per cell); this spends ~3.2 us (docs/benchmarks.md, "Export").

    The column list is CSV_COLUMNS then the metadata's keys: a new column goes at the
    end of CSV_COLUMNS and at the same place in `rows`."""

    def __init__(self, batch_id: str) -> None:
        self._job = job_id(batch_id, 0)[:-1]  # "call_<token>_", the seq follows
        self._keys: list[str] | None = None

    def _header(self, first: Sequence[Any] | None) -> str:
        self._keys = list(json.loads(first[2])) if first is not None else []
        taken = (*CSV_COLUMNS, *RECIPIENT_COLUMNS)
        names = [
            *CSV_COLUMNS,
            *(f"metadata.{k}" if k in taken else k for k in self._keys),
            *RECIPIENT_COLUMNS,
        ]
        return ",".join(csv_cell(n) for n in names) + "\r\n"

    def rows(self, rows: Sequence[Sequence[Any]]) -> bytes:
        head = self._header(rows[0] if rows else None) if self._keys is None else ""
        if not rows:
            return head.encode("utf-8")
        (seq, phone, metadata, status, attempt, started, ended, duration, error, *rest) = zip(
            *rows, strict=True
        )
        job = self._job
        columns: list[Sequence[str]] = [
            [f"{job}{n}" for n in seq],
            csv_column(phone),
            list(map(_WIRE.__getitem__, status)),
            _shown(started, status, _STARTED),
            _shown(ended, status, _FINISHED),
            [
                repr(d) if s == _COMPLETED and d is not None else ""
                for s, d in zip(status, duration, strict=True)
            ],
            list(map(str, attempt)),
            csv_column(
                [
                    (e or _DEFAULT_ERROR.get(s, "")) if s in _ERRORED else ""
                    for s, e in zip(status, error, strict=True)
                ]
            ),
        ]
        columns += map(csv_column, rest[:4])  # empty unless completed (store.calls.after)
        if self._keys:
            # One parse for the chunk: half the time of one per row.
            dicts: list[dict[str, Any]] = json.loads("[" + ",".join(metadata) + "]")
            for key in self._keys:
                columns.append(csv_column([d.get(key, "") for d in dicts]))
        zone, basis, consent_at = rest[4:7]  # RECIPIENT_COLUMNS, after the metadata's
        columns += (csv_column(zone), csv_column(basis))
        columns.append(["" if at is None else str(at) for at in consent_at])
        body = "\r\n".join(map(",".join, zip(*columns, strict=True)))
        return (head + body + "\r\n").encode("utf-8")


class JsonLines:
    """Formats export rows as JSON Lines: the call as the API shows it (absent values left
    out), with `attempts`, `metadata` and `result`. The stored metadata and result are
    JSON text already and are spliced in as they are, not parsed and re-encoded."""

    def __init__(self, batch_id: str) -> None:
        self._job = job_id(batch_id, 0)[:-1]

    def rows(self, rows: Sequence[Sequence[Any]]) -> bytes:
        job, dumps = self._job, json.dumps
        lines = []
        for row in rows:
            (seq, phone, metadata, status, attempt, started, ended, duration, error, result) = row[
                :10
            ]
            zone, basis, consent_at = row[10:13]
            parts = [f'{{"jobId":"{job}{seq}","phone_number":"{phone}","status":"{_WIRE[status]}"']
            if status in _STARTED and started is not None:
                parts.append(f',"startTime":{started}')
            if status in _FINISHED and ended is not None:
                parts.append(f',"endTime":{ended}')
            if status == _COMPLETED and duration is not None:
                parts.append(f',"duration":{duration!r}')
            parts.append(f',"attempts":{attempt}')
            message = _error(status, error)
            if message is not None:
                parts.append(f',"error":{dumps(message, ensure_ascii=False)}')
            parts.append(f',"metadata":{metadata}')
            if status == _COMPLETED and result is not None and result != "null":
                parts.append(f',"result":{result}')
            if zone is not None:
                parts.append(f',"timezone":{dumps(zone)}')
            if basis is not None or consent_at is not None:
                record = {"basis": basis, "at": consent_at}
                parts.append(f',"consent":{dumps(record, ensure_ascii=False)}')
            parts.append("}\n")
            lines.append("".join(parts))
        return "".join(lines).encode("utf-8")


async def stream(
    db: Database,
    batch_id: str,
    *,
    states: tuple[CallState, ...] | None,
    fmt: ExportFormat,
    chunk_rows: int | None = None,
) -> AsyncIterator[bytes]:
    """The export's bytes, chunk by chunk. The caller has checked the batch's workspace.

    The next chunk is read while this one is formatted: SQLite (on aiosqlite's thread, the
    chunk computed in one step, store/_dialect.read_chunk) and PostgreSQL do their part
    off the event loop's thread, so on two cores the reading and the formatting overlap.
    At most two chunks are in memory at once.
    """
    limit = chunk_rows or CHUNK_ROWS
    csv_rows = CsvRows(batch_id) if fmt == "csv" else None
    json_lines = JsonLines(batch_id)

    async def read(after: int) -> list[Any]:
        async with db.read() as conn:
            return await calls.after(
                conn,
                batch_id,
                after_seq=after,
                states=states,
                limit=limit,
                result_fields=csv_rows is not None,
            )

    pending: asyncio.Future[list[Any]] | None = asyncio.ensure_future(read(-1))
    try:
        while pending is not None:
            rows = await pending
            pending = asyncio.ensure_future(read(rows[-1][0])) if len(rows) == limit else None
            if pending is not None:
                # Let the read start (hand its query to the database) before this chunk
                # is formatted; a task only created would wait until formatting is done.
                await asyncio.sleep(0)
            chunk = csv_rows.rows(rows) if csv_rows is not None else json_lines.rows(rows)
            if chunk:
                yield chunk
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending
