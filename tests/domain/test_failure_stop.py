"""The automatic stop on failure spikes, as a pure rule: which dials count, the window, the
resume, and settings that name the bad field."""

from __future__ import annotations

import pytest

from dialbatch.domain.failure_stop import (
    DEFAULT,
    DialEnd,
    FailureStop,
    InvalidFailureStop,
    decide,
    effective,
    parse,
)

NOW = 10_000_000


def ends(*outcomes: str, step_ms: int = 100) -> list[DialEnd]:
    """Dials of distinct calls ended one after the other, the last one just now."""
    n = len(outcomes)
    return [DialEnd(i, NOW - (n - 1 - i) * step_ms, o, "503") for i, o in enumerate(outcomes)]


def test_the_default_pauses_at_half_of_the_last_twenty() -> None:
    assert (DEFAULT.last_dials, DEFAULT.min_failures, DEFAULT.within_s) == (20, 10, 120)
    assert decide(DEFAULT, ends(*["failed"] * 9), NOW, 0) is None
    reason = decide(DEFAULT, ends(*["failed"] * 10), NOW, 0)
    assert reason is not None and "dials of 10 calls failed" in reason
    assert "among the last 10 dials within 2 minutes" in reason


def test_only_failures_at_the_network_or_provider_count() -> None:
    answers = ["busy", "no-answer", "voicemail", "canceled"] * 5
    assert decide(DEFAULT, ends(*answers), NOW, 0) is None
    mixed = ["completed"] * 10 + ["failed"] * 9 + ["busy"]
    assert decide(DEFAULT, ends(*mixed), NOW, 0) is None


def test_a_number_that_does_not_exist_is_the_lists_fault() -> None:
    codes = ["404", "410", "not_found", "484"] * 5
    dead = [DialEnd(i, NOW - i, "failed", code) for i, code in enumerate(codes)]
    assert decide(DEFAULT, dead, NOW, 0) is None
    unknown_code = [DialEnd(i, NOW - i, "failed", None) for i in range(10)]
    assert decide(DEFAULT, unknown_code, NOW, 0) is not None


def test_a_call_counts_once_and_only_its_first_failure() -> None:
    # 18 failed dials, but of 6 calls (3 each): a bad list, not a bad carrier.
    retried = [DialEnd(i // 3, NOW - 1000 - i, "failed", "503") for i in range(18)]
    assert decide(DEFAULT, retried, NOW, 0) is None
    # Four more calls fail: 10 calls among the last 20 dials.
    fresh = [DialEnd(100 + i, NOW - i, "failed", "503") for i in range(4)]
    assert decide(DEFAULT, [*retried, *fresh], NOW, 0) is not None
    # At a batch's end the last dials are retries of calls that failed before: not counted.
    tail = [DialEnd(i, NOW - i, "failed", "503", repeat=True) for i in range(20)]
    assert decide(DEFAULT, tail, NOW, 0) is None


def test_only_the_last_dials_within_the_window_count() -> None:
    # 10 failures, but 11 successes came after them: only the last 20 are looked at.
    assert decide(DEFAULT, ends(*(["failed"] * 10 + ["completed"] * 11)), NOW, 0) is None
    # 10 failures spread over more than 2 minutes: the older ones have left the window.
    spread = ends(*["failed"] * 10, step_ms=20_000)
    assert decide(DEFAULT, spread, NOW, 0) is None


def test_dials_before_the_last_resume_do_not_count_again() -> None:
    dials = ends(*["failed"] * 12)
    assert decide(DEFAULT, dials, NOW, 0) is not None
    resumed = dials[3].ended_at + 1  # 8 failures after the resume
    assert decide(DEFAULT, dials, NOW, resumed) is None


def test_a_disabled_rule_never_pauses() -> None:
    assert decide(parse({"enabled": False}), ends(*["failed"] * 50), NOW, 0) is None


def test_settings_are_filled_from_the_default_and_round_trip() -> None:
    rule = parse({"lastDials": 5, "failedShare": 0.8})
    assert rule == FailureStop(True, 5, 0.8, 120) and rule.min_failures == 4
    assert parse(rule.to_json()) == rule
    assert parse({}) == DEFAULT


def test_the_batch_rule_wins_then_the_workspace_then_the_default() -> None:
    batch, ws = {"lastDials": 4}, {"lastDials": 8}
    assert effective(batch, ws).last_dials == 4
    assert effective(None, ws).last_dials == 8
    assert effective(None, None) == DEFAULT


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([1], "failureStop must be a JSON object"),
        ({"lastDials": 0}, "failureStop.lastDials"),
        ({"lastDials": 2.5}, "failureStop.lastDials"),
        ({"lastDials": True}, "failureStop.lastDials"),
        ({"failedShare": 0}, "failureStop.failedShare"),
        ({"failedShare": 1.5}, "failureStop.failedShare"),
        ({"failedShare": "half"}, "failureStop.failedShare"),
        ({"withinSeconds": 0}, "failureStop.withinSeconds"),
        ({"enabled": "yes"}, "failureStop.enabled"),
        ({"lastDial": 3}, "lastDial"),
    ],
)
def test_a_malformed_rule_names_its_field(raw: object, field: str) -> None:
    with pytest.raises(InvalidFailureStop, match=field.replace(".", r"\.")):
        parse(raw)


def test_an_outage_mid_batch_is_caught_among_the_retries() -> None:
    # Steady state of an outage: every call's dials fail, each retried twice; the retries
    # are left out, and the fresh dials all fail.
    dials = []
    for i in range(30):
        call, n = i // 3, i % 3 + 1
        dials.append(DialEnd(call, NOW - (30 - i) * 10, "failed", "503", repeat=n > 1))
    reason = decide(DEFAULT, dials, NOW, 0)
    assert reason is not None and "dials of 10 calls" in reason
