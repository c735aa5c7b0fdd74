"""The columns kept on the call itself, not in its metadata: ``timezone``, ``consent_basis``
and ``consent_at``.

They steer the gate (a recipient's own zone) or prove something about the recipient
(consent); neither is a variable for the agent's conversation, so they are left out of
``metadata``. Each is optional; a header names them in any case. Every cell is validated
at ingest, and a bad one is a row problem like an invalid number.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialbatch.domain import consent
from dialbatch.domain.timezones import InvalidTimeZone, parse_timezone_column

TIMEZONE_COLUMN = "timezone"
CALL_COLUMNS = (TIMEZONE_COLUMN, consent.BASIS_COLUMN, consent.AT_COLUMN)

# What a kept row carries besides its number and metadata: (timezone, consent_basis,
# consent_at in epoch ms), each None when the row leaves it empty.
Extras = tuple[str | None, str | None, int | None]


class CellProblem(Exception):
    """A cell of one of these columns that cannot be kept."""

    def __init__(self, column: str, reason: str, value: str | None) -> None:
        super().__init__(reason)
        self.column, self.reason, self.value = column, reason, value


@dataclass(frozen=True)
class CallColumns:
    """Where the header has each column (None: absent), and its name as written."""

    timezone: int | None = None
    basis: int | None = None
    at: int | None = None
    names: tuple[str, str, str] = CALL_COLUMNS

    @classmethod
    def find(cls, names: list[str]) -> CallColumns:
        folded = [name.casefold() for name in names]
        found = [folded.index(key) if key in folded else None for key in CALL_COLUMNS]
        written = tuple(
            names[i] if i is not None else key for i, key in zip(found, CALL_COLUMNS, strict=True)
        )
        return cls(found[0], found[1], found[2], (written[0], written[1], written[2]))

    @property
    def any(self) -> bool:
        return self.timezone is not None or self.basis is not None or self.at is not None

    @property
    def has_consent(self) -> bool:
        return self.basis is not None and self.at is not None

    def indexes(self) -> set[int]:
        """The header positions these columns take (left out of metadata)."""
        return {i for i in (self.timezone, self.basis, self.at) if i is not None}


class CellReader:
    """Reads and validates a record's cells of these columns.

    ``require_consent``: a row without both consent cells is a problem. Zone names are
    checked once each (a list holds a few distinct ones), so a column on every row costs
    a dict lookup a row.
    """

    def __init__(self, columns: CallColumns, *, require_consent: bool, now_ms: int) -> None:
        self.columns = columns
        self._require = require_consent
        self._now_ms = now_ms
        self._zones: dict[str, str | None] = {}

    def read(self, fields: list[str]) -> Extras | None:
        """The row's extras (None when it has none); raises :class:`CellProblem`."""
        cols, width = self.columns, len(fields)
        zone = basis = at = None
        if cols.timezone is not None and cols.timezone < width:
            zone = self._zone(fields[cols.timezone])
        if cols.basis is not None and cols.basis < width:
            try:
                basis = consent.parse_basis(fields[cols.basis])
            except consent.InvalidConsent as exc:
                raise CellProblem(cols.names[1], str(exc), fields[cols.basis]) from None
        if cols.at is not None and cols.at < width:
            try:
                at = consent.parse_at(fields[cols.at], self._now_ms)
            except consent.InvalidConsent as exc:
                raise CellProblem(cols.names[2], str(exc), fields[cols.at]) from None
        if self._require and (basis is None or at is None):
            missing = cols.names[1] if basis is None else cols.names[2]
            raise CellProblem(missing, consent.MISSING, None)
        if zone is None and basis is None and at is None:
            return None
        return zone, basis, at

    def _zone(self, cell: str) -> str | None:
        try:
            return self._zones[cell]
        except KeyError:
            pass
        try:
            zone = parse_timezone_column(cell)
        except InvalidTimeZone as exc:
            raise CellProblem(self.columns.names[0], str(exc), cell) from None
        if len(self._zones) < 10_000:
            self._zones[cell] = zone
        return zone
