"""Streaming CSV ingest: every rule of scan() and iter_calls(), on small in-memory files."""

from __future__ import annotations

import codecs
import csv
import io
import json
import tempfile

import pytest

from dialbatch.ingest import (
    MAX_FIELD_CHARS,
    PHONE_COLUMN_ALIASES,
    CsvRejected,
    IngestOptions,
    RowProblem,
    ScanResult,
    iter_calls,
    scan,
)

A, B, C = "+14155550123", "+14155550124", "+14155550125"
UK = "+447400123456"


def upload(text: str, encoding: str = "utf-8") -> io.BytesIO:
    return io.BytesIO(text.encode(encoding))


def ingest(
    text: str | bytes, chunk_size: int = 5000, **options: object
) -> tuple[ScanResult, list[tuple[int, str, str]]]:
    f = io.BytesIO(text) if isinstance(text, bytes) else upload(text)
    result = scan(f, IngestOptions(**options))  # type: ignore[arg-type]
    calls = [call for chunk in iter_calls(f, result, chunk_size) for call in chunk]
    return result, calls


def rejected(text: str | bytes, **options: object) -> CsvRejected:
    f = io.BytesIO(text) if isinstance(text, bytes) else upload(text)
    with pytest.raises(CsvRejected) as caught:
        scan(f, IngestOptions(**options))  # type: ignore[arg-type]
    return caught.value


def only_problem(text: str, **options: object) -> RowProblem:
    error = rejected(text, **options)
    assert error.problem_count == 1, error.problems
    return error.problems[0]


# --- the happy path and pass 2 ---------------------------------------------------------------


def test_rows_become_calls_with_metadata_in_file_order() -> None:
    result, calls = ingest(
        f"phone_number,first_name,last_name,email\n{A},Ana,Smith,ana@x.io\n{UK},Ben,Jones,b@y.uk\n"
    )
    assert result.header == ["phone_number", "first_name", "last_name", "email"]
    assert result.phone_column == "phone_number"
    assert (result.accepted, result.skipped_count, result.duplicates_removed) == (2, 0, 0)
    assert result.phones == [A, UK]
    assert (result.encoding, result.delimiter) == ("utf-8", ",")
    assert calls == [
        (0, A, '{"first_name":"Ana","last_name":"Smith","email":"ana@x.io"}'),
        (1, UK, '{"first_name":"Ben","last_name":"Jones","email":"b@y.uk"}'),
    ]


