"""Frequency caps: rolling periods, exact at their edges, and only positive whole caps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialbatch.domain.caps import (
    DAY_MS,
    MONTH_MS,
    NO_CAPS,
    Caps,
    InvalidCaps,
    allowed,
    next_allowed_at,
    parse_caps,
)

NOW = 1_780_000_000_000
HOUR = 3_600_000


def test_three_per_day_allows_a_third_dial_and_not_a_fourth() -> None:
    caps = Caps(per_24h=3)
    two = [NOW - 5 * HOUR, NOW - HOUR]
    assert allowed(two, caps, NOW)
    assert next_allowed_at(two, caps, NOW) == NOW
    three = [NOW - 23 * HOUR, *two]
    assert not allowed(three, caps, NOW)
    # The oldest leaves the period exactly 24 hours after it was dialed.
    assert next_allowed_at(three, caps, NOW) == NOW + HOUR
    assert allowed(three, caps, NOW + HOUR)
    assert not allowed(three, caps, NOW + HOUR - 1)


def test_a_dial_exactly_one_period_ago_no_longer_counts() -> None:
    caps = Caps(per_24h=1)
    assert allowed([NOW - DAY_MS], caps, NOW)
    assert not allowed([NOW - DAY_MS + 1], caps, NOW)


def test_over_the_cap_waits_for_enough_dials_to_leave() -> None:
    caps = Caps(per_24h=2)
    dials = [NOW - 20 * HOUR, NOW - 10 * HOUR, NOW - 5 * HOUR, NOW - HOUR]  # 4, cap 2
    # Three must leave: the third oldest leaves at -5h + 24h.
    assert next_allowed_at(dials, caps, NOW) == NOW + 19 * HOUR
    assert allowed(dials, caps, NOW + 19 * HOUR)


def test_both_periods_must_allow() -> None:
    caps = Caps(per_24h=3, per_30d=4)
    dials = [NOW - 20 * DAY_MS, NOW - 10 * DAY_MS, NOW - 2 * DAY_MS, NOW - 3 * HOUR]
    assert not allowed(dials, caps, NOW)
    assert next_allowed_at(dials, caps, NOW) == NOW - 20 * DAY_MS + MONTH_MS
    dials = [NOW - 3 * HOUR, NOW - 2 * HOUR, NOW - HOUR]
    assert next_allowed_at(dials, caps, NOW) == NOW + 21 * HOUR


def test_dials_ahead_of_now_count() -> None:
    assert not allowed([NOW + 500], Caps(per_24h=1), NOW)
    assert next_allowed_at([NOW + 500], Caps(per_24h=1), NOW) == NOW + 500 + DAY_MS


def test_no_caps_allow_everything() -> None:
    assert allowed([NOW] * 1000, NO_CAPS, NOW)
    assert next_allowed_at([NOW] * 1000, NO_CAPS, NOW) == NOW


def test_parse_caps_json() -> None:
    assert parse_caps(None) == NO_CAPS
    assert parse_caps({"per24h": 3}) == Caps(per_24h=3)
    assert parse_caps({"per24h": 3, "per30d": 10}).to_json() == {"per24h": 3, "per30d": 10}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"per24h": 0}, "frequencyCaps.per24h must be at least 1"),
        ({"per30d": -2}, "frequencyCaps.per30d must be at least 1"),
        ({"per24h": 2.5}, "frequencyCaps.per24h must be a whole number"),
        ({"per24h": True}, "frequencyCaps.per24h must be a whole number"),
        ({"per24h": "3"}, "frequencyCaps.per24h must be a whole number"),
        ({"per24h": 10_001}, "at most 10000"),
        ({"perHour": 1}, "unknown frequencyCaps fields"),
        ([3], "must be a JSON object"),
    ],
)
def test_bad_caps_are_refused(raw: object, message: str) -> None:
    with pytest.raises(InvalidCaps) as caught:
        parse_caps(raw)
    assert message in str(caught.value)


def test_caps_built_in_code_are_checked_too() -> None:
    with pytest.raises(InvalidCaps):
        Caps(per_24h=0)


@settings(max_examples=300, deadline=None)
@given(
    offsets=st.lists(st.integers(-HOUR, 31 * DAY_MS), max_size=12),
    per_24h=st.one_of(st.none(), st.integers(1, 4)),
    per_30d=st.one_of(st.none(), st.integers(1, 8)),
)
def test_next_allowed_at_is_the_earliest_allowed_instant(
    offsets: list[int], per_24h: int | None, per_30d: int | None
) -> None:
    caps = Caps(per_24h=per_24h, per_30d=per_30d)
    dials = [NOW - o for o in offsets]
    at = next_allowed_at(dials, caps, NOW)
    assert at >= NOW
    assert allowed(dials, caps, at)
    assert (at == NOW) == allowed(dials, caps, NOW)
    if at > NOW:
        assert not allowed(dials, caps, at - 1)
