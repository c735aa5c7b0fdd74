"""The preview of a batch: the run estimate's arithmetic and the time zone counts."""

from __future__ import annotations

import pytest

from dialbatch.domain.preview import (
    WindowCounts,
    achieved_pace,
    estimate_run,
    estimate_windowed_run,
    slot_seconds,
    window_counts,
    zone_counts,
)
from dialbatch.domain.windows import CallingWindow, parse_calling_window
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


# -- a batch's own cap and a calling window (issue 11, item 7 and the validate acceptance) --

MON_9 = 1796634000000  # Monday 2026-12-07 09:00 UTC


def test_a_batch_cap_below_the_workspace_cap_binds() -> None:
    run = estimate_run(100, max_active=20, calls_per_second=5, slot_s=10, max_concurrency=2)
    assert run.limited_by == "batchConcurrency"
    assert run.calls_per_second == pytest.approx(0.2)
    # Above the workspace's cap it changes nothing.
    same = estimate_run(100, max_active=20, calls_per_second=5, slot_s=10, max_concurrency=50)
    assert same == estimate_run(100, max_active=20, calls_per_second=5, slot_s=10)


def test_a_window_open_throughout_changes_nothing() -> None:
    window = CallingWindow.every_day("00:00", "24:00", timezone="UTC")
    run = estimate_windowed_run([(("UTC",), 100)], 0, window, MON_9, 20, 1, 5)
    assert run.seconds == pytest.approx(estimate_run(100, 20, 1, 5).seconds)
    assert run.waiting_s == 0


def test_a_window_that_closes_mid_run_adds_the_closed_time() -> None:
    # 09:00-09:01 and 09:02-10:00 UTC: 100 calls at 1/s do 60 before 09:01, 40 after 09:02.
    window = parse_calling_window(
        {"timezone": "UTC", "days": {"mon": [["09:00", "09:01"], ["09:02", "10:00"]]}}
    )
    run = estimate_windowed_run([(("America/New_York",), 100)], 0, window, MON_9, 20, 1, 5)
    assert run.waiting_s == pytest.approx(60)
    assert run.seconds == pytest.approx(99 + 60 + 5)


def test_a_run_that_starts_before_the_window_waits_for_it() -> None:
    window = parse_calling_window({"timezone": "UTC", "days": {"mon": [["09:10", "18:00"]]}})
    run = estimate_windowed_run([(("UTC",), 11)], 0, window, MON_9, 20, 1, 2)
    assert run.waiting_s == pytest.approx(600)
    assert run.seconds == pytest.approx(600 + 10 + 2)


def test_recipient_windows_run_each_zone_in_its_own_hours() -> None:
    # 09:00-17:00 local: at 14:00 UTC New York (09:00) is open, Los Angeles (06:00) opens
    # at 17:00 UTC. 10 calls each at 1/s: New York's are done at once, then a 3 h wait.
    window = CallingWindow.every_day("09:00", "17:00")
    groups = [(("America/New_York",), 10), (("America/Los_Angeles",), 10)]
    run = estimate_windowed_run(groups, 3, window, MON_9 + 5 * 3600_000, 20, 1, 1)
    assert run.never_in_window == 3  # no known zone: never called
    assert run.waiting_s == pytest.approx(3 * 3600 - 10)
    assert run.seconds == pytest.approx(3 * 3600 + 9 + 1)


# -- the time a slot is held, learned from the pace the agent's latest batch achieved -------


def test_achieved_pace_leaves_pauses_out() -> None:
    starts = [i * 100 for i in range(30)] + [60_000 + 2_900 + i * 100 for i in range(30)]
    assert achieved_pace(starts) == pytest.approx(10.0)
    assert achieved_pace(starts[:5]) is None  # too few to say


def test_a_batch_that_kept_its_rate_says_nothing_beyond_the_dial() -> None:
    assert slot_seconds(1.0, pace_then=19.5, cap_then=20, calls_per_second=20) == 1.0
    assert slot_seconds(1.0, pace_then=None, cap_then=20, calls_per_second=20) == 1.0


def test_a_batch_held_back_by_the_cap_shows_how_long_a_slot_was_held() -> None:
    # 20 slots gave 65 dials/s: each was held 0.31 s, though the dials lasted 0.095 s.
    assert slot_seconds(0.095, pace_then=65, cap_then=20, calls_per_second=200) == pytest.approx(
        20 / 65
    )
    # It is never shorter than the dial itself.
    assert slot_seconds(5.0, pace_then=10, cap_then=20, calls_per_second=200) == 5.0


def test_a_batch_held_back_to_nine_tenths_of_its_rate_was_held_by_the_cap() -> None:
    # 20 slots gave 115 dials/s under a rate of 125/s: the cap, not the rate, set that pace,
    # and the next batch goes at it too (at 0.9 this was taken for the rate: 9 % short).
    slot = slot_seconds(0.06, pace_then=115, cap_then=20, calls_per_second=125)
    assert slot == pytest.approx(20 / 115)
    run = estimate_run(10_000, max_active=20, calls_per_second=125, slot_s=slot)
    assert (run.calls_per_second, run.limited_by) == (pytest.approx(115), "concurrency")


def test_the_pace_is_learned_from_the_steady_part_not_the_ramp_up() -> None:
    # The first 20 calls start 8 ms apart on the rate's schedule, every slot free; then a
    # slot frees every 10 ms: 100 dials/s is what the cap allowed.
    starts = [i * 8 for i in range(20)] + [160 + i * 10 for i in range(200)]
    assert achieved_pace(starts, ramp_up=20) == pytest.approx(100.0)
    assert achieved_pace(starts) > 100.5  # the ramp-up counted: faster than it went
    assert achieved_pace(starts[:30], ramp_up=20) is None  # too few left to say


def test_the_run_ends_one_dial_after_the_last_start_not_one_slot() -> None:
    # Slots held 1 s (a 0.25 s dial and the refill), 20 of them: 20 calls/s. The last call
    # ends 0.25 s after it starts; nothing waits for its slot to be filled again.
    run = estimate_run(201, max_active=20, calls_per_second=100, slot_s=1.0, dial_s=0.25)
    assert run.seconds == pytest.approx(200 / 20 + 0.25)
    window = CallingWindow.every_day("00:00", "24:00")
    windowed = estimate_windowed_run([(("UTC",), 201)], 0, window, MON_9, 20, 100, 1.0, dial_s=0.25)
    assert windowed.seconds == pytest.approx(run.seconds)
