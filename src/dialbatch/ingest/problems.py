"""What is wrong with an upload, said with spreadsheet row numbers.

A user fixes a CSV in a spreadsheet, so every problem names the row as the spreadsheet shows it
(the header is row 1) and the column by its header name. Reports are capped: a file with 300k bad
rows yields the first 100 problems and the total count, not a 300k-item error body.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_REPORTED_PROBLEMS = 100
MAX_VALUE_CHARS = 100


@dataclass(frozen=True)
class RowProblem:
    """One record that cannot become a call, and why."""

    row: int  # spreadsheet row number: the header is row 1, the first data record row 2
    column: str | None
    reason: str
    value: str | None = None  # the offending value, truncated to MAX_VALUE_CHARS

    def as_dict(self) -> dict[str, object]:
        """The problem as a JSON-ready dict: ``row``, ``column``, ``reason``, ``value``."""
        return {"row": self.row, "column": self.column, "reason": self.reason, "value": self.value}


def truncated(value: str | None) -> str | None:
    return None if value is None else value[:MAX_VALUE_CHARS]


class CsvRejected(Exception):
    """The upload is unusable as a whole, or (unless skipping was asked for) has invalid rows.

    ``problems`` holds at most the first 100 row problems; ``problem_count`` counts them all.
    Problems of the file itself (encoding, header) come with an empty ``problems`` list.
    """

    def __init__(
        self, message: str, problems: list[RowProblem] | None = None, problem_count: int = 0
    ) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems or [])[:MAX_REPORTED_PROBLEMS]
        self.problem_count = max(problem_count, len(self.problems))


@dataclass
class ProblemLog:
    """The first problems in file order, and how many there were in all."""

    first: list[RowProblem] = field(default_factory=list)
    count: int = 0

    def add(self, problem: RowProblem) -> None:
        self.count += 1
        if len(self.first) < MAX_REPORTED_PROBLEMS:
            self.first.append(problem)
