"""A batch's results as one streamed file: CSV for spreadsheets, JSON Lines for programs.

Constant memory whatever the batch size: the calls are read in keyset chunks by `seq`
(store/calls.after), each chunk in a short read of its own, formatted and handed to the
response before the next is read. Nothing holds the batch, and a long export holds no
transaction open (on SQLite that would stop the WAL from being checkpointed meanwhile).

CSV cells that a spreadsheet would run as a formula are neutralised (OWASP's advice for
CSV injection: a leading `'`); JSON Lines carries the values unchanged.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import sqlalchemy as sa

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
# What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FINISHED = (CallState.COMPLETED, CallState.FAILED, CallState.CANCELLED)


def neutralise(cell: str) -> str:
    """`cell`, made inert for a spreadsheet: one that would start a formula gets a `'`
    in front, which spreadsheets show as text and never evaluate."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, dict | list):
        return neutralise(json.dumps(value, ensure_ascii=False))
    return neutralise(str(value))


def call_record(batch_id: str, row: sa.Row[Any]) -> dict[str, Any]:
    """One call as the export (and the listing's `include=result`) shows it: the call's
    wire fields as GET .../calls/{jobId} has them, plus its attempts and metadata."""
    status = CallState(row.status)
    record: dict[str, Any] = {
        "jobId": job_id(batch_id, row.seq),
        "phone_number": row.phone_number,
        "status": wire_status(status),
        "startTime": row.started_at if status is not CallState.WAITING else None,
        "endTime": row.ended_at if status in _FINISHED else None,
        "duration": row.duration_s if status is CallState.COMPLETED else None,
        "attempts": row.attempt,
        "error": None,
        "metadata": json.loads(row.metadata),
        "result": None,
    }
    if status in (CallState.FAILED, CallState.CANCELLED):
        cancelled = "Batch cancelled" if status is CallState.CANCELLED else None
        record["error"] = row.error or cancelled
    if status is CallState.COMPLETED and row.result is not None:
        result = json.loads(row.result) if isinstance(row.result, str) else row.result
        record["result"] = result if isinstance(result, dict) else None
    return record


class CsvRows:
    """Formats records as CSV text. The metadata columns are those of the first record
    (every call of a batch comes from one CSV header, so they all share its keys)."""

    def __init__(self) -> None:
        self._keys: list[str] | None = None
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    def header(self, first: dict[str, Any] | None) -> None:
        self._keys = list(first["metadata"]) if first else []
        self._writer.writerow(
            [
                *CSV_COLUMNS,
                *(neutralise(f"metadata.{k}" if k in CSV_COLUMNS else k) for k in self._keys),
            ]
        )

    def rows(self, records: Sequence[dict[str, Any]]) -> None:
        if self._keys is None:
            self.header(records[0] if records else None)
        keys = self._keys or []
        for r in records:
            result = r["result"] or {}
            metadata = r["metadata"]
            self._writer.writerow(
                [
                    r["jobId"],
                    _text(r["phone_number"]),
                    r["status"],
                    "" if r["startTime"] is None else r["startTime"],
                    "" if r["endTime"] is None else r["endTime"],
                    "" if r["duration"] is None else r["duration"],
                    r["attempts"],
                    _text(r["error"]),
                    _text(result.get("outcome")),
                    _text(result.get("transcript")),
                    _text(result.get("summary")),
                    _text(result.get("data")),
                    *(_text(metadata.get(k)) for k in keys),
                ]
            )

    def take(self) -> bytes:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode("utf-8")


def _json_line(record: dict[str, Any]) -> str:
    """One JSON Lines row: absent values left out, as the API's call objects do."""
    present = {k: v for k, v in record.items() if v is not None}
    return json.dumps(present, ensure_ascii=False, separators=(",", ":")) + "\n"


async def stream(
    db: Database,
    batch_id: str,
    *,
    states: tuple[CallState, ...] | None,
    fmt: ExportFormat,
    chunk_rows: int = CHUNK_ROWS,
) -> AsyncIterator[bytes]:
    """The export's bytes, chunk by chunk. The caller has checked the batch's workspace."""
    csv_rows = CsvRows() if fmt == "csv" else None
    after = -1
    while True:
        async with db.read() as conn:
            rows = await calls.after(
                conn, batch_id, after_seq=after, states=states, limit=chunk_rows
            )
        records = [call_record(batch_id, r) for r in rows]
        if csv_rows is not None:
            csv_rows.rows(records)
            chunk = csv_rows.take()
        else:
            chunk = "".join(map(_json_line, records)).encode("utf-8")
        if chunk:
            yield chunk
        if len(rows) < chunk_rows:
            return
        after = rows[-1].seq
