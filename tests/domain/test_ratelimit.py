"""The token bucket a rate limit is: a burst at once, then the sustained rate."""

from __future__ import annotations

from dialbatch.domain.ratelimit import Limit, failure_delay_s, take

LIMIT = Limit(per_s=10, burst=5)  # a token every 100 ms, 5 at once


def burst(n: int, now: float, tat: float | None = None) -> tuple[list[bool], float | None]:
    allowed = []
    for _ in range(n):
        verdict = take(LIMIT, tat, now)
        allowed.append(verdict.allowed)
        if verdict.allowed:
            tat = verdict.tat
    return allowed, tat


def test_a_full_bucket_admits_its_burst_then_refuses() -> None:
    allowed, _ = burst(7, now=1_000_000)
    assert allowed == [True] * 5 + [False] * 2


def test_a_refusal_says_when_the_next_request_is_admitted() -> None:
    _, tat = burst(5, now=1_000_000)
    refused = take(LIMIT, tat, 1_000_000)
    assert not refused.allowed and refused.wait_ms == 100 and refused.retry_after_s == 1
    assert not take(LIMIT, tat, 1_000_099).allowed
    assert take(LIMIT, tat, 1_000_100).allowed


def test_refused_requests_take_nothing_and_the_bucket_refills_at_the_rate() -> None:
    _, tat = burst(50, now=0)  # 45 refused: they cost nothing
    allowed, _ = burst(5, now=500, tat=tat)  # 500 ms later: 5 tokens back
    assert allowed == [True] * 5
    allowed, _ = burst(6, now=10_000, tat=tat)  # long idle: full, never more than the burst
    assert allowed == [True] * 5 + [False]


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    slow = Limit(per_s=1 / 6, burst=1)  # a token every 6 s
    first = take(slow, None, 0)
    second = take(slow, first.tat, 1_500)
    assert not second.allowed and second.wait_ms == 4_500 and second.retry_after_s == 5


def test_wrong_keys_are_held_longer_and_longer_up_to_the_cap() -> None:
    delays = [failure_delay_s(n, max_delay_s=5) for n in range(1, 11)]
    assert delays == [0, 0, 0, 0.25, 0.5, 1, 2, 4, 5, 5]
    assert failure_delay_s(50, max_delay_s=0) == 0


def test_a_zero_rate_is_no_limit() -> None:
    assert not Limit(per_s=0, burst=10).enabled
