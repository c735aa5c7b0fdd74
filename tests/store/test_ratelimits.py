"""The shared buckets: one atomic statement per request, on the database's clock."""

from __future__ import annotations

import asyncio

from dialbatch.domain.ratelimit import Limit
from dialbatch.store import ratelimits
from dialbatch.store.engine import Database
from dialbatch.store.tables import rate_buckets


async def test_a_bucket_admits_its_burst_then_says_how_long_to_wait(db: Database) -> None:
    limit = Limit(per_s=1, burst=3)
    verdicts = [(await ratelimits.take(db, "key:a", limit))[0] for _ in range(5)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False]
    assert 0 < verdicts[3].wait_ms <= 1000 and verdicts[3].retry_after_s == 1
    other, _ = await ratelimits.take(db, "key:b", limit)  # buckets are apart
    assert other.allowed


async def test_the_bucket_refills_at_the_rate(db: Database) -> None:
    limit = Limit(per_s=1, burst=2)  # a token a second
    for _ in range(2):
        assert (await ratelimits.take(db, "key:r", limit))[0].allowed
    refused, _ = await ratelimits.take(db, "key:r", limit)
    assert not refused.allowed
    await asyncio.sleep(refused.wait_ms / 1000 + 0.01)
    assert (await ratelimits.take(db, "key:r", limit))[0].allowed


async def test_concurrent_requests_never_share_a_token(db: Database) -> None:
    limit = Limit(per_s=0.01, burst=10)
    got = await asyncio.gather(*(ratelimits.take(db, "key:c", limit) for _ in range(40)))
    assert sum(v.allowed for v, _ in got) == 10


async def test_prune_forgets_only_buckets_that_are_full_again(db: Database) -> None:
    await ratelimits.take(db, "key:fast", Limit(per_s=1000, burst=1))  # full in 1 ms
    await ratelimits.take(db, "key:slow", Limit(per_s=0.01, burst=1))  # full in 100 s
    await asyncio.sleep(0.01)
    assert await ratelimits.prune(db) == 1
    async with db.read() as conn:
        keys = (await conn.execute(rate_buckets.select())).scalars().all()
    assert keys == ["key:slow"]
