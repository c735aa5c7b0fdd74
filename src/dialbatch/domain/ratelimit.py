"""API rate limits: a token bucket kept as one number (GCRA), and the slow-down of wrong keys.

A bucket of `burst` tokens refilled at `per_s` tokens a second is stored as its theoretical
arrival time `tat` (ms): the moment the bucket would be full again. A request at `now` is
admitted when `max(tat, now) - now <= tolerance` and then moves `tat` one interval on; a
refused request changes nothing. One number per bucket means one atomic UPSERT per request
on PostgreSQL (store/ratelimits.py), shared by every API process, with the arithmetic on the
database's clock; an in-memory dict does the same within one process (SQLite).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """`per_s` requests a second sustained, up to `burst` at once. `per_s <= 0`: no limit."""

    per_s: float
    burst: int

    @property
    def enabled(self) -> bool:
        return self.per_s > 0 and self.burst > 0

    @property
    def interval_ms(self) -> float:
        """The time one token takes to come back."""
        return 1000.0 / self.per_s

    @property
    def tolerance_ms(self) -> float:
        """How far ahead of `now` the bucket's `tat` may be and still admit a request."""
        return self.interval_ms * (self.burst - 1)


@dataclass(frozen=True)
class Verdict:
    """A bucket's answer. `tat` is the bucket after this request; `wait_ms` is how long
    until a request would be admitted again (0 when this one was)."""

    allowed: bool
    tat: float
    wait_ms: float = 0.0

    def used(self, limit: Limit, now_ms: float) -> float:
        """Tokens taken and not yet refilled, this request included."""
        return max(0.0, self.tat - now_ms) / limit.interval_ms

    @property
    def retry_after_s(self) -> int:
        """`Retry-After` in whole seconds: rounded up, at least 1."""
        return max(1, math.ceil(self.wait_ms / 1000))


def take(limit: Limit, tat: float | None, now_ms: float) -> Verdict:
    """One request against a bucket whose theoretical arrival time is `tat` (None: a full
    bucket never used). The same arithmetic as the SQL of store/ratelimits.take."""
    start = now_ms if tat is None else max(tat, now_ms)
    if start - now_ms <= limit.tolerance_ms:
        return Verdict(allowed=True, tat=start + limit.interval_ms)
    return refused(limit, start, now_ms)


def refused(limit: Limit, tat: float, now_ms: float) -> Verdict:
    """The verdict for a request the bucket could not admit."""
    return Verdict(allowed=False, tat=tat, wait_ms=tat - limit.tolerance_ms - now_ms)


# Wrong keys: the first few are answered at once (a typo, a rotated key), then each 401 waits
# longer, doubling up to the cap, until the address's failure bucket is empty (429).
FREE_FAILURES = 3
FIRST_DELAY_S = 0.25


def failure_delay_s(failures: float, max_delay_s: float) -> float:
    """How long to hold the 401 of an address's `failures`-th recent wrong key."""
    extra = math.ceil(failures - 1e-6) - FREE_FAILURES
    if extra <= 0 or max_delay_s <= 0:
        return 0.0
    return min(max_delay_s, FIRST_DELAY_S * 2.0 ** min(extra - 1, 30))
