"""Streaming CSV ingest: uploads become validated calls, with row-numbered problems.

``stream`` reads an upload once, validating every record and handing over the calls to
insert as it goes (the server writes them into a transaction it rolls back if the file is
rejected). ``scan`` validates without producing calls; ``iter_calls`` then yields them
from a second read. See :mod:`.csv_reader`.
"""

from dialbatch.ingest.csv_reader import IngestOptions, ScanResult, iter_calls, scan, stream
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
    "stream",
]