def test_metadata_is_exactly_json_dumps_of_the_row() -> None:
    header = ["phone_number", "name", "100%", "notes", 'say "hi"', "é"]
    values = ["Zoë 😀", "%s %d", 'line one\nline "two", three', "\t\\", ""]
    text = io.StringIO()
    csv.writer(text).writerows([header, [A, *values]])
    _, calls = ingest(text.getvalue())
    expected = dict(zip(header[1:], values, strict=True))
    assert calls[0][2] == json.dumps(expected, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(calls[0][2]) == expected


def test_metadata_keys_are_trimmed_and_values_kept_as_written() -> None:
    _, calls = ingest(f" phone_number , First Name ,notes\n{A}, Ana ,  \n")
    assert calls[0][2] == '{"First Name":" Ana ","notes":"  "}'


def test_phone_only_file_has_empty_metadata() -> None:
    _, calls = ingest(f"phone_number\n{A}\n")
    assert calls == [(0, A, "{}")]


def test_short_rows_get_empty_values() -> None:
    result, calls = ingest(f"phone_number,first_name,last_name\n{A},Ana\n{B}\n")
    assert result.accepted == 2
    assert [c[2] for c in calls] == [
        '{"first_name":"Ana","last_name":""}',
        '{"first_name":"","last_name":""}',
    ]


def test_calls_come_in_chunks_with_dense_seq() -> None:
    rows = "".join(f"+1415555012{i}\n" for i in range(5))
    f = upload("phone_number\n" + rows)
    result = scan(f, IngestOptions())
    chunks = list(iter_calls(f, result, chunk_size=2))
    assert [len(chunk) for chunk in chunks] == [2, 2, 1]
    assert [call[0] for chunk in chunks for call in chunk] == [0, 1, 2, 3, 4]


def test_default_region_reads_national_numbers() -> None:
    result, calls = ingest("phone_number\n(415) 555-0123\n1 415 555 0124\n", default_region="US")
    assert result.phones == [A, B]
    assert [c[1] for c in calls] == [A, B]


def test_file_is_read_incrementally_and_left_open() -> None:
    class Recording(io.BytesIO):
        sizes: list[int]

        def read(self, size: int | None = -1, /) -> bytes:
            self.sizes.append(-1 if size is None else size)
            return super().read(size)

        def read1(self, size: int | None = -1, /) -> bytes:
            self.sizes.append(-1 if size is None else size)
            return super().read1(size)

    body = "".join(f"+1415555{i:04d},{'x' * 50}\n" for i in range(2000))
    f = Recording(("phone_number,notes\n" + body).encode())
    f.sizes = []
    result = scan(f, IngestOptions(skip_invalid=True))
    assert sum(len(chunk) for chunk in iter_calls(f, result)) == result.accepted > 1000
    assert not f.closed
    assert f.sizes and all(0 < size <= 1 << 20 for size in f.sizes)


def test_iter_calls_notices_a_file_that_changed() -> None:
    result = scan(upload(f"phone_number\n{A}\n{B}\n"), IngestOptions())
    with pytest.raises(RuntimeError, match="changed"):
        list(iter_calls(upload(f"phone_number\n{A}\n"), result))


# --- encodings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "bom", "name"),
    [
        ("utf-8", codecs.BOM_UTF8, "utf-8-sig"),
        ("utf-16-le", codecs.BOM_UTF16_LE, "utf-16-le"),
        ("utf-16-be", codecs.BOM_UTF16_BE, "utf-16-be"),
    ],
)
def test_bom_selects_the_encoding(encoding: str, bom: bytes, name: str) -> None:
    text = f"phone_number\tname\r\n{A}\tRenée\r\n"
    result, calls = ingest(bom + text.encode(encoding))
    assert result.encoding == name
    assert result.header == ["phone_number", "name"]
    assert calls == [(0, A, '{"name":"Renée"}')]


def test_latin1_file_is_rejected_with_the_row() -> None:
    data = f"phone_number,name\n{A},Ana\n{B},Ren\xe9e\n".encode("latin-1")
    error = rejected(data)
    assert error.message.startswith("file is not a UTF-8 CSV text file")
    assert "row 3" in error.message
    assert "CSV UTF-8" in error.message


def test_nul_byte_is_rejected() -> None:
    error = rejected(f"phone_number,name\n{A},A\x00na\n".encode())
    assert error.message.startswith("file is not a UTF-8 CSV text file")
    assert "row 2" in error.message


def test_utf16_without_bom_is_rejected() -> None:
    error = rejected(f"phone_number\n{A}\n".encode("utf-16-le"))
    assert error.message.startswith("file is not a UTF-8 CSV text file")


def test_excel_workbook_is_rejected_with_a_hint() -> None:
    error = rejected(b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40)
    assert "Excel workbook" in error.message


# --- delimiters and line ends ----------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiter_is_detected_from_the_header(delimiter: str) -> None:
    text = delimiter.join(["name", "phone_number", "city"]) + "\n"
    text += delimiter.join(["Ana", A, "Paris, France"]) + "\n"
    result, calls = ingest(text.replace("Paris, France", '"Paris, France"'))
    assert result.delimiter == delimiter
    assert calls == [(0, A, '{"name":"Ana","city":"Paris, France"}')]


