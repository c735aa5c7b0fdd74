"""The `calls` array of a JSON batch creation, read through the CSV pipeline.

Each element is an object: `phone_number` (or one of the CSV's accepted aliases) and any
row variables. The keys of all elements, in the order first seen, play the CSV header's
part, and each element is one record, so the header rules, number validation, skipping,
dedupe, chunking and metadata encoding are the CSV's own (csv_reader.validate_records), not
a second validator. Values are stored as text, as a CSV's are: a number or boolean as its
JSON text, null as "". A key an element lacks reads "" in its metadata, as a short CSV
row does.

Problems name the element by its 0-based index in the array: `row` is the index and
`name` is `calls[i]`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from dialbatch.ingest.csv_reader import Chunk, IngestOptions, ScanResult, validate_records
from dialbatch.ingest.problems import MAX_REPORTED_PROBLEMS, CsvRejected, RowProblem, truncated

_SCALARS = (str, int, float, bool)


class JsonRecords:
    """The header (every key, first seen first), then one record per element."""

    def __init__(self, header: list[str], calls: list[dict[str, Any]]) -> None:
        self.header = header
        self.calls = calls
        self.row = -1

    def __iter__(self) -> Iterator[list[str]]:
        self.row = -1
        yield list(self.header)
        keys = self.header
        for i, call in enumerate(self.calls):
            self.row = i
            yield [_text(call.get(k)) for k in keys]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def header_of(calls: list[Any], options: IngestOptions) -> list[str]:
    """Check the array's shape and return its keys; CsvRejected (with per-element problems)
    for elements that are not flat objects."""
    if not calls:
        raise CsvRejected("calls is empty: send at least one call")
    if len(calls) > options.max_rows:
        raise CsvRejected(f"calls has {len(calls):,} elements; at most {options.max_rows:,}")
    keys: dict[str, None] = {}
    problems: list[RowProblem] = []
    count = 0
    for i, call in enumerate(calls):
        problem = _shape(i, call)
        if problem is not None:
            count += 1
            if len(problems) < MAX_REPORTED_PROBLEMS:
                problems.append(problem)
            continue
        keys.update(dict.fromkeys(call))
    if count:
        raise CsvRejected(_summary(problems, count), problems, count)
    if len(keys) > options.max_columns:
        raise CsvRejected(
            f"the calls use {len(keys)} different keys; at most {options.max_columns} are allowed"
        )
    seen: dict[str, str] = {}
    for key in keys:
        folded = key.strip().casefold()
        if folded in seen:
            raise CsvRejected(
                f"the calls use both {seen[folded]!r} and {key!r} as keys; keys must differ, "
                "ignoring case"
            )
        seen[folded] = key
    return list(keys)


def _shape(i: int, call: Any) -> RowProblem | None:
    if not isinstance(call, dict):
        return RowProblem(i, None, f"must be an object, not {_json_type(call)}")
    for key, value in call.items():
        if not key.strip():
            return RowProblem(i, key, "a key is empty")
        if value is not None and not isinstance(value, _SCALARS):
            reason = f"must be a string, number, boolean or null, not {_json_type(value)}"
            return RowProblem(i, key, reason, truncated(json.dumps(value)))
    return None


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def stream(
    calls: list[Any], options: IngestOptions, emit: Callable[[Chunk], None], chunk_size: int
) -> ScanResult:
    """Validate the array and emit chunks of calls, as csv_reader.stream does for a file."""
    header = header_of(calls, options)
    return validate_records(JsonRecords(header, calls), options, emit, chunk_size)


_DUPLICATE = re.compile(r"^duplicate of row (\d+)$")


def problem_dict(p: RowProblem) -> dict[str, object]:
    """A problem of element `p.row`, named as the JSON body names it."""
    reason = _DUPLICATE.sub(r"duplicate of calls[\1]", p.reason)
    return {
        "row": p.row,
        "name": f"calls[{p.row}]",
        "column": p.column,
        "reason": reason,
        "value": p.value,
    }


def message(exc: CsvRejected) -> str:
    """The rejection's message with elements named `calls[i]` instead of CSV rows."""
    if not exc.problems or not re.match(r"^[\d,]+ rows? (is|are) invalid", exc.message):
        return exc.message
    return _summary(exc.problems, exc.problem_count)


def _summary(problems: list[RowProblem], count: int) -> str:
    first = problem_dict(problems[0])
    where = str(first["name"]) + (f".{first['column']}" if first["column"] else "")
    calls = "1 call is" if count == 1 else f"{count:,} calls are"
    return f"{calls} invalid; the first: {where}: {first['reason']}"
