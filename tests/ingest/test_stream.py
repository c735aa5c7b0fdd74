"""`stream` (one pass, what the server uses) yields exactly what `scan` + `iter_calls`
(two passes) do, and rejects exactly the files `scan` rejects."""

from __future__ import annotations

import io

import pytest

from dialbatch.ingest import CsvRejected, IngestOptions, iter_calls, scan, stream

HEADER = "phone_number,first_name,note"


def csv(*rows: str) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


def two_pass(data: bytes, options: IngestOptions) -> list[tuple[int, str, str]]:
    f = io.BytesIO(data)
    result = scan(f, options)
    return [row for chunk in iter_calls(f, result, chunk_size=3) for row in chunk]


def one_pass(data: bytes, options: IngestOptions) -> list[tuple[int, str, str]]:
    out: list[tuple[int, str, str]] = []
    stream(io.BytesIO(data), options, out.extend, chunk_size=3)
    return out


GOOD = [f"+1202555{i:04d},Name{i},n{i}" for i in range(10)]


@pytest.mark.parametrize(
    ("rows", "options"),
    [
        (GOOD, IngestOptions()),
        ([*GOOD[:4], "12345,Bad,x", *GOOD[4:]], IngestOptions(skip_invalid=True)),
        ([*GOOD, GOOD[0], GOOD[3]], IngestOptions(dedupe=True)),
        (["(202) 555-0101,Ann", "202.555.0102,Bob,longer"], IngestOptions(default_region="US")),
    ],
)
def test_one_pass_equals_two_passes(rows: list[str], options: IngestOptions) -> None:
    data = csv(*rows)
    assert one_pass(data, options) == two_pass(data, options)


@pytest.mark.parametrize(
    "rows",
    [[*GOOD, "not a number,x,y"], [*GOOD, GOOD[2]], []],
)
def test_one_pass_rejects_what_scan_rejects(rows: list[str]) -> None:
    data = csv(*rows)
    with pytest.raises(CsvRejected) as two:
        scan(io.BytesIO(data), IngestOptions())
    emitted: list[tuple[int, str, str]] = []
    with pytest.raises(CsvRejected) as one:
        stream(io.BytesIO(data), IngestOptions(), emitted.extend, chunk_size=3)
    assert one.value.message == two.value.message
    assert [p.as_dict() for p in one.value.problems] == [p.as_dict() for p in two.value.problems]


def test_nothing_is_emitted_after_the_first_problem() -> None:
    data = csv(*GOOD[:3], "555,bad,x", *GOOD[3:])
    emitted: list[tuple[int, str, str]] = []
    with pytest.raises(CsvRejected):
        stream(io.BytesIO(data), IngestOptions(), emitted.extend, chunk_size=2)
    assert len(emitted) <= 3
