"""The one clock every time decision reads, so tests can set "now" anywhere.

The gate's rules (calling windows, frequency caps) never read the system time themselves:
they take ``now`` as an argument, and whoever calls them reads it from a :class:`Clock`. In
production the decision that must agree across hosts uses the database's clock (the store
reads it inside the intent transaction); everything else may use :class:`SystemClock`. Tests
use :class:`FixedClock` and move it by hand.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """A source of "now" in milliseconds since the Unix epoch (UTC)."""

    def now_ms(self) -> int: ...


class SystemClock:
    """This host's wall clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class FixedClock:
    """A clock that stands still until told to move: for tests and replays."""

    def __init__(self, now_ms: int = 0) -> None:
        self._now_ms = int(now_ms)

    def now_ms(self) -> int:
        return self._now_ms

    def set(self, now_ms: int) -> None:
        self._now_ms = int(now_ms)

    def advance(self, ms: int) -> int:
        """Move forward by ``ms`` (negative moves back) and return the new time."""
        self._now_ms += int(ms)
        return self._now_ms

    @classmethod
    def at(cls, when: datetime) -> FixedClock:
        """A clock set to an aware datetime (any zone)."""
        return cls(to_ms(when))


def to_ms(when: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime; a naive one is refused, not guessed."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("a naive datetime has no instant: give it a time zone")
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return delta // _ONE_MS


def from_ms(ms: int) -> datetime:
    """The UTC datetime of an instant in milliseconds."""
    return datetime(1970, 1, 1, tzinfo=UTC) + ms * _ONE_MS


_ONE_MS = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
