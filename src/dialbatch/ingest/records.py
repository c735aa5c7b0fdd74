"""CSV records with their spreadsheet row numbers, as both ingest passes read them.

Row numbers count records, not physical lines (a quoted value may span lines), and they count
blank records too, because a spreadsheet shows those as rows: the problem a user is told about
must be on the row the spreadsheet shows. Blank records (no line content, or only empty values)
are skipped and never become calls.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from typing import Protocol

from dialbatch.ingest.header import detect_delimiter
from dialbatch.ingest.text import END_OF_INPUT


class RecordSource(Protocol):
    """Records to validate: the header first, then the data records; ``row`` names the
    latest one in problems (a spreadsheet row for a CSV, an array index for JSON)."""

    row: int

    def __iter__(self) -> Iterator[list[str]]: ...


class UnclosedQuote(Exception):
    """The last record opens a quoted value that the file never closes."""


class Records:
    """Iterates over the non-blank records; ``row`` is the row number of the latest one."""

    def __init__(self, lines: Iterator[str], delimiter: str | None = None) -> None:
        peeked = _up_to_first_content(lines)
        if delimiter is None:
            delimiter = detect_delimiter(peeked[-1]) if peeked else ","
        self.delimiter = delimiter
        self.row = 0
        self._reader = csv.reader(itertools.chain(peeked, lines), delimiter=delimiter)

    def __iter__(self) -> Iterator[list[str]]:
        for fields in self._reader:
            self.row += 1
            if not fields:
                continue
            if "\x00" in fields[-1]:  # END_OF_INPUT: NUL is refused in the text itself
                if fields == [END_OF_INPUT[0]]:
                    return
                raise UnclosedQuote
            if fields[0].strip() or any(field.strip() for field in fields):
                yield fields


def _up_to_first_content(lines: Iterator[str]) -> list[str]:
    """The lines up to the first with content (the header's first line), to choose a delimiter."""
    peeked: list[str] = []
    for line in lines:
        peeked.append(line)
        if line != END_OF_INPUT and line.strip(" \t\r\n,;"):
            break
    return peeked
