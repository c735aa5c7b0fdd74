"""The retry policy per outcome: strict reading (400s that name the field), the mapping of
smartCallbackConfig onto it, the workspace default, and the decisions it makes."""

from __future__ import annotations

import itertools

import pytest

from dialbatch.domain.compliance import Policy
from dialbatch.domain.gate import CallFacts
from dialbatch.domain.next_state import BatchPolicy, CallHistory, GateContext, next_state
from dialbatch.domain.outcomes import Outcome, RetryKind
from dialbatch.domain.retry import (
    AttemptHistory,
    CallbackPolicy,
    Gap,
    RetryConfig,
    decide,
)
from dialbatch.domain.retry_policy import (
    Counting,
    InvalidRetryPolicy,
    RetryPolicy,
    RetryRule,
    decide_by_policy,
    for_new_batch,
    from_smart_callback,
    outcome_key,
    parse_retry_policy,
)
from dialbatch.domain.states import CallState
from dialbatch.domain.windows import CallingWindow
from tests.domain._time import NEW_YORK, local

NOW = 1_800_000_000_000
RETRY = RetryConfig(connection_attempts=3, backoff_base_ms=1000)
BRIEF = {
    "busy": {"maxDials": 3, "gapsSeconds": [60, 120]},
    "no-answer": {"maxDials": 2, "gapsSeconds": [30]},
    "voicemail": False,
    "failed": {"maxDials": 4, "gapsSeconds": [5]},
}


def test_a_policy_reads_and_writes_back_the_same() -> None:
    policy = parse_retry_policy(BRIEF)
    assert policy.rules["busy"] == RetryRule(True, 3, (60_000, 120_000), Counting.DIALS)
    assert policy.rules["voicemail"] == RetryRule(retry=False)
    again = parse_retry_policy(policy.to_json())
    assert again == policy
    assert policy.to_json()["busy"] == {
        "retry": True,
        "maxDials": 3,
        "gapsSeconds": [60, 120],
        "counting": "dials",
    }


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ([], "retryPolicy must be a JSON object"),
        ({"bussy": False}, "retryPolicy: 'bussy' is not an outcome"),
        ({"completed": False}, "retryPolicy: 'completed' is never retried"),
        ({"busy": True}, "retryPolicy.busy must be false or an object"),
        ({"busy": {"maxDials": 2, "gaps": [1]}}, "retryPolicy.busy: unknown field(s) ['gaps']"),
        ({"busy": {"maxDials": 0, "gapsSeconds": [1]}}, "retryPolicy.busy.maxDials must be"),
        ({"busy": {"maxDials": 21, "gapsSeconds": [1]}}, "retryPolicy.busy.maxDials must be"),
        ({"busy": {"maxDials": 2.5, "gapsSeconds": [1]}}, "retryPolicy.busy.maxDials must be"),
        ({"busy": {"maxDials": True, "gapsSeconds": [1]}}, "retryPolicy.busy.maxDials must be"),
        ({"busy": {"gapsSeconds": [1]}}, "retryPolicy.busy.maxDials must be"),
        ({"busy": {"maxDials": 3}}, "retryPolicy.busy.gapsSeconds is required"),
        ({"busy": {"maxDials": 3, "gapsSeconds": []}}, "retryPolicy.busy.gapsSeconds needs"),
        (
            {"no-answer": {"maxDials": 3, "gapsSeconds": [60, -1]}},
            "retryPolicy.no-answer.gapsSeconds[1] must be a number of seconds above 0",
        ),
        (
            {"busy": {"maxDials": 3, "gapsSeconds": [60, 0]}},
            "retryPolicy.busy.gapsSeconds[1] must be",
        ),
        ({"busy": {"maxDials": 3, "gapsSeconds": ["60"]}}, "retryPolicy.busy.gapsSeconds[0]"),
        ({"busy": {"maxDials": 3, "gapsSeconds": [1e9]}}, "retryPolicy.busy.gapsSeconds[0]"),
        ({"busy": {"maxDials": 3, "gapsSeconds": [1] * 21}}, "retryPolicy.busy.gapsSeconds"),
        ({"busy": {"retry": "yes"}}, "retryPolicy.busy.retry must be true or false"),
        ({"busy": {"retry": False, "maxDials": 3}}, "mean nothing when retry is false"),
        (
            {"failed": {"maxDials": 2, "gapsSeconds": [1], "counting": "all"}},
            "retryPolicy.failed.counting must be one of",
        ),
    ],
)
def test_a_malformed_policy_is_refused_naming_the_field(raw: object, named: str) -> None:
    with pytest.raises(InvalidRetryPolicy) as caught:
        parse_retry_policy(raw)
    assert named in str(caught.value)


