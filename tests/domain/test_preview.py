"""The preview of a batch: the run estimate's arithmetic and the time zone counts."""

from __future__ import annotations

import pytest

from dialbatch.domain.preview import WindowCounts, estimate_run, window_counts, zone_counts
from dialbatch.domain.windows import CallingWindow
from tests.domain._time import NEW_YORK, local


def test_a_slow_rate_binds_before_the_concurrency_cap() -> None:
    run = estimate_run(100, max_active=20, calls_per_second=1, slot_s=5)
    assert run.limited_by == "rate" and run.calls_per_second == 1
    assert run.seconds == pytest.approx(99 + 5)


def test_long_calls_make_the_cap_bind() -> None:
    run = estimate_run(10_000, max_active=20, calls_per_second=5, slot_s=60)
    assert run.limited_by == "concurrency"
    assert run.calls_per_second == pytest.approx(20 / 60)
    assert run.seconds == pytest.approx(9_999 * 3 + 60)


def test_nothing_to_call_takes_no_time() -> None:
    assert estimate_run(0, 20, 5, 60).seconds == 0
    assert estimate_run(1, 20, 5, 60).seconds == 60


def test_zone_counts_group_numbers_by_their_candidates() -> None:
    zones, unknown = zone_counts(
        ["+12025550100", "+12025550101", None, "+12085550123", "+442079460000"]
    )
    assert zones == [
        (("America/New_York",), 2),
        (("America/Boise", "America/Los_Angeles"), 1),
        (("Europe/London",), 1),
    ]
    assert unknown == 0


def test_window_counts_ask_the_gate_once_per_zone_group() -> None:
    window = CallingWindow.every_day("08:00", "21:00")
    zones, unknown = zone_counts(
        ["+12025550100", "+12025550101", "+12135550123", "+80012345678", None]
    )
    at = local(NEW_YORK, 2026, 6, 10, 9, 0)  # 6:00 in Los Angeles
    counts = window_counts(zones, unknown, window, at)
    assert (counts.outside, counts.refused) == (1, 1)  # Los Angeles waits; +800 has no zone
    assert window_counts(zones, unknown, None, at) == WindowCounts(0, 0)
