"""The retry policy per outcome (`retryPolicy`, an extension): for each way a dial can fail
to reach the person, whether to dial again, after which gaps, and up to how many dials.

It is the one rule the engine retries by. The contract's `smartCallbackConfig` and the
process's connection-retry settings are read as a policy too (:func:`from_smart_callback`),
so a batch that sends neither behaves exactly as before. A batch's own `retryPolicy` (or the
workspace's default, taken when the batch is created) then replaces that policy outcome by
outcome (:meth:`RetryPolicy.over`).

The outcome names are the engine's (domain/outcomes.py), plus `provider-error`: a dial the
provider refused or never received (outcome `failed`, but nothing rang). `failed` is then a
dial the network placed and could not connect.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dialbatch.domain.outcomes import OUTCOME_RULES, Outcome, RetryKind
from dialbatch.domain.retry import (
    AttemptHistory,
    CallbackPolicy,
    Decision,
    RetryConfig,
    _after,
    final_reason,
)

PROVIDER_ERROR = "provider-error"
OUTCOMES = ("busy", "no-answer", "voicemail", "failed", PROVIDER_ERROR)
RULE_FIELDS = ("retry", "maxDials", "gapsSeconds", "counting")
MAX_DIALS = 20
MAX_GAPS = 20
MAX_GAP_S = 30 * 24 * 3600
# When a smart-callback policy with callbacks has no gap (only built by hand), wait an hour.
_DEFAULT_CALLBACK_GAP_MS = 3600 * 1000


class Counting(StrEnum):
    """Which dials of the call count towards a rule's `maxDials` (and pick its gap)."""

    DIALS = "dials"  # every dial of the call, whatever it ended with (the default)
    UNREACHED = "unreached"  # busy / no-answer / voicemail dials (smartCallbackConfig)
    FAILED_IN_A_ROW = "failedInARow"  # the current run of failed dials (connection retries)


class InvalidRetryPolicy(ValueError):
    """A malformed `retryPolicy`; the message names the field."""


@dataclass(frozen=True)
class RetryRule:
    """What happens after a dial ends with one outcome.

    The dial is retried while the counted dials (this one included) are fewer than
    `max_dials`; the wait before the next dial is `gaps_ms[counted - 1]`, the last gap
    repeating.
    """

    retry: bool = False
    max_dials: int = 1
    gaps_ms: tuple[int, ...] = ()
    counting: Counting = Counting.DIALS

    def gap_ms(self, counted: int) -> int:
        if not self.gaps_ms:
            return _DEFAULT_CALLBACK_GAP_MS
        return self.gaps_ms[min(max(counted, 1), len(self.gaps_ms)) - 1]

    def to_json(self) -> dict[str, Any]:
        if not self.retry:
            return {"retry": False}
        return {
            "retry": True,
            "maxDials": self.max_dials,
            "gapsSeconds": [_seconds(g) for g in self.gaps_ms],
            "counting": self.counting.value,
        }


@dataclass(frozen=True)
class RetryPolicy:
    """Rules by outcome name (OUTCOMES); an outcome left out is not decided here."""

    rules: Mapping[str, RetryRule] = field(default_factory=dict, hash=False)

    def over(self, base: RetryPolicy) -> RetryPolicy:
        """This policy's rules, and `base`'s for the outcomes this one leaves out."""
        return RetryPolicy({**base.rules, **self.rules})

    def to_json(self) -> dict[str, Any]:
        return {k: self.rules[k].to_json() for k in OUTCOMES if k in self.rules}


def outcome_key(outcome: Outcome, *, refused: bool = False) -> str:
    """The policy's name for a dial's outcome: a refused dial is a `provider-error`."""
    if outcome is Outcome.FAILED and refused:
        return PROVIDER_ERROR
    return outcome.value


def from_smart_callback(callbacks: CallbackPolicy, retry: RetryConfig) -> RetryPolicy:
    """The contract's smartCallbackConfig and the process's connection retries, as a policy.

    busy / no-answer / voicemail share the callback budget: `maxAttempts` counts the dials
    that did not reach the person, the first included, and the k-th callback waits
    `gaps[k-1]` (the last repeating). failed and provider-error are connection retries: up
    to `connection_attempts` failed dials in a row, waiting `backoff_base_ms` doubled each
    time. Without smart callbacks the three are not retried.
    """
    callback = RetryRule(
        retry=callbacks.enabled and callbacks.max_attempts > 1,
        max_dials=callbacks.max_attempts if callbacks.enabled else 1,
        gaps_ms=tuple(g.ms for g in callbacks.gaps),
        counting=Counting.UNREACHED,
    )
    attempts = retry.connection_attempts
    connection = RetryRule(
        retry=attempts > 1,
        max_dials=attempts,
        gaps_ms=tuple(retry.backoff_base_ms * 2**k for k in range(max(1, attempts - 1))),
        counting=Counting.FAILED_IN_A_ROW,
    )
    return RetryPolicy(
        {
            "busy": callback,
            "no-answer": callback,
            "voicemail": callback,
            "failed": connection,
            PROVIDER_ERROR: connection,
        }
    )


