"""The retry table: what a user is promised about second tries."""

from __future__ import annotations

import pytest

from dialbatch.domain.outcomes import Outcome, RetryKind
from dialbatch.domain.retry import (
    AttemptHistory,
    CallbackPolicy,
    Gap,
    InvalidCallbackPolicy,
    decide,
    parse_callback_policy,
)

NO_CALLBACKS = CallbackPolicy()
HOUR = 3600 * 1000


def test_completed_is_final_without_error() -> None:
    d = decide(Outcome.COMPLETED, AttemptHistory(0, 0, 1), NO_CALLBACKS)
    assert d.final and d.error is None


def test_connection_failures_back_off_exponentially_then_fail_naming_attempts() -> None:
    delays = []
    for n in (1, 2):
        d = decide(Outcome.FAILED, AttemptHistory(n, 0, n), NO_CALLBACKS, backoff_base_ms=1000)
        assert not d.final and d.kind is RetryKind.CONNECTION
        delays.append(d.retry_after_ms)
    assert delays == [1000, 2000]
    last = decide(Outcome.FAILED, AttemptHistory(3, 0, 3), NO_CALLBACKS)
    assert last.final
    assert last.error == "Call failed - unable to connect after 3 attempts"


def test_busy_without_smart_callbacks_fails_at_once() -> None:
    d = decide(Outcome.BUSY, AttemptHistory(0, 1, 1), NO_CALLBACKS)
    assert d.final and d.error == "Number busy"


@pytest.mark.parametrize("outcome", [Outcome.BUSY, Outcome.NO_ANSWER, Outcome.VOICEMAIL])
def test_unreached_outcomes_follow_the_gaps_up_to_max_attempts(outcome: Outcome) -> None:
    policy = CallbackPolicy(enabled=True, max_attempts=3, gaps=(Gap(hours=1), Gap(days=1)))
    first = decide(outcome, AttemptHistory(0, 1, 1), policy)
    second = decide(outcome, AttemptHistory(0, 2, 2), policy)
    third = decide(outcome, AttemptHistory(0, 3, 3), policy)
    assert (first.final, first.retry_after_ms, first.kind) == (False, HOUR, RetryKind.CALLBACK)
    assert (second.final, second.retry_after_ms) == (False, 24 * HOUR)
    assert third.final and third.error is not None
    assert third.error.endswith("unable to connect after 3 attempts")


def test_the_last_gap_repeats() -> None:
    policy = CallbackPolicy(enabled=True, max_attempts=5, gaps=(Gap(hours=2),))
    assert decide(Outcome.BUSY, AttemptHistory(0, 3, 3), policy).retry_after_ms == 2 * HOUR


def test_parse_callback_policy_accepts_the_contract_shape() -> None:
    p = parse_callback_policy(
        {"enabled": True, "maxAttempts": 3, "gaps": [{"days": 0, "hours": 4}, {"days": 1}]}
    )
    assert p.enabled and p.max_attempts == 3 and [g.ms for g in p.gaps] == [4 * HOUR, 24 * HOUR]


@pytest.mark.parametrize(
    "raw",
    [
        [],
        "yes",
        {"enabled": "yes"},
        {"enabled": True, "maxAttempts": "three", "gaps": [{"hours": 1}]},
        {"enabled": True, "maxAttempts": 0, "gaps": [{"hours": 1}]},
        {"enabled": True, "maxAttempts": 99, "gaps": [{"hours": 1}]},
        {"enabled": True, "maxAttempts": 2, "gaps": [{"hours": -1}]},
        {"enabled": True, "maxAttempts": 2, "gaps": [{"weeks": 1}]},
        {"enabled": True, "maxAttempts": 2, "gaps": []},
        {"enabled": True, "maxAttempts": 2, "gaps": [{"days": 400}]},
        {"enabled": True, "retries": 2},
    ],
)
def test_parse_callback_policy_rejects_nonsense(raw: object) -> None:
    with pytest.raises(InvalidCallbackPolicy):
        parse_callback_policy(raw)


@pytest.mark.parametrize(
    ("outcome", "detail", "error"),
    [
        (
            Outcome.NO_ANSWER,
            "SIP 480 Temporarily Unavailable",
            "No answer (SIP 480 Temporarily Unavailable)",
        ),
        (Outcome.BUSY, "SIP 486 Busy Here", "Number busy (SIP 486 Busy Here)"),
        (Outcome.VOICEMAIL, None, "Reached voicemail"),
        (
            Outcome.CANCELED,
            "SIP CANCEL sent while ringing",
            "Call canceled (SIP CANCEL sent while ringing)",
        ),
        (Outcome.FAILED, "SIP 503 Service Unavailable", "SIP 503 Service Unavailable"),
        (Outcome.FAILED, None, "Call failed"),
    ],
)
def test_the_error_says_the_outcome_first_and_the_providers_code_beside(
    outcome: Outcome, detail: str | None, error: str
) -> None:
    d = decide(
        outcome,
        AttemptHistory(1 if outcome is Outcome.FAILED else 0, 1, 1),
        NO_CALLBACKS,
        connection_attempts=1,
        detail=detail,
    )
    assert d.final and d.error == error
