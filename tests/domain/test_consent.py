"""Reading a consent record's cells: the basis as text, the time as ISO 8601 with a zone or
epoch milliseconds, never in the future."""

from __future__ import annotations

import pytest

from dialbatch.domain.consent import FUTURE_SLACK_MS, InvalidConsent, parse_at, parse_basis

NOW = 1_800_000_000_000
JAN31 = 1738314000000  # 2025-01-31T09:00:00Z


@pytest.mark.parametrize(
    "text",
    ["2025-01-31T09:00:00Z", "2025-01-31T09:00:00z", "2025-01-31T10:00:00+01:00",
     " 2025-01-31 04:00:00-05:00 ", str(JAN31)],
)  # fmt: skip
def test_the_time_reads_iso_with_a_zone_or_epoch_ms(text: str) -> None:
    assert parse_at(text, NOW) == JAN31


def test_empty_cells_are_none() -> None:
    assert parse_at("  ", NOW) is None
    assert parse_basis("  ") is None
    assert parse_basis(" written, web form ") == "written, web form"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("2025-01-31T09:00:00", "no time zone"),
        ("2025-01-31", "no time zone"),
        ("last tuesday", "is not an ISO 8601"),
        ("9" * 41, "must be an ISO 8601"),
    ],
)
def test_a_bad_time_says_what_to_write(text: str, words: str) -> None:
    with pytest.raises(InvalidConsent, match=words):
        parse_at(text, NOW)


def test_a_time_in_the_future_is_refused_beyond_a_little_clock_skew() -> None:
    assert parse_at(str(NOW + FUTURE_SLACK_MS), NOW) == NOW + FUTURE_SLACK_MS
    with pytest.raises(InvalidConsent, match="in the future"):
        parse_at(str(NOW + FUTURE_SLACK_MS + 1), NOW)


def test_a_basis_is_at_most_500_characters() -> None:
    assert parse_basis("x" * 500) == "x" * 500
    with pytest.raises(InvalidConsent):
        parse_basis("x" * 501)
