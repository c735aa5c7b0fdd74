"""API rate limits: per API key, per address for wrong keys, per address for callbacks.

- Every authenticated request draws from its API key's bucket (DIALBATCH_RATE_LIMIT_*).
- Every failed authentication draws from its source address's bucket
  (DIALBATCH_AUTH_FAILURE*): after a few, each 401 is held a little longer (doubling, capped),
  and once the bucket is empty the address gets 429 for everything, checked before any key
  is looked at, so a guesser learns nothing while refused.
- Provider callbacks and agent results are not clients: they draw from their own, higher,
  per-address bucket (DIALBATCH_CALLBACK_RATE_LIMIT_*).

On PostgreSQL the buckets are rows shared by every API process (store/ratelimits.py); on
SQLite, whose one writer is the dispatcher's, each process keeps them in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from starlette.requests import HTTPConnection

from dialbatch.api.errors import RateLimited
from dialbatch.domain.ratelimit import Limit, Verdict, failure_delay_s, take
from dialbatch.settings import Settings
from dialbatch.store import ratelimits
from dialbatch.store.engine import Database

PRUNE_EVERY_S = 60.0
MEMORY_MAX_BUCKETS = 100_000
TOO_MANY_FAILURES = "Too many failed authentications from this address"


class Buckets(Protocol):
    async def take(self, key: str, limit: Limit) -> tuple[Verdict, float]:
        """One request against bucket `key`: the verdict and now (epoch ms)."""

    async def prune(self) -> None:
        """Forget the buckets that are full again."""


class MemoryBuckets:
    """One process's buckets (SQLite): a dict of theoretical arrival times."""

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}

    async def take(self, key: str, limit: Limit) -> tuple[Verdict, float]:
        now = time.time() * 1000
        verdict = take(limit, self._tat.get(key), now)
        if verdict.allowed:
            self._tat[key] = verdict.tat
            if len(self._tat) > MEMORY_MAX_BUCKETS:
                await self.prune()
        return verdict, now

    async def prune(self) -> None:
        now = time.time() * 1000
        self._tat = {k: t for k, t in self._tat.items() if t > now}
        if len(self._tat) > MEMORY_MAX_BUCKETS:
            # So many live buckets (addresses) that keeping them would cost a scan per
            # request: start afresh, which is lenient, rather than slow.
            self._tat.clear()


class DatabaseBuckets:
    """Buckets shared by every API process: rows of `rate_buckets` (PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def take(self, key: str, limit: Limit) -> tuple[Verdict, float]:
        return await ratelimits.take(self._db, key, limit)

    async def prune(self) -> None:
        await ratelimits.prune(self._db)


@dataclass(frozen=True)
class Limits:
    client: Limit
    failures: Limit
    callbacks: Limit
    max_delay_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            client=Limit(settings.rate_limit_per_s, settings.rate_limit_burst),
            failures=Limit(settings.auth_failures_per_min / 60, settings.auth_failure_burst),
            callbacks=Limit(settings.callback_rate_limit_per_s, settings.callback_rate_limit_burst),
            max_delay_s=settings.auth_failure_max_delay_s,
        )


class RateLimiter:
    """The app's limits (`app.state.rate_limiter`)."""

    def __init__(self, buckets: Buckets, limits: Limits) -> None:
        self.buckets = buckets
        self.limits = limits
        # Addresses this process refused for wrong keys, until when (epoch ms): refused at
        # once, before any key is checked. Another process learns it at its own first
        # failure from that address, from the shared bucket.
        self._blocked: dict[str, float] = {}
        self._pruned_at = time.monotonic()

    @classmethod
    def for_app(cls, db: Database, settings: Settings) -> RateLimiter:
        # One process on an embedded database: its own buckets; otherwise shared ones.
        buckets: Buckets = DatabaseBuckets(db) if db.wakes_other_processes else MemoryBuckets()
        return cls(buckets, Limits.from_settings(settings))

    def refuse_if_blocked(self, address: str) -> None:
        """429 for an address whose wrong keys emptied its bucket, until it refills."""
        until = self._blocked.get(address)
        if until is None:
            return
        now = time.time() * 1000
        if until <= now:
            del self._blocked[address]
            return
        raise _refusal(TOO_MANY_FAILURES, now, until - now)

    async def admit_key(self, api_key: str) -> None:
        """Draw one request from the API key's bucket (the key is known to be valid)."""
        limit = self.limits.client
        if not limit.enabled:
            return
        digest = hashlib.sha256(api_key.encode()).hexdigest()[:32]
        verdict, now = await self._take(f"key:{digest}", limit)
        if not verdict.allowed:
            raise _refusal(
                f"Rate limit of {limit.per_s:g} requests/s (burst {limit.burst}) for this "
                "API key exceeded",
                now,
                verdict.wait_ms,
            )

    async def failed(self, address: str) -> None:
        """A wrong or missing key from `address`: hold the 401 a while, or refuse (429)."""
        limit = self.limits.failures
        if not limit.enabled:
            return
        verdict, now = await self._take(f"auth:{address}", limit)
        if not verdict.allowed:
            self._blocked[address] = now + verdict.wait_ms
            raise _refusal(TOO_MANY_FAILURES, now, verdict.wait_ms)
        delay = failure_delay_s(verdict.used(limit, now), self.limits.max_delay_s)
        if delay > 0:
            await asyncio.sleep(delay)

    async def admit_callback(self, address: str) -> None:
        """Draw one request from the address's callback bucket (providers, agent results)."""
        limit = self.limits.callbacks
        if not limit.enabled:
            return
        verdict, now = await self._take(f"callback:{address}", limit)
        if not verdict.allowed:
            raise _refusal(
                f"Rate limit of {limit.per_s:g} callbacks/s from this address exceeded",
                now,
                verdict.wait_ms,
            )

    async def _take(self, key: str, limit: Limit) -> tuple[Verdict, float]:
        if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
            self._pruned_at = time.monotonic()
            await self.buckets.prune()
            now = time.time() * 1000
            self._blocked = {a: t for a, t in self._blocked.items() if t > now}
        return await self.buckets.take(key, limit)


def _refusal(message: str, now_ms: float, wait_ms: float) -> RateLimited:
    verdict = Verdict(allowed=False, tat=now_ms, wait_ms=wait_ms)
    return RateLimited(
        f"{message}; retry after {verdict.retry_after_s} s",
        reset_at=iso_utc(now_ms + wait_ms),
        retry_after_s=verdict.retry_after_s,
    )


def iso_utc(epoch_ms: float) -> str:
    """`2026-12-04T18:03:11.250Z`: ISO 8601, UTC, milliseconds."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def client_address(conn: HTTPConnection) -> str:
    """The request's source address (behind a proxy: what uvicorn's --proxy-headers made of
    X-Forwarded-For, for the proxies FORWARDED_ALLOW_IPS trusts)."""
    return conn.client.host if conn.client else "unknown"


def limiter(conn: HTTPConnection) -> RateLimiter:
    """The app's limiter: set at start, else made on first use from the app's settings."""
    state = conn.app.state
    found: RateLimiter | None = getattr(state, "rate_limiter", None)
    if found is None:
        found = state.rate_limiter = RateLimiter.for_app(state.db, state.settings)
    return found


async def limit_callbacks(conn: HTTPConnection) -> None:
    """Dependency of the provider-callback and agent-result routes."""
    await limiter(conn).admit_callback(client_address(conn))
