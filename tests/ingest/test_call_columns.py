"""The call columns (`timezone`, `consent_basis`, `consent_at`): found in any case, left out
of metadata, validated per row, carried as each kept row's extras, identical in one pass and
two; `require_consent` refuses rows (or a file) without consent."""

from __future__ import annotations

import io

import pytest

from dialbatch.ingest import CsvRejected, IngestOptions, iter_calls, scan, stream
from dialbatch.ingest.call_columns import CallColumns, CellProblem, CellReader
from dialbatch.ingest.csv_reader import Chunk

A, B, C = "+12025550100", "+12025550101", "+12025550102"
NOW = 1_800_000_000_000
JAN31 = 1738314000000  # 2025-01-31T09:00:00Z


def csv(header: str, *rows: str) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def both(data: bytes, options: IngestOptions) -> Chunk:
    f = io.BytesIO(data)
    two = [row for chunk in iter_calls(f, scan(f, options), chunk_size=2) for row in chunk]
    one: Chunk = []
    stream(io.BytesIO(data), options, one.extend, chunk_size=2)
    assert one == two
    return one


def test_columns_are_found_in_any_case_and_keep_their_written_names() -> None:
    cols = CallColumns.find(["Phone", "TimeZone", "x", "CONSENT_AT"])
    assert (cols.timezone, cols.basis, cols.at) == (1, None, 3)
    assert cols.names == ("TimeZone", "consent_basis", "CONSENT_AT")
    assert cols.any and not cols.has_consent and cols.indexes() == {1, 3}
    assert not CallColumns.find(["phone_number", "name"]).any


def test_rows_carry_their_extras_and_metadata_leaves_the_columns_out() -> None:
    data = csv(
        "phone_number,name,timezone,consent_basis,consent_at",
        f"{A},Ana,America/Chicago,web form,2025-01-31T09:00:00Z",
        f"{B},Bo,,,",
        f"{C},Cy, Europe/London ,,{JAN31}",
    )
    assert both(data, IngestOptions()) == [
        (0, A, '{"name":"Ana"}', ("America/Chicago", "web form", JAN31)),
        (1, B, '{"name":"Bo"}', None),
        (2, C, '{"name":"Cy"}', ("Europe/London", None, JAN31)),
    ]


def test_a_file_without_the_columns_yields_rows_as_before() -> None:
    assert both(csv("phone_number,name", f"{A},Ana"), IngestOptions()) == [(0, A, '{"name":"Ana"}')]


def test_scan_keeps_each_records_zone_for_the_preview() -> None:
    data = csv("phone_number,timezone", f"{A},America/Denver", "bad,UTC", f"{B},")
    result = scan(io.BytesIO(data), IngestOptions(skip_invalid=True))
    assert result.phones == [A, None, B]
    assert result.zones == ["America/Denver", None, None]


@pytest.mark.parametrize(
    ("cells", "column", "words"),
    [
        ("Mars/Olympus,,", "timezone", "not an IANA time zone"),
        ("EST,,", "timezone", "not an IANA time zone"),
        ("-05:00,,", "timezone", "not an IANA time zone"),
        (",web,2025-01-31", "consent_at", "no time zone"),
        (",web,31/01/2025 09:00", "consent_at", "ISO 8601"),
        (",web,2999-01-01T00:00:00Z", "consent_at", "in the future"),
        ("," + "x" * 501 + ",", "consent_basis", "longer than 500"),
    ],
)
def test_a_bad_cell_is_a_row_problem_naming_its_column(cells: str, column: str, words: str) -> None:
    data = csv("phone_number,timezone,consent_basis,consent_at", f"{A},,,", f"{B},{cells}")
    with pytest.raises(CsvRejected) as caught:
        scan(io.BytesIO(data), IngestOptions())
    problem = caught.value.problems[0]
    assert (problem.row, problem.column) == (3, column)
    assert words in problem.reason
    kept = both(data, IngestOptions(skip_invalid=True))
    assert [row[1] for row in kept] == [A]


def test_require_consent_refuses_rows_without_both_cells() -> None:
    data = csv(
        "phone_number,consent_basis,consent_at",
        f"{A},web,2025-01-31T09:00:00Z",
        f"{B},,2025-01-31T09:00:00Z",
        f"{C},web,",
    )
    with pytest.raises(CsvRejected) as caught:
        scan(io.BytesIO(data), IngestOptions(require_consent=True))
    assert [(p.row, p.column) for p in caught.value.problems] == [
        (3, "consent_basis"),
        (4, "consent_at"),
    ]
    assert caught.value.problems[0].reason.startswith("no consent: consent_basis and consent_at")
    kept = both(data, IngestOptions(require_consent=True, skip_invalid=True))
    assert [row[1] for row in kept] == [A]
    assert len(both(data, IngestOptions())) == 3


def test_require_consent_refuses_a_file_without_the_columns() -> None:
    with pytest.raises(CsvRejected, match="requireConsent is on but the file has no"):
        scan(
            io.BytesIO(csv("phone_number,consent_basis", f"{A},web")),
            IngestOptions(require_consent=True),
        )


def test_the_reader_checks_each_zone_name_once() -> None:
    reader = CellReader(CallColumns(timezone=0), require_consent=False, now_ms=NOW)
    assert reader.read(["America/New_York"]) == ("America/New_York", None, None)
    assert reader.read([""]) is None
    with pytest.raises(CellProblem) as caught:
        reader.read(["Nowhere/Land"])
    assert caught.value.column == "timezone" and caught.value.value == "Nowhere/Land"
