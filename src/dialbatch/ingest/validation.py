"""Pass 1's verdict on each data record: the E.164 number it will call, or the problem.

This loop runs once per row of uploads of up to a million rows, so the common case (a record
of the header's width with a valid, new number) takes the fewest steps; anything unusual goes
through the slower checks that word the problem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from dialbatch.domain.ids import now_ms
from dialbatch.domain.phone import InvalidPhoneNumber
from dialbatch.ingest.call_columns import CallColumns, CellProblem, CellReader, Extras
from dialbatch.ingest.header import Header
from dialbatch.ingest.problems import CsvRejected, ProblemLog, RowProblem, truncated
from dialbatch.ingest.records import RecordSource

MAX_FIELD_CHARS = 10_000


class RowValidator:
    """Checks the records in file order; ``phones`` gets one entry per record (None: skipped).

    With ``skip_invalid`` invalid records are skipped and logged in ``skipped``, otherwise
    logged in ``problems``. A number on the workspace's suppression list (``suppressed``:
    E.164 number -> reason) is invalid in the same way. With ``dedupe`` (or
    ``skip_invalid``) a repeated number is skipped, logged in ``skipped`` and counted in
    ``duplicates``; otherwise it is a problem.

    The call columns (timezone, consent; call_columns.py) are read for each row with a valid
    number; a bad cell, or missing consent with ``require_consent``, makes the row invalid.
    ``extras`` holds the last kept row's values; ``zones`` (only with a ``timezone`` column)
    gets one entry per record, like ``phones``.
    """

    def __init__(
        self,
        header: Header,
        records: RecordSource,
        normalize: Callable[[str], str],
        *,
        skip_invalid: bool,
        dedupe: bool,
        max_rows: int,
        suppressed: Mapping[str, str] | None = None,
        require_consent: bool = False,
    ) -> None:
        self.phones: list[str | None] = []
        self.problems = ProblemLog()
        self.skipped = ProblemLog()
        self.duplicates = 0
        self.suppressed_rows = 0  # rejected for a number on the suppression list
        self._header = header
        self._records = records
        self._normalize = normalize
        self._skip_invalid = skip_invalid
        self._skip_duplicates = dedupe or skip_invalid
        self._max_rows = max_rows
        self._seen: dict[str, int] = {}
        self._suppressed = suppressed or {}
        self.call_columns = CallColumns.find(header.names)
        if require_consent and not self.call_columns.has_consent:
            raise CsvRejected(
                "requireConsent is on but the file has no consent_basis and consent_at"
                " columns: add them (the basis of each recipient's consent, and when it"
                " was given, e.g. 2025-01-31T09:00:00Z)"
            )
        self._cells = (
            CellReader(self.call_columns, require_consent=require_consent, now_ms=now_ms())
            if self.call_columns.any
            else None
        )
        self.extras: Extras | None = None
        self.zones: list[str | None] = []
        self._track_zones = self.call_columns.timezone is not None

    def run(self, rows: Iterable[list[str]]) -> None:
        """Check every record of ``rows`` (an iterator over ``records``, header consumed)."""
        phones, records, normalize, seen = self.phones, self._records, self._normalize, self._seen
        suppressed, cells, zones = self._suppressed, self._cells, self.zones
        append = phones.append
        phone_at, phone_column = self._header.phone_index, self._header.phone_column
        named, max_rows = len(self._header.names), self._max_rows
        careful = bool(self._header.unnamed())
        for fields in rows:
            if len(phones) >= max_rows:
                raise CsvRejected(f"the file has more than {max_rows:,} data rows")
            if careful or len(fields) > named or max(map(len, fields)) > MAX_FIELD_CHARS:
                problem = self._structure(fields)
                if problem is not None:
                    self.reject(problem)
                    continue
            raw = fields[phone_at] if phone_at < len(fields) else ""
            try:
                e164 = normalize(raw)
            except InvalidPhoneNumber as exc:
                self.reject(RowProblem(records.row, phone_column, exc.reason, truncated(raw)))
                continue
            if suppressed and e164 in suppressed:
                self.suppressed_rows += 1
                reason = suppressed[e164]
                why = (
                    f"number is on the suppression list ({reason})"
                    if reason
                    else ("number is on the suppression list")
                )
                self.reject(RowProblem(records.row, phone_column, why, truncated(raw)))
                continue
            if cells is not None:
                try:
                    self.extras = cells.read(fields)
                except CellProblem as exc:
                    self.reject(
                        RowProblem(records.row, exc.column, exc.reason, truncated(exc.value))
                    )
                    continue
            first = seen.setdefault(e164, records.row)
            if first == records.row:
                append(e164)
                if self._track_zones:
                    zones.append(self.extras[0] if self.extras is not None else None)
            else:
                self._duplicate(first, raw)

    def reject(self, problem: RowProblem) -> None:
        """Record ``problem`` for the current record, which will not become a call."""
        (self.skipped if self._skip_invalid else self.problems).add(problem)
        self.phones.append(None)
        if self._track_zones:
            self.zones.append(None)

    def _duplicate(self, first: int, raw: str) -> None:
        problem = RowProblem(
            self._records.row,
            self._header.phone_column,
            f"duplicate of row {first}",
            truncated(raw),
        )
        if not self._skip_duplicates:
            self.reject(problem)
            return
        self.duplicates += 1
        self.skipped.add(problem)
        self.phones.append(None)
        if self._track_zones:
            self.zones.append(None)

    def _structure(self, fields: list[str]) -> RowProblem | None:
        """Values beyond the header, in unnamed columns, or too long."""
        header, row, named = self._header, self._records.row, len(self._header.names)
        filled = [i for i in range(named, len(fields)) if fields[i].strip()]
        if filled and filled[0] < header.width:
            raise _unnamed_column(filled[0], row)
        if filled:
            reason = f"{filled[-1] + 1} values but the header has {header.width} columns"
            return RowProblem(row, None, reason)
        for i in header.unnamed():
            if i < len(fields) and fields[i].strip():
                raise _unnamed_column(i, row)
        longest = max(range(len(fields)), key=lambda i: len(fields[i]))
        if len(fields[longest]) > MAX_FIELD_CHARS:
            column = header.names[longest] if longest < named else None
            reason = f"value longer than {MAX_FIELD_CHARS:,} characters"
            return RowProblem(row, column, reason, truncated(fields[longest]))
        return None


def _unnamed_column(index: int, row: int) -> CsvRejected:
    return CsvRejected(
        f"column {index + 1} has no name in the header but has values (row {row});"
        " name the column or delete it"
    )
