"""The next-state decision after a dial ends: what a user is promised about a call's future.

The same table the store used to apply inline (retry, complete, fail, not retried because the
batch stopped, a forced failure), now one pure function; plus the optional gate context that
moves a retry into the calling window.
"""

from __future__ import annotations

import pytest

from dialbatch.domain.compliance import Policy
from dialbatch.domain.gate import CallFacts
from dialbatch.domain.next_state import BatchPolicy, CallHistory, GateContext, next_state
from dialbatch.domain.outcomes import Outcome, RetryKind
from dialbatch.domain.retry import CallbackPolicy, Gap, RetryConfig
from dialbatch.domain.states import CallState
from dialbatch.domain.windows import CallingWindow
from tests.domain._time import HOUR, NEW_YORK, local

NOW = 1_800_000_000_000
RUNNING = BatchPolicy()
CALLBACKS = BatchPolicy(CallbackPolicy(enabled=True, max_attempts=3, gaps=(Gap(hours=2),)))
RETRY = RetryConfig(connection_attempts=3, backoff_base_ms=1000)


def test_completed_ends_the_call_completed_and_resets_the_run_of_failures() -> None:
    got = next_state(Outcome.COMPLETED, CallHistory(2, 1, 4), RUNNING, NOW, retry=RETRY)
    assert got.state is CallState.COMPLETED
    assert got.error is None and got.due_ms is None
    assert (got.history.connection_failures, got.history.unreached) == (0, 1)


def test_a_connection_failure_is_retried_with_doubling_backoff_from_now() -> None:
    first = next_state(Outcome.FAILED, CallHistory(0, 0, 1), RUNNING, NOW, retry=RETRY)
    second = next_state(Outcome.FAILED, CallHistory(1, 0, 2), RUNNING, NOW, retry=RETRY)
    assert first.state is CallState.WAITING and first.due_ms == NOW + 1000
    assert second.state is CallState.WAITING and second.due_ms == NOW + 2000
    assert first.retry is RetryKind.CONNECTION
    assert second.history.connection_failures == 2


def test_connection_failures_end_the_call_once_the_budget_is_spent() -> None:
    got = next_state(
        Outcome.FAILED, CallHistory(2, 0, 3), RUNNING, NOW, retry=RETRY, detail="SIP 503"
    )
    assert got.state is CallState.FAILED
    assert got.error == "SIP 503 - unable to connect after 3 attempts"


def test_busy_without_smart_callbacks_fails_at_once_with_the_providers_words() -> None:
    got = next_state(Outcome.BUSY, CallHistory(0, 0, 1), RUNNING, NOW, detail="SIP 486 Busy Here")
    assert got.state is CallState.FAILED
    assert got.error == "Number busy (SIP 486 Busy Here)"
    assert got.history.unreached == 1


def test_no_answer_with_smart_callbacks_waits_for_the_batchs_gap() -> None:
    got = next_state(Outcome.NO_ANSWER, CallHistory(0, 0, 1), CALLBACKS, NOW)
    assert got.state is CallState.WAITING
    assert got.due_ms == NOW + 2 * HOUR
    assert got.retry is RetryKind.CALLBACK


def test_callbacks_stop_at_the_batchs_max_attempts() -> None:
    got = next_state(Outcome.VOICEMAIL, CallHistory(0, 2, 3), CALLBACKS, NOW)
    assert got.state is CallState.FAILED
    assert got.error == "Reached voicemail - unable to connect after 3 attempts"


@pytest.mark.parametrize("status", ["cancelled", "failed", "completed"])
def test_a_batch_that_stopped_running_retries_nothing(status: str) -> None:
    batch = BatchPolicy(CALLBACKS.callbacks, status=status)
    got = next_state(Outcome.BUSY, CallHistory(0, 0, 1), batch, NOW)
    assert got.state is CallState.FAILED
    assert got.error == f"Number busy - not retried: batch {status}"


def test_a_completed_call_in_a_cancelled_batch_still_completes() -> None:
    batch = BatchPolicy(status="cancelled")
    assert next_state(Outcome.COMPLETED, CallHistory(), batch, NOW).state is CallState.COMPLETED


def test_a_forced_failure_wins_over_any_retry_and_still_counts_the_outcome() -> None:
    got = next_state(
        Outcome.FAILED, CallHistory(0, 0, 1), RUNNING, NOW, final_error="Outcome unknown"
    )
    assert got.state is CallState.FAILED and got.error == "Outcome unknown"
    assert got.history.connection_failures == 1


def test_canceled_is_final() -> None:
    got = next_state(Outcome.CANCELED, CallHistory(), CALLBACKS, NOW)
    assert got.state is CallState.FAILED and got.error == "Call canceled"


# --- with the gate's context: retries land inside the calling window ----------------------

NINE_TO_FIVE = CallingWindow.every_day("09:00", "17:00")
NY_FACTS = CallFacts(zones=(NEW_YORK,))


def test_a_retry_whose_gap_ends_after_hours_is_due_at_the_next_opening() -> None:
    now = local(NEW_YORK, 2026, 6, 10, 16, 0)  # gap of 2 h ends at 18:00, after closing
    gate = GateContext(NY_FACTS, Policy(window=NINE_TO_FIVE))
    got = next_state(Outcome.NO_ANSWER, CallHistory(0, 0, 1), CALLBACKS, now, gate=gate)
    assert got.state is CallState.WAITING
    assert got.due_ms == local(NEW_YORK, 2026, 6, 11, 9, 0)


def test_a_retry_whose_gap_ends_inside_the_window_keeps_its_gap() -> None:
    now = local(NEW_YORK, 2026, 6, 10, 10, 0)
    gate = GateContext(NY_FACTS, Policy(window=NINE_TO_FIVE))
    got = next_state(Outcome.NO_ANSWER, CallHistory(0, 0, 1), CALLBACKS, now, gate=gate)
    assert got.due_ms == now + 2 * HOUR


def test_a_retry_no_window_will_ever_admit_ends_the_call() -> None:
    gate = GateContext(CallFacts(zones=()), Policy(window=NINE_TO_FIVE))  # zone unknown
    got = next_state(Outcome.BUSY, CallHistory(0, 0, 1), CALLBACKS, NOW, gate=gate)
    assert got.state is CallState.FAILED
    assert got.error is not None and got.error.startswith("Number busy - not retried: no calling")


def test_without_a_gate_context_the_decision_is_the_plain_retry_table() -> None:
    now = local(NEW_YORK, 2026, 6, 10, 23, 0)
    got = next_state(Outcome.NO_ANSWER, CallHistory(0, 0, 1), CALLBACKS, now)
    assert got.due_ms == now + 2 * HOUR