def test_the_brief_policy_dials_each_outcome_as_it_says() -> None:
    policy = parse_retry_policy(BRIEF).over(from_smart_callback(CallbackPolicy(), RETRY))

    def run(outcome: Outcome) -> list[int]:
        """The gaps (ms) before each redial when every dial ends with `outcome`."""
        gaps, dials, failures = [], 1, 0
        while True:
            failures = failures + 1 if outcome is Outcome.FAILED else 0
            history = AttemptHistory(failures, dials if outcome is not Outcome.FAILED else 0, dials)
            d = decide_by_policy(outcome, history, policy)
            if d.final:
                return gaps
            gaps.append(d.retry_after_ms)
            dials += 1

    assert run(Outcome.BUSY) == [60_000, 120_000]  # 3 dials
    assert run(Outcome.NO_ANSWER) == [30_000]  # 2 dials
    assert run(Outcome.VOICEMAIL) == []  # 1 dial
    assert run(Outcome.FAILED) == [5_000, 5_000, 5_000]  # 4 dials, the last gap repeating


def test_max_dials_counts_every_dial_of_the_call_by_default() -> None:
    policy = parse_retry_policy({"busy": {"maxDials": 3, "gapsSeconds": [60, 120]}})
    # A failed dial then two busy ones: three dials in all, so the second busy is final.
    first = decide_by_policy(Outcome.BUSY, AttemptHistory(0, 1, 2), policy)
    assert (first.final, first.retry_after_ms) == (False, 120_000)
    last = decide_by_policy(Outcome.BUSY, AttemptHistory(0, 2, 3), policy, detail="SIP 486")
    assert last.final and last.error == "Number busy (SIP 486) - unable to connect after 3 attempts"


def test_a_refused_dial_is_a_provider_error_with_its_own_rule() -> None:
    assert outcome_key(Outcome.FAILED, refused=True) == "provider-error"
    assert outcome_key(Outcome.FAILED) == "failed"
    policy = parse_retry_policy(
        {"failed": False, "provider-error": {"maxDials": 5, "gapsSeconds": [2]}}
    )
    refused = decide_by_policy(Outcome.FAILED, AttemptHistory(1, 0, 1), policy, refused=True)
    placed = decide_by_policy(Outcome.FAILED, AttemptHistory(1, 0, 1), policy, detail="SIP 503")
    assert (refused.final, refused.retry_after_ms, refused.kind) == (
        False,
        2000,
        RetryKind.CONNECTION,
    )
    assert placed.final and placed.error == "SIP 503"


def test_completed_and_canceled_are_never_retried_whatever_the_policy() -> None:
    policy = RetryPolicy({"completed": RetryRule(True, 5, (1000,))})
    assert decide_by_policy(Outcome.COMPLETED, AttemptHistory(0, 0, 1), policy).final
    assert decide_by_policy(Outcome.CANCELED, AttemptHistory(0, 0, 1), policy).final


def test_smart_callbacks_map_onto_a_policy() -> None:
    callbacks = CallbackPolicy(enabled=True, max_attempts=3, gaps=(Gap(hours=4), Gap(days=1)))
    policy = from_smart_callback(callbacks, RETRY)
    hour = 3600 * 1000
    callback = RetryRule(True, 3, (4 * hour, 24 * hour), Counting.UNREACHED)
    connection = RetryRule(True, 3, (1000, 2000), Counting.FAILED_IN_A_ROW)
    assert policy.rules == {
        "busy": callback,
        "no-answer": callback,
        "voicemail": callback,
        "failed": connection,
        "provider-error": connection,
    }
    off = from_smart_callback(CallbackPolicy(), RetryConfig(connection_attempts=1))
    assert not any(rule.retry for rule in off.rules.values())
    # What GET batch shows for a contract client's batch: the same, in words.
    assert policy.to_json()["busy"] == {
        "retry": True,
        "maxDials": 3,
        "gapsSeconds": [4 * 3600, 24 * 3600],
        "counting": "unreached",
    }


CALLBACK_POLICIES = [
    CallbackPolicy(),
    CallbackPolicy(enabled=True, max_attempts=1),
    CallbackPolicy(enabled=True, max_attempts=3, gaps=(Gap(hours=1),)),
    CallbackPolicy(enabled=True, max_attempts=4, gaps=(Gap(hours=1), Gap(days=2), Gap(0, 0))),
    CallbackPolicy(enabled=False, max_attempts=5, gaps=(Gap(hours=1),)),
]


