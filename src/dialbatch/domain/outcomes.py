"""Call outcomes and the one table that says what each means for retries.

This table is the user-facing retry policy (documented in docs/retries.md): change both
together.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """What a provider reports at the end of one dial."""

    COMPLETED = "completed"  # answered by a person and ended normally
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    VOICEMAIL = "voicemail"  # answered by a machine
    FAILED = "failed"  # the network could not connect the call
    CANCELED = "canceled"  # we hung up before it was answered


class RetryKind(StrEnum):
    NONE = "none"  # final
    CONNECTION = "connection"  # job retry with backoff (attempt policy)
    CALLBACK = "callback"  # smart callback after the batch's gaps


@dataclass(frozen=True)
class OutcomeRule:
    retry: RetryKind
    message: str  # the error shown when this outcome is final


OUTCOME_RULES: dict[Outcome, OutcomeRule] = {
    Outcome.COMPLETED: OutcomeRule(RetryKind.NONE, ""),
    Outcome.BUSY: OutcomeRule(RetryKind.CALLBACK, "Number busy"),
    Outcome.NO_ANSWER: OutcomeRule(RetryKind.CALLBACK, "No answer"),
    Outcome.VOICEMAIL: OutcomeRule(RetryKind.CALLBACK, "Reached voicemail"),
    Outcome.FAILED: OutcomeRule(RetryKind.CONNECTION, "Call failed"),
    Outcome.CANCELED: OutcomeRule(RetryKind.NONE, "Call canceled"),
}


@dataclass(frozen=True)
class CallEvent:
    """The end of one dial, as a provider (or reconciliation) reports it.

    `dial_key` identifies the attempt; providers that cannot echo it back are matched by
    `provider_call_id`. Applying the same event twice, or a late one, changes nothing.
    """

    outcome: Outcome
    dial_key: str | None = None
    provider_call_id: str | None = None
    duration_s: float | None = None
    ended_at: int | None = None
    provider_code: str | None = None
    detail: str | None = None
    result: dict[str, object] | None = None
    # The provider refused the dial or never received it: nothing rang (a `failed` outcome
    # that the retry policy calls `provider-error`).
    refused: bool = False
