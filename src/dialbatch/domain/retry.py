"""Retry and smart-callback policy: given what happened, what happens next.

Two budgets are kept apart on purpose. Connection-level failures (the call never reached
the network) are retried quickly with backoff, like a job queue would; "did not reach the
person" outcomes (busy, no answer, voicemail) are retried only when the batch asked for
smart callbacks, after the batch's gaps. A retry is a due time on the call's row, never a
fire-and-forget event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from dialbatch.domain.outcomes import OUTCOME_RULES, Outcome, RetryKind

DEFAULT_CONNECTION_ATTEMPTS = 3
DEFAULT_BACKOFF_BASE_MS = 1_000
MAX_CALLBACK_ATTEMPTS = 10
MAX_GAP_MS = 30 * 24 * 3600 * 1000


class _RetrySettings(Protocol):
    """The settings RetryConfig reads (dialbatch.settings.Settings; domain imports none of ours)."""

    @property
    def connection_attempts(self) -> int: ...

    @property
    def retry_backoff_ms(self) -> int: ...


@dataclass(frozen=True)
class RetryConfig:
    """The process's budget for connection-level failures: how many tries, and the backoff
    base (doubled each time). Smart callbacks are the batch's own policy, not this."""

    connection_attempts: int = DEFAULT_CONNECTION_ATTEMPTS
    backoff_base_ms: int = DEFAULT_BACKOFF_BASE_MS

    @classmethod
    def from_settings(cls, settings: _RetrySettings) -> RetryConfig:
        return cls(
            connection_attempts=settings.connection_attempts,
            backoff_base_ms=settings.retry_backoff_ms,
        )


@dataclass(frozen=True)
class Gap:
    days: float = 0
    hours: float = 0

    @property
    def ms(self) -> int:
        return int((self.days * 24 + self.hours) * 3600 * 1000)


@dataclass(frozen=True)
class CallbackPolicy:
    """The batch's smartCallbackConfig, validated."""

    enabled: bool = False
    max_attempts: int = 1
    gaps: tuple[Gap, ...] = field(default_factory=tuple)

    def gap_ms(self, callbacks_done: int) -> int:
        """Gap before callback number `callbacks_done + 1`; the last gap repeats."""
        if not self.gaps:
            return 3600 * 1000
        return self.gaps[min(callbacks_done, len(self.gaps) - 1)].ms


class InvalidCallbackPolicy(ValueError):
    pass


def parse_callback_policy(raw: object) -> CallbackPolicy:
    """Validate the contract's `{"enabled", "maxAttempts", "gaps": [{"days", "hours"}]}`."""
    if raw is None:
        return CallbackPolicy()
    if not isinstance(raw, dict):
        raise InvalidCallbackPolicy("smartCallbackConfig must be a JSON object")
    unknown = set(raw) - {"enabled", "maxAttempts", "gaps"}
    if unknown:
        raise InvalidCallbackPolicy(f"unknown smartCallbackConfig fields: {sorted(unknown)}")
    enabled = raw.get("enabled", False)
    if not isinstance(enabled, bool):
        raise InvalidCallbackPolicy("smartCallbackConfig.enabled must be true or false")
    max_attempts = raw.get("maxAttempts", 3 if enabled else 1)
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
        raise InvalidCallbackPolicy("smartCallbackConfig.maxAttempts must be a whole number")
    if not 1 <= max_attempts <= MAX_CALLBACK_ATTEMPTS:
        raise InvalidCallbackPolicy(
            f"smartCallbackConfig.maxAttempts must be between 1 and {MAX_CALLBACK_ATTEMPTS}"
        )
    gaps_raw = raw.get("gaps", [])
    if not isinstance(gaps_raw, list) or len(gaps_raw) > MAX_CALLBACK_ATTEMPTS:
        raise InvalidCallbackPolicy(
            f"smartCallbackConfig.gaps must be a list of at most {MAX_CALLBACK_ATTEMPTS} gaps"
        )
    gaps = []
    for i, g in enumerate(gaps_raw):
        if not isinstance(g, dict) or set(g) - {"days", "hours"}:
            raise InvalidCallbackPolicy(
                f'smartCallbackConfig.gaps[{i}] must be {{"days", "hours"}}'
            )
        values = [g.get("days", 0), g.get("hours", 0)]
        if any(
            isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0
            for v in values
        ):
            raise InvalidCallbackPolicy(
                f"smartCallbackConfig.gaps[{i}] days and hours must be non-negative numbers"
            )
        gap = Gap(days=values[0], hours=values[1])
        if (gap.days * 24 + gap.hours) * 3600 * 1000 > MAX_GAP_MS:
            raise InvalidCallbackPolicy(f"smartCallbackConfig.gaps[{i}] is longer than 30 days")
        gaps.append(gap)
    if enabled and max_attempts > 1 and not gaps:
        raise InvalidCallbackPolicy("smartCallbackConfig.gaps needs at least one gap when enabled")
    return CallbackPolicy(enabled=enabled, max_attempts=max_attempts, gaps=tuple(gaps))


def policy_to_json(policy: CallbackPolicy) -> dict[str, object]:
    return {
        "enabled": policy.enabled,
        "maxAttempts": policy.max_attempts,
        "gaps": [{"days": g.days, "hours": g.hours} for g in policy.gaps],
    }


@dataclass(frozen=True)
class AttemptHistory:
    """What the call's row remembers: dials so far, split by why they ended unsuccessfully."""

    connection_failures: int  # consecutive connection-level failures, this outcome included
    unreached: int  # busy / no-answer / voicemail outcomes, this outcome included
    dials: int  # total dials, this one included


@dataclass(frozen=True)
class Decision:
    final: bool
    error: str | None = None
    retry_after_ms: int = 0
    kind: RetryKind = RetryKind.NONE


def decide(
    outcome: Outcome,
    history: AttemptHistory,
    policy: CallbackPolicy,
    *,
    connection_attempts: int = DEFAULT_CONNECTION_ATTEMPTS,
    backoff_base_ms: int = DEFAULT_BACKOFF_BASE_MS,
    detail: str | None = None,
) -> Decision:
    """What to do after a dial ended with `outcome`, under the batch's smartCallbackConfig
    and the connection-retry settings: both read as one retry policy (domain/retry_policy.py),
    the rule every dial is decided by."""
    # Imported here: retry_policy builds on this module's types.
    from dialbatch.domain.retry_policy import decide_by_policy, from_smart_callback

    retry = RetryConfig(connection_attempts=connection_attempts, backoff_base_ms=backoff_base_ms)
    return decide_by_policy(outcome, history, from_smart_callback(policy, retry), detail=detail)


def final_reason(outcome: Outcome, detail: str | None) -> str:
    """The error a call that ended with `outcome` shows: the outcome's words first, the
    provider's detail beside them (`No answer (SIP 480 Temporarily Unavailable)`), so that a
    user tells a no-answer from a hard failure at a glance.

    A failure is the exception: the provider's own reason is the most precise thing to say
    (`SIP 503 Service Unavailable`, `Call failed - Twilio error 32009`), and it already
    reads as a failure, so it leads on its own.
    """
    words = OUTCOME_RULES[outcome].message
    if outcome is Outcome.FAILED:
        return detail or words
    if not detail or not words:
        return words
    return f"{words} ({detail})"


def _after(reason: str, dials: int) -> str:
    if dials <= 1:
        return reason
    return f"{reason} - unable to connect after {dials} attempts"