@pytest.mark.parametrize("callbacks", CALLBACK_POLICIES)
@pytest.mark.parametrize("attempts", [1, 3, 5])
def test_the_mapping_keeps_smart_callbacks_documented_meaning(
    callbacks: CallbackPolicy, attempts: int
) -> None:
    """The rule the engine ran before retry policies existed, written out here as
    docs/retries.md states it, against the mapped policy for every small history."""
    retry = RetryConfig(connection_attempts=attempts, backoff_base_ms=500)
    policy = from_smart_callback(callbacks, retry)
    unreached = (Outcome.BUSY, Outcome.NO_ANSWER, Outcome.VOICEMAIL)
    for outcome, failures, reached, dials in itertools.product(
        list(Outcome), range(0, 7), range(0, 7), range(1, 12)
    ):
        if (outcome is Outcome.FAILED) != (failures > 0):
            continue  # the run of failures counts this dial, and any other outcome ends it
        if outcome in unreached and reached == 0:
            continue  # this dial is counted already
        history = AttemptHistory(failures, reached, dials)
        got = decide_by_policy(outcome, history, policy)
        if outcome is Outcome.FAILED:
            retried = failures < attempts
            gap = 500 * 2 ** (failures - 1) if retried else 0
        elif outcome in unreached:
            retried = callbacks.enabled and reached < callbacks.max_attempts
            gap = callbacks.gap_ms(reached - 1) if retried else 0
        else:
            retried, gap = False, 0
        assert (not got.final, got.retry_after_ms) == (retried, gap), (outcome, history)
        # retry.decide, the smart-callback entry point, is the same rule.
        assert (
            decide(
                outcome,
                history,
                callbacks,
                connection_attempts=attempts,
                backoff_base_ms=500,
            )
            == got
        )


def test_a_new_batch_takes_its_own_rules_over_the_workspace_default() -> None:
    default = parse_retry_policy({"busy": False, "no-answer": {"maxDials": 2, "gapsSeconds": [9]}})
    own = parse_retry_policy({"busy": {"maxDials": 2, "gapsSeconds": [1]}})
    merged = for_new_batch(own, default, smart_callback_sent=False)
    assert merged is not None
    assert merged.rules["busy"] == own.rules["busy"]
    assert merged.rules["no-answer"] == default.rules["no-answer"]
    # A smartCallbackConfig is the batch's own choice for every outcome: no default.
    assert for_new_batch(own, default, smart_callback_sent=True) == own
    assert for_new_batch(None, default, smart_callback_sent=True) is None
    assert for_new_batch(None, default, smart_callback_sent=False) == default
    assert for_new_batch(None, None, smart_callback_sent=False) is None


def test_next_state_follows_the_batchs_policy_over_its_smart_callbacks() -> None:
    batch = BatchPolicy(
        CallbackPolicy(enabled=True, max_attempts=5, gaps=(Gap(hours=1),)),
        retry_policy=parse_retry_policy({"busy": {"maxDials": 2, "gapsSeconds": [60]}}),
    )
    busy = next_state(Outcome.BUSY, CallHistory(0, 0, 1), batch, NOW, retry=RETRY)
    assert busy.state is CallState.WAITING and busy.due_ms == NOW + 60_000
    again = next_state(Outcome.BUSY, CallHistory(0, 1, 2), batch, NOW, retry=RETRY)
    assert again.state is CallState.FAILED
    # no-answer was left out: the smart callbacks still decide it.
    rang = next_state(Outcome.NO_ANSWER, CallHistory(0, 1, 2), batch, NOW, retry=RETRY)
    assert rang.state is CallState.WAITING and rang.due_ms == NOW + 3600 * 1000
    refused = next_state(
        Outcome.FAILED, CallHistory(0, 0, 1), batch, NOW, retry=RETRY, refused=True
    )
    assert refused.state is CallState.WAITING and refused.due_ms == NOW + 1000


def test_a_retry_due_outside_the_calling_window_moves_to_the_next_opening() -> None:
    """The gate's deferral applies to the policy's retries as to any other."""
    gate = GateContext(
        CallFacts(zones=(NEW_YORK,)), Policy(window=CallingWindow.every_day("09:00", "17:00"))
    )
    rules = parse_retry_policy({"busy": {"maxDials": 2, "gapsSeconds": [7200]}})
    now = local(NEW_YORK, 2026, 6, 10, 16, 0)  # the 2 h gap ends at 18:00, after closing
    got = next_state(
        Outcome.BUSY, CallHistory(0, 0, 1), BatchPolicy(retry_policy=rules), now, gate=gate
    )
    assert got.state is CallState.WAITING
    assert got.due_ms == local(NEW_YORK, 2026, 6, 11, 9, 0)