def for_new_batch(
    own: RetryPolicy | None, workspace_default: RetryPolicy | None, *, smart_callback_sent: bool
) -> RetryPolicy | None:
    """The rules a new batch stores: its own `retryPolicy`, over the workspace's default
    unless the batch sent a `smartCallbackConfig` (its own choice for every outcome)."""
    base = None if smart_callback_sent else workspace_default
    if own is None:
        return base
    return own if base is None else own.over(base)


def decide_by_policy(
    outcome: Outcome,
    history: AttemptHistory,
    policy: RetryPolicy,
    *,
    refused: bool = False,
    detail: str | None = None,
) -> Decision:
    """What to do after a dial ended with `outcome` (`history` counts it already)."""
    reason = final_reason(outcome, detail)
    rule = policy.rules.get(outcome_key(outcome, refused=refused))
    kind = OUTCOME_RULES[outcome].retry
    if kind is RetryKind.NONE or rule is None:
        return Decision(final=True, error=reason or None)
    counted = _counted(rule.counting, history)
    if rule.retry and counted < rule.max_dials:
        return Decision(final=False, retry_after_ms=rule.gap_ms(counted), kind=kind)
    return Decision(final=True, error=_after(reason, history.dials))


def _counted(counting: Counting, history: AttemptHistory) -> int:
    if counting is Counting.UNREACHED:
        return history.unreached
    if counting is Counting.FAILED_IN_A_ROW:
        return history.connection_failures
    return history.dials


# -- reading it ------------------------------------------------------------------------------


def parse_retry_policy(raw: object, name: str = "retryPolicy") -> RetryPolicy:
    """Validate `{"busy": {"retry", "maxDials", "gapsSeconds", "counting"}, ...}`.

    Strict, so that a typo cannot turn into a flood of calls: every outcome and field is
    known, `maxDials` is 1 to 20, each gap is above 0 s and at most 30 days. `false` for an
    outcome is short for `{"retry": false}`. Raises InvalidRetryPolicy naming the field.
    """
    if not isinstance(raw, Mapping):
        raise InvalidRetryPolicy(
            f"{name} must be a JSON object of outcome -> rule; the outcomes are {list(OUTCOMES)}"
        )
    rules: dict[str, RetryRule] = {}
    for key, value in raw.items():
        if key not in OUTCOMES:
            never = key in (Outcome.COMPLETED.value, Outcome.CANCELED.value)
            why = "is never retried" if never else "is not an outcome"
            raise InvalidRetryPolicy(f"{name}: {key!r} {why}; the outcomes are {list(OUTCOMES)}")
        rules[key] = _parse_rule(value, f"{name}.{key}")
    return RetryPolicy(rules)


def _parse_rule(raw: object, name: str) -> RetryRule:
    if raw is False:
        return RetryRule(retry=False)
    if not isinstance(raw, Mapping):
        raise InvalidRetryPolicy(
            f'{name} must be false or an object such as {{"maxDials": 3, "gapsSeconds": [60]}}'
        )
    unknown = sorted(set(raw) - set(RULE_FIELDS))
    if unknown:
        raise InvalidRetryPolicy(
            f"{name}: unknown field(s) {unknown}; the fields are {RULE_FIELDS}"
        )
    retry = raw.get("retry", True)
    if not isinstance(retry, bool):
        raise InvalidRetryPolicy(f"{name}.retry must be true or false")
    if not retry:
        extra = sorted(set(raw) - {"retry"})
        if extra:
            raise InvalidRetryPolicy(f"{name}: {extra} mean nothing when retry is false")
        return RetryRule(retry=False)
    max_dials = raw.get("maxDials")
    if isinstance(max_dials, bool) or not isinstance(max_dials, int):
        raise InvalidRetryPolicy(f"{name}.maxDials must be a whole number from 1 to {MAX_DIALS}")
    if not 1 <= max_dials <= MAX_DIALS:
        raise InvalidRetryPolicy(f"{name}.maxDials must be from 1 to {MAX_DIALS}, not {max_dials}")
    gaps = _parse_gaps(raw.get("gapsSeconds"), f"{name}.gapsSeconds", needed=max_dials > 1)
    counting = raw.get("counting", Counting.DIALS.value)
    if counting not in {c.value for c in Counting}:
        raise InvalidRetryPolicy(
            f"{name}.counting must be one of {[c.value for c in Counting]}, not {counting!r}"
        )
    return RetryRule(
        retry=max_dials > 1, max_dials=max_dials, gaps_ms=gaps, counting=Counting(counting)
    )


def _parse_gaps(raw: object, name: str, *, needed: bool) -> tuple[int, ...]:
    if raw is None:
        if needed:
            raise InvalidRetryPolicy(f"{name} is required: the seconds to wait before each redial")
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_GAPS:
        raise InvalidRetryPolicy(f"{name} must be a list of at most {MAX_GAPS} numbers of seconds")
    if needed and not raw:
        raise InvalidRetryPolicy(f"{name} needs at least one gap when maxDials is above 1")
    gaps = []
    for i, value in enumerate(raw):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or not 0 < value <= MAX_GAP_S:
            raise InvalidRetryPolicy(
                f"{name}[{i}] must be a number of seconds above 0 and at most {MAX_GAP_S} "
                f"(30 days), not {value!r}"
            )
        gaps.append(max(1, round(value * 1000)))
    return tuple(gaps)


def _seconds(ms: int) -> float | int:
    return ms // 1000 if ms % 1000 == 0 else ms / 1000
