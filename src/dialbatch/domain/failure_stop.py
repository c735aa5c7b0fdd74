"""Automatic stop on failure spikes: when too many of a batch's recent dials failed at the
network or the provider, the batch pauses itself rather than burn its list on a carrier
outage.

The rule looks at the batch's last `last_dials` dials that ended within `within_s` seconds
(and after its last resume): if at least `failed_share` of `last_dials` of them failed at
the network or the provider (outcome `failed`: refused, unreachable, a 5xx, never placed),
the batch pauses. The default, at least 10 of the last 20 within 2 minutes, pauses an
outage after about ten dials and leaves an ordinary failure rate (a few percent) alone.

What does not count, so that a bad list is not taken for a bad carrier: the person's
answers (busy, no-answer, voicemail) and cancelled dials; failures that say the *number*
does not exist (SIP 404, 410, 484, 604, or the provider's word for it), which are the list's
fault; and the retries of a call that already failed at the network, which are left out of
the window altogether (they are neither failures nor successes of the carrier's: they say
again what the call's first failure said). Counted with its retries, a list with one dead
number in ten, each tried three times, reads as a quarter of its dials failing and crosses
10 of 20 by chance about once in 70 windows; and at a batch's end, when the fresh numbers
are done, the last dials are mostly retries of the numbers that keep failing, which would
pause a batch that is all but finished. Left out (rather than counted as successes), they
do not hide an outage either: every fresh dial fails then.

Settable per workspace and per batch (`failureStop`); the batch's own setting wins, then
the workspace's, then the default.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dialbatch.domain.outcomes import Outcome

MAX_LAST_DIALS = 1000
MAX_WITHIN_S = 24 * 3600
FIELDS = ("enabled", "lastDials", "failedShare", "withinSeconds")


class InvalidFailureStop(ValueError):
    """A malformed `failureStop`; the message names the field."""


@dataclass(frozen=True)
class FailureStop:
    enabled: bool = True
    last_dials: int = 20
    failed_share: float = 0.5
    within_s: int = 120

    @property
    def min_failures(self) -> int:
        """How many failed dials among the last ones pause the batch (at least one)."""
        return max(1, math.ceil(self.last_dials * self.failed_share - 1e-9))

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "lastDials": self.last_dials,
            "failedShare": self.failed_share,
            "withinSeconds": self.within_s,
        }


DEFAULT = FailureStop()


def parse(raw: object, name: str = "failureStop") -> FailureStop:
    """Validate `{"enabled", "lastDials", "failedShare", "withinSeconds"}` (all optional;
    what is left out takes the default). Raises InvalidFailureStop naming the field."""
    if not isinstance(raw, Mapping):
        raise InvalidFailureStop(f"{name} must be a JSON object with the fields {FIELDS}")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise InvalidFailureStop(f"{name}: unknown field(s) {unknown}; the fields are {FIELDS}")
    enabled = raw.get("enabled", DEFAULT.enabled)
    if not isinstance(enabled, bool):
        raise InvalidFailureStop(f"{name}.enabled must be true or false")
    last = raw.get("lastDials", DEFAULT.last_dials)
    if isinstance(last, bool) or not isinstance(last, int) or not 1 <= last <= MAX_LAST_DIALS:
        raise InvalidFailureStop(f"{name}.lastDials must be a whole number from 1 to 1000")
    share = raw.get("failedShare", DEFAULT.failed_share)
    if (
        isinstance(share, bool)
        or not isinstance(share, int | float)
        or not math.isfinite(share)
        or not 0 < share <= 1
    ):
        raise InvalidFailureStop(f"{name}.failedShare must be a number above 0, at most 1")
    within = raw.get("withinSeconds", DEFAULT.within_s)
    if isinstance(within, bool) or not isinstance(within, int) or not 1 <= within <= MAX_WITHIN_S:
        raise InvalidFailureStop(
            f"{name}.withinSeconds must be a whole number from 1 to {MAX_WITHIN_S}"
        )
    return FailureStop(enabled, last, float(share), within)


def effective(batch: object, workspace: object) -> FailureStop:
    """The rule a batch runs under: its own (stored JSON), else its workspace's, else the
    default. Stored settings were validated when they were set."""
    for raw in (batch, workspace):
        if raw is not None:
            return parse(raw)
    return DEFAULT


# Codes that say the number does not exist: SIP final responses (not found, gone, address
# incomplete, does not exist anywhere) and Telnyx's hangup causes for them. The list's
# fault, not the carrier's.
NUMBER_CODES = frozenset(
    {"404", "410", "484", "604", "not_found", "unallocated_number", "invalid_number_format"}
)


@dataclass(frozen=True)
class DialEnd:
    """One ended dial of the batch: its call, when it ended (ms) and how; `repeat` when the
    call had already failed at the network on an earlier dial (a retry of a failure), which
    the rule leaves out."""

    call_id: int
    ended_at: int
    outcome: str
    provider_code: str | None = None
    repeat: bool = False


def counts_as_failure(outcome: str, provider_code: str | None = None) -> bool:
    """A failure at the network or the provider: neither the person's answer nor a number
    that does not exist."""
    return outcome == Outcome.FAILED.value and (provider_code or "") not in NUMBER_CODES


def decide(rule: FailureStop, recent: Iterable[DialEnd], now_ms: int, since_ms: int) -> str | None:
    """The pause reason, or None to go on. `recent` holds the batch's latest ended dials
    (any order; only the newest `last_dials` of those that are not repeats and ended within
    the window and after `since_ms`, the last resume, are looked at)."""
    if not rule.enabled:
        return None
    start = max(now_ms - rule.within_s * 1000, since_ms)
    fresh = (d for d in recent if d.ended_at >= start and not d.repeat)
    window = sorted(fresh, key=lambda d: -d.ended_at)
    window = window[: rule.last_dials]
    failed = len({d.call_id for d in window if counts_as_failure(d.outcome, d.provider_code)})
    if failed < rule.min_failures:
        return None
    return (
        f"Paused automatically: dials of {failed} calls failed at the network or provider "
        f"among the last {len(window)} dials within {_span(rule.within_s)} (the limit is "
        f"{rule.min_failures} of {rule.last_dials}); resume by hand once the cause is fixed"
    )


def _span(seconds: int) -> str:
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} seconds"