def test_delimiter_that_yields_the_phone_column_wins() -> None:
    result, _ = ingest(f"phone_number;name,surname\n{A};Ana,Smith\n")
    assert result.delimiter == ";"
    assert result.header == ["phone_number", "name,surname"]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_ends(newline: str) -> None:
    result, _ = ingest(newline.join(["phone_number,name", f"{A},Ana", f"{B},Ben"]) + newline)
    assert result.phones == [A, B]


def test_last_line_without_newline() -> None:
    result, _ = ingest(f"phone_number\n{A}\n{B}")
    assert result.phones == [A, B]


# --- the header ------------------------------------------------------------------------------


def test_header_names_are_trimmed_and_matched_ignoring_case() -> None:
    result, _ = ingest(f"  Phone_Number  , Name \n{A},Ana\n")
    assert result.phone_column == "Phone_Number"
    assert result.header == ["Phone_Number", "Name"]


@pytest.mark.parametrize("alias", PHONE_COLUMN_ALIASES)
def test_aliases_are_accepted_without_phone_number(alias: str) -> None:
    result, calls = ingest(f"name,{alias.upper()}\nAna,{A}\n")
    assert result.phone_column == alias.upper()
    assert calls == [(0, A, '{"name":"Ana"}')]


def test_phone_number_wins_over_an_alias() -> None:
    result, calls = ingest(f"mobile,phone_number\n{B},{A}\n")
    assert result.phone_column == "phone_number"
    assert calls == [(0, A, f'{{"mobile":"{B}"}}')]


def test_two_aliases_are_ambiguous() -> None:
    error = rejected(f"phone,mobile\n{A},{B}\n")
    assert "phone, mobile" in error.message
    assert "phone_number" in error.message


def test_missing_phone_column_says_what_was_found_and_what_is_accepted() -> None:
    error = rejected("name,email\nAna,a@x.io\n")
    assert "found columns name, email" in error.message
    assert "phone_number" in error.message
    assert all(alias in error.message for alias in PHONE_COLUMN_ALIASES)
    assert error.problems == []


def test_duplicate_column_names_ignoring_case() -> None:
    error = rejected(f"phone_number,Email,email\n{A},a,b\n")
    assert "duplicate column name 'email'" in error.message
    assert "columns 2 and 3" in error.message


def test_unnamed_column_with_values_is_rejected() -> None:
    error = rejected(f"phone_number,,name\n{A},,Ana\n{B},oops,Ben\n")
    assert "column 2 has no name" in error.message
    assert "row 3" in error.message


def test_unnamed_trailing_column_with_values_is_rejected() -> None:
    error = rejected(f"phone_number,name,\n{A},Ana,x\n")
    assert "column 3 has no name" in error.message


def test_empty_unnamed_columns_are_ignored() -> None:
    result, calls = ingest(f"phone_number,,name,,\n{A},,Ana,,\n{B},,Ben\n")
    assert result.header == ["phone_number", "", "name"]
    assert [c[2] for c in calls] == ['{"name":"Ana"}', '{"name":"Ben"}']


def test_too_many_columns() -> None:
    header = "phone_number," + ",".join(f"c{i}" for i in range(5))
    assert "6 columns; at most 5" in rejected(f"{header}\n{A}\n", max_columns=5).message
    assert ingest(f"{header}\n{A}\n", max_columns=6)[0].accepted == 1


def test_too_many_rows() -> None:
    text = f"phone_number\n{A}\n{B}\n{C}\n"
    assert "more than 2 data rows" in rejected(text, max_rows=2).message
    assert ingest(text, max_rows=3)[0].accepted == 3


@pytest.mark.parametrize("text", ["", "\n\n", "  \n,,\n", "\ufeff"])
def test_empty_file(text: str) -> None:
    assert rejected(text).message == "the file is empty"


@pytest.mark.parametrize("text", ["phone_number\n", "phone_number,name\n\n,\n"])
def test_header_without_data_rows(text: str) -> None:
    assert rejected(text).message == "the file has a header but no data rows"


