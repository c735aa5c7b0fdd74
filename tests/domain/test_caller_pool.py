"""The caller-number pool's rule: a retry keeps its number, local presence, rotation, and
each number's own limits."""

from __future__ import annotations

import pytest

from dialbatch.domain.caller_pool import (
    DAY_MS,
    MAX_WAIT_MS,
    PACE_MARGIN_MS,
    CallerLimit,
    CallerPool,
    InvalidPool,
    choose,
    free_at,
    local_key,
    parse_limits,
)

NY = "+12125550100"
LA = "+13105550100"
DC = "+12025550100"
POOL = CallerPool((NY, LA, DC))
NOW = 1_800_000_000_000


def test_local_presence_is_the_area_code_in_north_america_and_the_area_elsewhere() -> None:
    assert local_key("+12125551234") == local_key(NY) == "+1212"
    assert local_key("+13105551234") != local_key(NY)
    assert local_key("+442071234567") == local_key("+442079460000") == "+44 20"
    assert local_key("+441612345678") != local_key("+442071234567")  # Manchester, London
    assert local_key("not a number") is None


def test_a_recipient_in_212_gets_the_pools_212_number() -> None:
    starts: dict[str, list[int]] = {NY: [NOW - 10], LA: [], DC: []}  # 212 was used last
    choice = choose(POOL, "+12125559999", None, starts, NOW)
    assert choice is not None and (choice.number, choice.why, choice.at) == (NY, "local", NOW)


def test_without_a_local_number_the_least_recently_used_is_taken() -> None:
    starts = {NY: [NOW - 30], LA: [NOW - 10], DC: [NOW - 20]}
    choice = choose(POOL, "+14155550000", None, starts, NOW)
    assert choice is not None and (choice.number, choice.why) == (NY, "rotation")


def test_rotation_goes_round_the_pool() -> None:
    starts: dict[str, list[int]] = {n: [] for n in POOL.numbers}
    used = []
    for i in range(6):
        choice = choose(POOL, "+14155550000", None, starts, NOW + i)
        assert choice is not None
        used.append(choice.number)
        starts[choice.number].append(NOW + i)
    assert used == [NY, LA, DC, NY, LA, DC]


def test_a_retry_keeps_the_first_dials_number_even_when_another_is_local() -> None:
    starts: dict[str, list[int]] = {NY: [], LA: [NOW - 5], DC: []}
    choice = choose(POOL, "+12125559999", LA, starts, NOW)
    assert choice is not None and (choice.number, choice.why) == (LA, "first")


def test_a_retry_whose_number_left_the_pool_follows_the_rule() -> None:
    choice = choose(POOL, "+12125559999", "+19995550100", {}, NOW)
    assert choice is not None and choice.number == NY


def test_a_number_at_its_per_second_limit_is_waited_for_not_replaced() -> None:
    pool = CallerPool((NY, LA), {NY: CallerLimit(calls_per_second=1)})
    starts = {NY: [NOW - 300], LA: []}
    choice = choose(pool, "+12125559999", None, starts, NOW)
    assert choice is not None
    assert (choice.number, choice.at) == (NY, NOW - 300 + 1000 + PACE_MARGIN_MS)


def test_a_number_at_its_daily_limit_is_passed_over() -> None:
    pool = CallerPool((NY, LA), {NY: CallerLimit(per_day=2)})
    starts = {NY: [NOW - 3_600_000, NOW - 60_000], LA: [NOW - 1]}
    choice = choose(pool, "+12125559999", None, starts, NOW)
    assert choice is not None and (choice.number, choice.why, choice.at) == (LA, "rotation", NOW)


def test_when_every_number_is_spent_for_the_day_the_dial_waits_for_the_first_to_free() -> None:
    pool = CallerPool((NY, LA), {NY: CallerLimit(per_day=1), LA: CallerLimit(per_day=1)})
    starts = {NY: [NOW - 1000], LA: [NOW - 2000]}
    choice = choose(pool, "+14155550000", None, starts, NOW)
    assert choice is not None and (choice.number, choice.at) == (LA, NOW - 2000 + DAY_MS)
    assert choice.at - NOW > MAX_WAIT_MS


def test_free_at_counts_each_limit_over_its_window() -> None:
    limit = CallerLimit(calls_per_second=2, per_day=3)
    assert free_at([], limit, NOW) == NOW
    assert free_at([NOW - 100], limit, NOW) == NOW  # one of two this second
    assert free_at([NOW - 200, NOW - 100], limit, NOW) == NOW - 200 + 1000 + PACE_MARGIN_MS
    day = [NOW - DAY_MS + 10, NOW - 50_000, NOW - 40_000]
    assert free_at(day, limit, NOW) == NOW + 10


def test_an_empty_pool_chooses_nothing_and_one_number_needs_no_ledger() -> None:
    assert choose(CallerPool(()), NY, None, {}, NOW) is None
    assert not CallerPool((NY,)).needs_ledger()
    assert CallerPool((NY,), {NY: CallerLimit(per_day=5)}).needs_ledger()
    assert CallerPool((NY, LA)).needs_ledger()


def test_limits_are_parsed_and_bad_ones_name_the_field() -> None:
    got = parse_limits({NY: {"callsPerSecond": 1, "perDay": 500}}, [NY, LA], "lim")
    assert got == {NY: CallerLimit(1, 500)}
    assert got[NY].to_json() == {"callsPerSecond": 1, "perDay": 500}
    bad = [
        ({NY: {"callsPerSecond": 0}}, f"lim.{NY}.callsPerSecond must be a whole number"),
        ({NY: {"perDay": 1.5}}, f"lim.{NY}.perDay"),
        ({NY: {"callsPerSecond": True}}, f"lim.{NY}.callsPerSecond"),
        ({NY: {"burst": 3}}, "unknown key 'burst'"),
        ({DC: {"perDay": 3}}, "not one of the agent's fromNumbers"),
        ({NY: 3}, "must be an object"),
        ([NY], "must be an object"),
    ]
    for raw, words in bad:
        with pytest.raises(InvalidPool, match=words.replace("+", r"\+")):
            parse_limits(raw, [NY, LA], "lim")
