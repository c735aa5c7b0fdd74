"""The header row: which delimiter, which column holds the number, which columns are metadata.

The contract names the phone column ``phone_number``. Spreadsheets made by hand often call it
something else, so a few common names are accepted, but only when ``phone_number`` is absent and
exactly one of them is present: dialing the wrong column is worse than asking for a rename.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from dialbatch.ingest.problems import CsvRejected

PHONE_COLUMN = "phone_number"
# Accepted instead of ``phone_number`` when it is absent (matched trimmed, case-insensitively).
PHONE_COLUMN_ALIASES: tuple[str, ...] = (
    "phone",
    "phone number",
    "phonenumber",
    "mobile",
    "mobile_number",
    "telephone",
    "number",
    "to",
)
DELIMITERS = (",", ";", "\t")  # in order of preference when the header does not decide


@dataclass(frozen=True)
class Header:
    """The trimmed column names as written, and where the phone number is.

    ``names`` ends at the last named column; ``width`` also counts the empty trailing columns
    the header row had, which may stay in the file as long as they hold no value.
    """

    names: list[str]
    phone_index: int
    width: int

    @property
    def phone_column(self) -> str:
        return self.names[self.phone_index]

    def unnamed(self) -> list[int]:
        """Indexes of columns without a name: allowed only while they hold no value."""
        return [i for i, name in enumerate(self.names) if not name]


def detect_delimiter(line: str) -> str:
    """The delimiter that splits ``line`` (the header) into a phone column, else into most fields.

    csv.Sniffer guesses from frequencies and picks wrong on short headers; a header is the one
    line we know the shape of, so each candidate is simply tried.
    """

    def score(delimiter: str) -> tuple[bool, int]:
        fields = next(csv.reader([line], delimiter=delimiter), [])
        return bool(_phone_candidates(_trimmed(fields))), len(fields)

    return max(DELIMITERS, key=score)  # max keeps the first of equal scores


def parse_header(fields: list[str], max_columns: int) -> Header:
    """Check the header record; raise :class:`CsvRejected` saying what to fix."""
    names = _trimmed(fields)
    while names and not names[-1]:
        names.pop()  # trailing empty columns: Excel leaves them after deleted columns
    if len(names) > max_columns:
        raise CsvRejected(f"the file has {len(names)} columns; at most {max_columns} are allowed")
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        key = name.casefold()
        if not key:
            continue
        if key in seen:
            raise CsvRejected(
                f"duplicate column name {name!r} (columns {seen[key] + 1} and {index + 1});"
                " column names must differ, ignoring case"
            )
        seen[key] = index
    phone_index = _find_phone(names)
    if phone_index is None:
        found = ", ".join(name for name in names if name) or "none"
        raise CsvRejected(
            f"no phone number column: found columns {found}; name the column {PHONE_COLUMN}"
            f" (also accepted: {', '.join(PHONE_COLUMN_ALIASES)})"
        )
    return Header(names, phone_index, max(len(fields), len(names)))


def _trimmed(fields: list[str]) -> list[str]:
    return [field.strip() for field in fields]


def _phone_candidates(names: list[str]) -> list[int]:
    keys = [name.casefold() for name in names]
    if PHONE_COLUMN in keys:
        return [keys.index(PHONE_COLUMN)]
    return [i for i, key in enumerate(keys) if key in PHONE_COLUMN_ALIASES]


def _find_phone(names: list[str]) -> int | None:
    aliases = _phone_candidates(names)
    if len(aliases) > 1:
        listed = ", ".join(names[i] for i in aliases)
        raise CsvRejected(
            f"several columns could hold the phone number ({listed}):"
            f" name the one to dial {PHONE_COLUMN}"
        )
    return aliases[0] if aliases else None
