"""Streaming CSV ingest: uploads become validated calls, with row-numbered problems.

``scan`` reads an upload once and validates every record without writing anything;
``iter_calls`` reads it again and yields the calls to insert. See :mod:`.csv_reader`.
"""

from dialbatch.ingest.csv_reader import IngestOptions, ScanResult, iter_calls, scan
from dialbatch.ingest.header import PHONE_COLUMN, PHONE_COLUMN_ALIASES
from dialbatch.ingest.problems import CsvRejected, RowProblem
from dialbatch.ingest.validation import MAX_FIELD_CHARS

__all__ = [
    "MAX_FIELD_CHARS",
    "PHONE_COLUMN",
    "PHONE_COLUMN_ALIASES",
    "CsvRejected",
    "IngestOptions",
    "RowProblem",
    "ScanResult",
    "iter_calls",
    "scan",
]
