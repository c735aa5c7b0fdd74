"""Frequency caps: at most N dials to one number per rolling 24 hours and per rolling 30 days.

A rolling period ending at ``now`` holds the dials made at instants ``t`` with
``now - period < t``: a dial made exactly 24 hours ago no longer counts. Dial times later than
``now`` (a dial recorded by a host whose clock runs ahead) count too: caps err towards calling
less. Whether one more dial is allowed asks "would it exceed the cap", so a cap of 3 allows a
dial when at most 2 are counted.

The JSON shape (a workspace's caps)::

    {"per24h": 3, "per30d": 10}     # either may be left out (no cap for that period)

A cap is a positive whole number; 0, a negative number, a fraction or a boolean is refused
with :class:`InvalidCaps`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DAY_MS",
    "MAX_CAP",
    "MONTH_MS",
    "NO_CAPS",
    "Caps",
    "InvalidCaps",
    "allowed",
    "next_allowed_at",
    "parse_caps",
]

DAY_MS = 24 * 3600 * 1000
MONTH_MS = 30 * DAY_MS
MAX_CAP = 10_000

_FIELD = "frequencyCaps"
_KEYS = {"per24h": DAY_MS, "per30d": MONTH_MS}


class InvalidCaps(ValueError):
    """A cap is not a positive whole number; the message names the field."""


@dataclass(frozen=True)
class Caps:
    """Dials allowed per rolling 24 h and per rolling 30 days; None means no cap."""

    per_24h: int | None = None
    per_30d: int | None = None

    def __post_init__(self) -> None:
        _check(f"{_FIELD}.per24h", self.per_24h)
        _check(f"{_FIELD}.per30d", self.per_30d)

    def periods(self) -> tuple[tuple[int, int], ...]:
        """``(period_ms, cap)`` for each cap that is set."""
        pairs = ((DAY_MS, self.per_24h), (MONTH_MS, self.per_30d))
        return tuple((period, cap) for period, cap in pairs if cap is not None)

    def to_json(self) -> dict[str, int]:
        out = {}
        if self.per_24h is not None:
            out["per24h"] = self.per_24h
        if self.per_30d is not None:
            out["per30d"] = self.per_30d
        return out


def _check(field: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCaps(f"{field} must be a whole number of dials, got {value!r}")
    if value < 1:
        raise InvalidCaps(f"{field} must be at least 1 (leave it out for no cap), got {value}")
    if value > MAX_CAP:
        raise InvalidCaps(f"{field} must be at most {MAX_CAP}, got {value}")


NO_CAPS = Caps()


def parse_caps(raw: object) -> Caps:
    """Validate the JSON form; None means no caps."""
    if raw is None:
        return NO_CAPS
    if not isinstance(raw, dict):
        raise InvalidCaps(f'{_FIELD} must be a JSON object such as {{"per24h": 3, "per30d": 10}}')
    unknown = set(raw) - set(_KEYS)
    if unknown:
        raise InvalidCaps(f"unknown {_FIELD} fields: {sorted(map(str, unknown))}")
    return Caps(per_24h=raw.get("per24h"), per_30d=raw.get("per30d"))


def allowed(dial_times_ms: Sequence[int], caps: Caps, now_ms: int) -> bool:
    """Whether one more dial at ``now_ms`` stays within every cap."""
    return all(_counted(dial_times_ms, period, now_ms) < cap for period, cap in caps.periods())


def next_allowed_at(dial_times_ms: Sequence[int], caps: Caps, now_ms: int) -> int:
    """The earliest instant >= ``now_ms`` at which one more dial stays within every cap.

    That is when enough of the oldest counted dials have left each period. Only the dials
    given are counted: a dial made in the meantime moves the answer later, so the caller
    asks again at that time rather than dialing blindly.
    """
    at = now_ms
    for period, cap in caps.periods():
        counted = sorted(t for t in dial_times_ms if t > now_ms - period)
        excess = len(counted) - cap
        if excess >= 0:
            # The (excess+1) oldest must leave: the last of them leaves at its time + period.
            at = max(at, counted[excess] + period)
    return at


def _counted(dial_times_ms: Sequence[int], period: int, now_ms: int) -> int:
    since = now_ms - period
    return sum(1 for t in dial_times_ms if t > since)
