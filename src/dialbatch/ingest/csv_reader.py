"""Streaming CSV ingest in two passes: validate everything, then yield the calls.

The contract validates every record before a batch exists, and an upload may be 20 MB with
300k rows, so nothing here holds a row as a dict. Pass 1 (:func:`scan`) parses and validates the
whole file and keeps one E.164 string (or None) per record. Pass 2 (:func:`iter_calls`) parses
the same bytes the same way and yields the kept rows, in chunks, for the store to insert; record
k of pass 2 is record k of pass 1.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import BinaryIO

from dialbatch.domain.ids import now_ms
from dialbatch.domain.phone import PhoneNormalizer
from dialbatch.ingest.call_columns import CallColumns, CellReader, Extras
from dialbatch.ingest.header import Header, parse_header
from dialbatch.ingest.problems import CsvRejected, ProblemLog, RowProblem
from dialbatch.ingest.records import Records, RecordSource, UnclosedQuote
from dialbatch.ingest.text import NotText, not_text, text_lines
from dialbatch.ingest.validation import RowValidator

_UNCLOSED = 'a quoted value is never closed (a " without its closing ")'


@dataclass(frozen=True)
class IngestOptions:
    """How to read an upload. ``default_region`` applies to numbers written without "+"."""

    default_region: str | None = None
    skip_invalid: bool = False  # skip invalid rows (and report them) instead of rejecting the file
    dedupe: bool = False  # keep the first row of each number, skip later ones
    max_rows: int = 1_000_000
    max_columns: int = 200
    # The workspace's suppression list (E.164 number -> reason): such rows are invalid.
    suppressed: Mapping[str, str] = field(default_factory=dict)
    # Rows without consent_basis and consent_at are invalid (requireConsent).
    require_consent: bool = False


@dataclass
class ScanResult:
    """What pass 1 found; :func:`iter_calls` needs it to read the file again.

    ``skipped_count`` counts every record that will not become a call (invalid rows skipped with
    ``skip_invalid``, duplicates removed with ``dedupe``); ``duplicates_removed`` is the part of
    it that repeated an earlier number. ``header`` is trimmed and ends at the last named column;
    an empty name marks a column without a name (and without values), which is left out of
    metadata, as are the call columns (``call_columns``: timezone and consent). With a
    ``timezone`` column, ``zones`` holds each record's zone (None: none given, or skipped).
    """

    header: list[str]
    phone_column: str
    accepted: int
    phones: list[str | None]  # per data record in file order: E.164, or None when skipped
    skipped: list[RowProblem] = field(default_factory=list)
    skipped_count: int = 0
    duplicates_removed: int = 0
    suppressed_rows: int = 0  # of the rows not taken, those on the suppression list
    encoding: str = "utf-8"
    delimiter: str = ","
    call_columns: CallColumns = field(default_factory=CallColumns)
    zones: list[str | None] = field(default_factory=list)


# (seq, e164, metadata_json) rows in file order; with call columns in the header
# (call_columns.py), (seq, e164, metadata_json, extras), extras None where all are empty.
CallRow = tuple[int, str, str] | tuple[int, str, str, Extras | None]
Chunk = list[CallRow]


def scan(f: BinaryIO, options: IngestOptions) -> ScanResult:
    """Pass 1: parse and validate the whole file, writing nothing.

    Raises :class:`CsvRejected` when the file is unusable, when no row would remain, or (unless
    ``options.skip_invalid``) when any row is invalid. Raises ``ValueError`` for an unknown
    ``options.default_region``.
    """
    return _read(f, options, None, 0)


def iter_calls(f: BinaryIO, scan: ScanResult, chunk_size: int = 5000) -> Iterator[Chunk]:
    """Pass 2: yield ``(seq, e164, metadata_json)`` for the kept rows, in chunks, in file order
    (with the row's extras as a fourth item when the header has call columns).

    ``seq`` runs from 0 to ``scan.accepted - 1``. ``metadata_json`` maps every named non-phone
    column (header name as written) to the row's value as written, "" where the row is short.
    """
    phones, total = scan.phones, len(scan.phones)
    call_row = _call_row(scan.header, scan.phone_column, scan.call_columns)
    cells = CellReader(scan.call_columns, require_consent=False, now_ms=now_ms())
    changed = RuntimeError("the file changed between scan() and iter_calls()")
    seq, seen, chunk = 0, 0, []
    with text_lines(f, check=False) as (encoding, lines):  # scan() checked the text
        records = iter(Records(lines, scan.delimiter))
        if encoding != scan.encoding or next(records, None) is None:  # skips the header
            raise changed
        try:
            for fields in records:
                if seen == total:
                    raise changed
                e164 = phones[seen]
                seen += 1
                if e164 is None:
                    continue
                extras = cells.read(fields) if scan.call_columns.any else None
                chunk.append(call_row(seq, e164, fields, extras))
                seq += 1
                if len(chunk) >= chunk_size:
                    yield chunk
                    chunk = []
        except UnclosedQuote:
            seen += 1  # the last record, which pass 1 rejected
    if chunk:
        yield chunk
    if seen != total or seq != scan.accepted:
        raise changed


def stream(
    f: BinaryIO, options: IngestOptions, emit: Callable[[Chunk], None], chunk_size: int = 5000
) -> ScanResult:
    """One pass instead of two: validate like :func:`scan`, and hand each chunk of kept rows,
    as :func:`iter_calls` would yield them, to ``emit`` as soon as it is complete.

    Made for writing while reading: the caller inserts the chunks into an open transaction
    and rolls it back if this raises :class:`CsvRejected` (which it does at the same points
    as :func:`scan`, possibly after chunks were emitted). Once a row problem makes the file's
    rejection certain, nothing more is emitted.
    """
    return _read(f, options, emit, chunk_size)


def _read(
    f: BinaryIO, options: IngestOptions, emit: Callable[[Chunk], None] | None, chunk_size: int
) -> ScanResult:
    normalize = PhoneNormalizer(options.default_region).normalize
    row = 1  # the row being read when the text turns out not to be text
    try:
        with text_lines(f) as (encoding, lines):
            records = Records(lines)
            try:
                result = _scan_records(records, options, normalize, emit, chunk_size)
            finally:
                row = records.row + 1
    except (UnicodeDecodeError, NotText) as exc:
        raise not_text(f, exc, row) from None
    result.encoding, result.delimiter = encoding, records.delimiter
    return result


def _tap(
    rows: Iterator[list[str]],
    check: RowValidator,
    header: Header,
    emit: Callable[[Chunk], None],
    chunk_size: int,
) -> Iterator[list[str]]:
    """Pass records to the validator and, once it has decided each (it appends exactly one
    entry to ``phones`` per record), collect the kept ones into emitted chunks."""
    phones, problems = check.phones, check.problems
    call_row = _call_row(header.names, header.phone_column, check.call_columns)
    chunk: Chunk = []
    seq = 0
    for fields in rows:
        yield fields
        e164 = phones[-1]
        if e164 is None or problems.count:
            continue
        chunk.append(call_row(seq, e164, fields, check.extras))
        seq += 1
        if len(chunk) >= chunk_size:
            emit(chunk)
            chunk = []
    if chunk and not problems.count:
        emit(chunk)


def validate_records(
    records: RecordSource,
    options: IngestOptions,
    emit: Callable[[Chunk], None],
    chunk_size: int = 5000,
) -> ScanResult:
    """:func:`stream` over records that are not a CSV file (the rows of a JSON body): the
    same header rules, row validation, skipping, dedupe and chunks, one pipeline."""
    normalize = PhoneNormalizer(options.default_region).normalize
    return _scan_records(records, options, normalize, emit, chunk_size)


def _scan_records(
    records: RecordSource,
    options: IngestOptions,
    normalize: Callable[[str], str],
    emit: Callable[[Chunk], None] | None = None,
    chunk_size: int = 5000,
) -> ScanResult:
    rows: Iterator[list[str]] = iter(records)
    try:
        header = parse_header(next(rows), options.max_columns)
    except StopIteration:
        raise CsvRejected("the file is empty") from None
    except (UnclosedQuote, csv.Error):
        raise CsvRejected(f"the header row has {_UNCLOSED}") from None
    check = RowValidator(
        header,
        records,
        normalize,
        skip_invalid=options.skip_invalid,
        dedupe=options.dedupe,
        max_rows=options.max_rows,
        suppressed=options.suppressed,
        require_consent=options.require_consent,
    )
    if emit is not None:
        rows = _tap(rows, check, header, emit, chunk_size)
    try:
        check.run(rows)
    except UnclosedQuote:
        check.reject(RowProblem(records.row, None, _UNCLOSED))
    except csv.Error:  # a quote that swallowed the rest of the file: nothing after it is known
        problem = RowProblem(records.row + 1, None, f"{_UNCLOSED}, or a value is far too long")
        check.problems.add(problem)
        raise _rejected(check.problems) from None
    if not check.phones:
        raise CsvRejected("the file has a header but no data rows")
    if check.problems.count:
        raise _rejected(check.problems)
    accepted = len(check.phones) - check.skipped.count
    if not accepted:
        raise CsvRejected(
            f"no valid rows: all {len(check.phones):,} data rows were skipped",
            check.skipped.first,
            check.skipped.count,
        )
    return ScanResult(
        header=header.names,
        phone_column=header.phone_column,
        accepted=accepted,
        phones=check.phones,
        skipped=check.skipped.first,
        skipped_count=check.skipped.count,
        duplicates_removed=check.duplicates,
        call_columns=check.call_columns,
        zones=check.zones,
        suppressed_rows=check.suppressed_rows,
    )


def _rejected(problems: ProblemLog) -> CsvRejected:
    first, count = problems.first[0], problems.count
    rows = "1 row is" if count == 1 else f"{count:,} rows are"
    where = f"row {first.row}" + (f", column {first.column}" if first.column else "")
    return CsvRejected(f"{rows} invalid; the first: {where}: {first.reason}", problems.first, count)


def _call_row(
    header: list[str], phone_column: str, columns: CallColumns
) -> Callable[[int, str, list[str], Extras | None], CallRow]:
    """``(seq, e164, metadata_json)`` for a kept record, ``(seq, e164, metadata_json,
    extras)`` when the header has call columns; a short record reads "" where it has no
    value."""
    metadata_json = _metadata_encoder(header, phone_column, columns.indexes())
    width = len(header)

    if not columns.any:

        def row(seq: int, e164: str, fields: list[str], extras: Extras | None) -> CallRow:
            if len(fields) < width:
                fields += [""] * (width - len(fields))
            return seq, e164, metadata_json(fields)

        return row

    def row_with_extras(seq: int, e164: str, fields: list[str], extras: Extras | None) -> CallRow:
        if len(fields) < width:
            fields += [""] * (width - len(fields))
        return seq, e164, metadata_json(fields), extras

    return row_with_extras


def _metadata_encoder(
    header: list[str], phone_column: str, left_out: set[int]
) -> Callable[[list[str]], str]:
    """``json.dumps({name: value, ...}, separators=(",", ":"), ensure_ascii=False)``, faster.

    The keys are fixed for the whole file, so they are encoded once into a %-template.
    """
    indexes = [
        i for i, name in enumerate(header) if name and name != phone_column and i not in left_out
    ]
    if not indexes:
        return lambda fields: "{}"
    escape = json.encoder.encode_basestring  # what json.dumps uses when ensure_ascii=False
    template = "{" + ",".join(escape(header[i]).replace("%", "%%") + ":%s" for i in indexes) + "}"
    if len(indexes) == 1:
        only = indexes[0]
        return lambda fields: template % escape(fields[only])
    values = itemgetter(*indexes)
    return lambda fields: template % tuple(map(escape, values(fields)))