def test_unclosed_quote_in_header() -> None:
    assert "never closed" in rejected(f'phone_number,"name\n{A},Ana\n').message


# --- row numbers and row problems ------------------------------------------------------------


def test_row_numbers_count_records_not_lines() -> None:
    text = f'phone_number,notes\n{A},"two\nlines"\n{B},ok\nnope,x\n'
    problem = only_problem(text)
    assert problem == RowProblem(4, "phone_number", "not a phone number", "nope")


def test_blank_rows_are_skipped_but_keep_their_spreadsheet_row_number() -> None:
    result, calls = ingest(f"phone_number,name\n\n{A},Ana\n,\n   \n{B},Ben\n")
    assert result.phones == [A, B]
    assert [c[0] for c in calls] == [0, 1]
    problem = only_problem(f"phone_number,name\n\n{A},Ana\n,\nbad,Ben\n")
    assert problem.row == 5


def test_invalid_phone_is_a_row_problem_with_the_reason() -> None:
    problem = only_problem(f"phone_number,name\n{A},Ana\n+1 415 555 012,Ben\n")
    assert problem == RowProblem(3, "phone_number", "too short for +1", "+1 415 555 012")


def test_empty_phone_is_a_row_problem() -> None:
    problem = only_problem(f"name,phone_number\nAna,{A}\nBen\n")
    assert problem == RowProblem(3, "phone_number", "empty", "")


def test_number_without_plus_needs_a_default_region() -> None:
    problem = only_problem("phone_number\n14155550123\n")
    assert "defaultCountry" in problem.reason
    assert ingest("phone_number\n14155550123\n", default_region="US")[0].phones == [A]


def test_problem_value_is_truncated() -> None:
    problem = only_problem("phone_number\n" + "1" * 300 + "\n")
    assert problem.value == "1" * 100


def test_more_values_than_header_columns() -> None:
    problem = only_problem(f"phone_number,name\n{A},Ana,extra\n")
    assert problem == RowProblem(2, None, "3 values but the header has 2 columns")


def test_empty_extra_values_are_tolerated() -> None:
    _, calls = ingest(f"phone_number,name\n{A},Ana,,\n")
    assert calls == [(0, A, '{"name":"Ana"}')]


def test_unclosed_quote_is_a_row_problem() -> None:
    problem = only_problem(f'phone_number,notes\n{A},ok\n{B},"never closed\n{C},x\n')
    assert problem.row == 3
    assert "never closed" in problem.reason


def test_unclosed_quote_swallowing_a_large_rest_rejects_the_file() -> None:
    rest = "".join(f"+1415555{i:04d},x\n" for i in range(10_000))  # > csv's 128 KiB field limit
    error = rejected(f'phone_number,notes\n{A},"open\n' + rest, skip_invalid=True)
    assert error.problems[-1].row == 2
    assert "never closed" in error.problems[-1].reason


def test_value_over_the_length_limit() -> None:
    long = "y" * (MAX_FIELD_CHARS + 1)
    problem = only_problem(f"phone_number,name,notes\n{A},Ana,{long}\n")
    assert problem.row == 2
    assert problem.column == "notes"
    assert problem.reason == "value longer than 10,000 characters"
    assert problem.value == "y" * 100
    assert ingest(f"phone_number,notes\n{A},{long[1:]}\n")[0].accepted == 1


def test_row_problem_as_dict_is_json_ready() -> None:
    problem = RowProblem(3, "phone_number", "too short", "+1 415")
    assert json.loads(json.dumps(problem.as_dict())) == {
        "row": 3,
        "column": "phone_number",
        "reason": "too short",
        "value": "+1 415",
    }


# --- rejecting, skipping, duplicates ---------------------------------------------------------


def test_any_invalid_row_rejects_the_file_by_default_listing_the_first_100() -> None:
    bad = "".join(f"bad{i}\n" for i in range(150))
    error = rejected(f"phone_number\n{A}\n{bad}")
    assert error.problem_count == 150
    assert len(error.problems) == 100
    assert error.problems[0].row == 3
    assert error.message == (
        "150 rows are invalid; the first: row 3, column phone_number: not a phone number"
    )


