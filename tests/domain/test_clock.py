"""The clock every time decision reads: the system's, or one a test sets."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dialbatch.domain.clock import Clock, FixedClock, SystemClock, from_ms, to_ms


def test_system_clock_reads_the_wall_clock() -> None:
    clock: Clock = SystemClock()
    before = time.time_ns() // 1_000_000
    assert before <= clock.now_ms() <= time.time_ns() // 1_000_000


def test_fixed_clock_stands_still_until_moved() -> None:
    clock = FixedClock.at(datetime(2026, 3, 8, 7, 59, tzinfo=timezone(timedelta(hours=-5))))
    assert isinstance(clock, Clock)
    assert clock.now_ms() == to_ms(datetime(2026, 3, 8, 12, 59, tzinfo=UTC))
    assert clock.now_ms() == clock.now_ms()
    assert clock.advance(60_000) == to_ms(datetime(2026, 3, 8, 13, 0, tzinfo=UTC))
    clock.set(5)
    assert clock.now_ms() == 5


def test_ms_conversions_are_exact_and_refuse_naive_times() -> None:
    when = datetime(2026, 11, 1, 6, 0, 0, 123000, tzinfo=UTC)
    assert from_ms(to_ms(when)) == when
    assert to_ms(datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)) == -1
    with pytest.raises(ValueError, match="naive"):
        to_ms(datetime(2026, 1, 1))
