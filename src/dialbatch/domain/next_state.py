"""What happens to a call after a dial ends: the one next-state decision.

Every rule that shapes a call's future after an outcome lives behind :func:`next_state`, so
that the store only writes what was decided and a new rule (a calling window, a cap) has one
place to go. It builds on the retry policy per outcome (domain/retry_policy.py: the batch's
`retryPolicy` over its smart callbacks and the connection retries) and adds what that policy
does not know: a failure forced from outside
(an attempt whose fate cannot be learned), a batch that stopped running while the call was
live, and, when a gate context is given, the calling windows and caps a retry must land in.

Nothing here reads a clock or the database: the caller passes the instant (the database's
clock, so that every host decides alike) and the call's remembered history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dialbatch.domain.compliance import Policy
from dialbatch.domain.gate import CallFacts, earliest_admission
from dialbatch.domain.outcomes import Outcome, RetryKind
from dialbatch.domain.retry import (
    AttemptHistory,
    CallbackPolicy,
    RetryConfig,
    final_reason,
)
from dialbatch.domain.retry_policy import RetryPolicy, decide_by_policy, from_smart_callback
from dialbatch.domain.states import RUNNING_BATCH_STATES, CallState
from dialbatch.domain.windows import HORIZON_MS

__all__ = [
    "BatchPolicy",
    "CallHistory",
    "GateContext",
    "NextState",
    "next_state",
]

_UNREACHED = frozenset({Outcome.BUSY, Outcome.NO_ANSWER, Outcome.VOICEMAIL})


@dataclass(frozen=True)
class CallHistory:
    """What the call's row remembers *before* this outcome is counted."""

    connection_failures: int = 0  # consecutive connection-level failures
    unreached: int = 0  # busy / no-answer / voicemail outcomes so far
    dials: int = 1  # dials so far, the one that just ended included

    def after(self, outcome: Outcome) -> AttemptHistory:
        """The history with ``outcome`` counted: a connection failure extends the run of
        them, anything else ends it; an unreached outcome adds to the callbacks used."""
        failed = outcome is Outcome.FAILED
        return AttemptHistory(
            connection_failures=self.connection_failures + 1 if failed else 0,
            unreached=self.unreached + (1 if outcome in _UNREACHED else 0),
            dials=self.dials,
        )


@dataclass(frozen=True)
class BatchPolicy:
    """What the call's batch says about its future: its smart-callback policy, the
    per-outcome rules that replace it (its `retryPolicy`, or the workspace's default it took
    when created), and its status (a batch that no longer runs retries nothing)."""

    callbacks: CallbackPolicy = field(default_factory=CallbackPolicy)
    status: str = "processing"
    retry_policy: RetryPolicy | None = None

    def effective(self, retry: RetryConfig) -> RetryPolicy:
        """The rule for every outcome: the batch's own rules over its smart callbacks and
        the process's connection retries."""
        base = from_smart_callback(self.callbacks, retry)
        return base if self.retry_policy is None else self.retry_policy.over(base)

    @property
    def running(self) -> bool:
        return self.status in RUNNING_BATCH_STATES


@dataclass(frozen=True)
class GateContext:
    """The gate's view of the call, for rules that move a retry's due time: its facts
    (zones, region, recent dials) and the batch's effective policy (windows, caps).

    ``dial_lead_ms`` is the time a dial needs between its decision and the provider's
    request, so a retry is never due on the last millisecond of a window.
    """

    facts: CallFacts
    policy: Policy
    dial_lead_ms: int = 0


@dataclass(frozen=True)
class NextState:
    """The decision: the call's next state, the history to remember, and either when it is
    due again (``waiting``) or the error it ends with (``failed``)."""

    state: CallState  # WAITING, COMPLETED or FAILED
    history: AttemptHistory
    due_ms: int | None = None  # WAITING only
    error: str | None = None  # FAILED only
    retry: RetryKind = RetryKind.NONE


def next_state(
    outcome: Outcome,
    history: CallHistory,
    batch: BatchPolicy,
    now_ms: int,
    *,
    retry: RetryConfig | None = None,
    detail: str | None = None,
    final_error: str | None = None,
    gate: GateContext | None = None,
    refused: bool = False,
) -> NextState:
    """The call's next state after a dial ended with ``outcome`` at ``now_ms``.

    ``detail`` is the provider's words for the outcome (shown beside ours in an error);
    ``final_error`` forces a final failure with that error (the outcome of the dial cannot be
    learned, so trying again could ring someone twice). ``refused``: the provider refused
    the dial or never received it (a `provider-error` to the retry policy). Without
    ``gate`` a retry is due when its gap or backoff ends; with one, at the first instant
    after that at which every window is open and every cap allows a dial, and a retry that
    no window will ever admit ends the call instead of leaving it waiting forever.
    """
    counted = history.after(outcome)
    retry = retry or RetryConfig()
    if final_error is not None:
        return NextState(CallState.FAILED, counted, error=final_error)
    decision = decide_by_policy(
        outcome, counted, batch.effective(retry), refused=refused, detail=detail
    )
    if decision.final:
        if outcome is Outcome.COMPLETED:
            return NextState(CallState.COMPLETED, counted)
        return NextState(CallState.FAILED, counted, error=decision.error)
    reason = final_reason(outcome, detail)
    if not batch.running:
        # The batch was cancelled while this call was live: it ran to its end, and it is not
        # tried again (a waiting call in a cancelled batch would never finish).
        return NextState(
            CallState.FAILED, counted, error=f"{reason} - not retried: batch {batch.status}"
        )
    due = now_ms + decision.retry_after_ms
    if gate is not None:
        opening = earliest_admission(gate.facts, gate.policy, due, dial_lead_ms=gate.dial_lead_ms)
        if opening is None:
            days = HORIZON_MS // (24 * 3600 * 1000)
            return NextState(
                CallState.FAILED,
                counted,
                error=f"{reason} - not retried: no calling window opens within {days} days",
            )
        due = opening
    return NextState(CallState.WAITING, counted, due_ms=due, retry=decision.kind)