def test_skip_invalid_skips_and_reports_rows() -> None:
    result, calls = ingest(f"phone_number,name\n{A},Ana\nbad,Ben\n{B},Cy\n", skip_invalid=True)
    assert result.accepted == 2
    assert result.phones == [A, None, B]
    assert result.skipped == [RowProblem(3, "phone_number", "not a phone number", "bad")]
    assert result.skipped_count == 1
    assert calls == [(0, A, '{"name":"Ana"}'), (1, B, '{"name":"Cy"}')]


def test_skip_invalid_reports_the_first_100_and_counts_all() -> None:
    bad = "".join(f"bad{i}\n" for i in range(150))
    result, _ = ingest(f"phone_number\n{A}\n{bad}", skip_invalid=True)
    assert (result.accepted, result.skipped_count, len(result.skipped)) == (1, 150, 100)


def test_skip_invalid_still_rejects_when_nothing_remains() -> None:
    error = rejected("phone_number\nbad\nworse\n", skip_invalid=True)
    assert error.message == "no valid rows: all 2 data rows were skipped"
    assert error.problem_count == 2


def test_duplicate_is_a_row_problem_by_default() -> None:
    problem = only_problem(f"phone_number\n{A}\n{B}\n(415) 555-0123\n", default_region="US")
    assert problem == RowProblem(4, "phone_number", "duplicate of row 2", "(415) 555-0123")


def test_dedupe_keeps_the_first_and_counts_the_rest() -> None:
    result, calls = ingest(f"phone_number,n\n{A},1\n{B},2\n{A},3\n{A},4\n", dedupe=True)
    assert result.accepted == 2
    assert result.duplicates_removed == result.skipped_count == 2
    assert result.skipped[0] == RowProblem(4, "phone_number", "duplicate of row 2", A)
    assert calls == [(0, A, '{"n":"1"}'), (1, B, '{"n":"2"}')]


def test_dedupe_does_not_skip_invalid_rows() -> None:
    error = rejected(f"phone_number\n{A}\n{A}\nbad\n", dedupe=True)
    assert [p.row for p in error.problems] == [4]


def test_skip_invalid_also_skips_duplicates() -> None:
    result, _ = ingest(f"phone_number\n{A}\n{A}\nbad\n", skip_invalid=True)
    assert (result.accepted, result.skipped_count, result.duplicates_removed) == (1, 2, 1)


def test_a_skipped_row_does_not_claim_its_number() -> None:
    result, calls = ingest(f"phone_number,name\n{A},Ana,x\n{A},Ana\n", skip_invalid=True)
    assert result.phones == [None, A]
    assert result.duplicates_removed == 0
    assert [c[1] for c in calls] == [A]


def test_unknown_default_region() -> None:
    with pytest.raises(ValueError, match="unknown region"):
        scan(upload(f"phone_number\n{A}\n"), IngestOptions(default_region="XX"))


@pytest.mark.parametrize("max_size", [1, 1 << 20])  # on disk, in memory
def test_works_on_an_upload_spooled_to_memory_or_disk(max_size: int) -> None:
    with tempfile.SpooledTemporaryFile(max_size=max_size) as f:
        f.write(f"phone_number,name\r\n{A},Ana\r\n".encode())
        result = scan(f, IngestOptions())  # type: ignore[arg-type]
        assert list(iter_calls(f, result)) == [[(0, A, '{"name":"Ana"}')]]  # type: ignore[arg-type]
        assert not f.closed


def test_iter_calls_notices_a_file_that_grew() -> None:
    result = scan(upload(f"phone_number\n{A}\n"), IngestOptions())
    with pytest.raises(RuntimeError, match="changed"):
        list(iter_calls(upload(f"phone_number\n{A}\n{B}\n"), result))
