"""JSON rows through the CSV pipeline: the same calls as the equivalent CSV, problems named
`calls[i]` (i from 0), and the array's shape checked first."""

from __future__ import annotations

import io
from typing import Any

import pytest

from dialbatch.ingest import CsvRejected, IngestOptions, json_rows, stream
from dialbatch.ingest.csv_reader import Chunk


def collect(calls: list[Any], **options: Any) -> tuple[list[tuple[int, str, str]], Any]:
    chunks: list[Chunk] = []
    result = json_rows.stream(calls, IngestOptions(**options), chunks.append, 2)
    return [row for chunk in chunks for row in chunk], result


def test_rows_become_the_same_calls_as_the_equivalent_csv() -> None:
    csv = b"phone_number,name,score\n+12025550100,Ann,1\n(202) 555-0101,Bob,\n"
    from_csv: list[Chunk] = []
    stream(io.BytesIO(csv), IngestOptions(default_region="US"), from_csv.append)
    rows, result = collect(
        [
            {"phone_number": "+12025550100", "name": "Ann", "score": 1},
            {"name": "Bob", "phone_number": "(202) 555-0101", "score": None},
        ],
        default_region="US",
    )
    assert rows == [row for chunk in from_csv for row in chunk]
    assert result.accepted == 2


def test_problems_name_the_element_from_zero() -> None:
    with pytest.raises(CsvRejected) as caught:
        collect([{"phone_number": "+12025550100"}, {"phone_number": "nope"}])
    problem = json_rows.problem_dict(caught.value.problems[0])
    assert problem["row"] == 1 and problem["name"] == "calls[1]"
    assert json_rows.message(caught.value).startswith("1 call is invalid; the first: calls[1]")


def test_duplicates_point_at_the_first_element() -> None:
    rows, result = collect([{"phone_number": "+12025550100"}] * 3, dedupe=True)
    assert len(rows) == 1 and result.duplicates_removed == 2
    assert json_rows.problem_dict(result.skipped[0])["reason"] == "duplicate of calls[0]"


@pytest.mark.parametrize(
    ("calls", "words"),
    [
        ([], "calls is empty"),
        ([1], "calls[0]: must be an object, not int"),
        ([{"phone_number": "+12025550100", "tags": ["a"]}], "calls[0].tags: must be a string"),
        ([{"phone_number": "+12025550100", "Name": "a", "name": "b"}], "both 'Name' and 'name'"),
        ([{"name": "a"}], "no phone number column"),
    ],
)
def test_the_array_shape_is_checked_first(calls: list[Any], words: str) -> None:
    with pytest.raises(CsvRejected) as caught:
        collect(calls)
    assert words in json_rows.message(caught.value)


def test_the_row_limit() -> None:
    with pytest.raises(CsvRejected, match="at most 2"):
        collect([{"phone_number": "+12025550100"}] * 3, max_rows=2)
