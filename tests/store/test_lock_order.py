"""The store's one lock order (DESIGN.md §4 invariant 8) under concurrent writers: claims,
intents, placements recorded, progress (with the provider's id), outcomes, lease renewals
and the recovery sweeps, all at once over the same calls, never deadlock on PostgreSQL.

A placement and an outcome of the same dial arrive together whenever a call is short; a
worker renewing its leases touches every call it follows. Before the order held,
`record_placed_many` deadlocked with these (issue 9)."""

from __future__ import annotations

import asyncio
import random

import pytest

from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.domain.progress import CallProgress, Stage
from dialbatch.domain.retry import RetryConfig
from dialbatch.events.apply import apply_outcomes
from dialbatch.store import following, queue, workspaces
from dialbatch.store.engine import Database
from tests.helpers import WS, assert_consistent, make_batch

RETRY = RetryConfig(connection_attempts=3, backoff_base_ms=0)
CALLS = 1200
WORKERS = 4


async def test_placements_outcomes_and_claims_at_once_never_deadlock(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has one writer at a time: nothing to deadlock")
    async with db.write() as conn:
        await workspaces.set_limits(conn, WS, max_concurrent_calls=1000, calls_per_second=100_000)
    batch = await make_batch(db, CALLS)
    rng = random.Random(9)
    errors: list[BaseException] = []

    async def guarded(write: asyncio.Future[object] | object) -> None:
        try:
            await write  # type: ignore[misc]
        except Exception as exc:  # a deadlock, say: the test fails below with it
            errors.append(exc)

    async def place(intents: list[queue.Intent]) -> None:
        pairs = [(i.dial_key, f"pc-{i.dial_key}") for i in intents]
        rng.shuffle(pairs)
        async with db.write() as conn:
            await queue.record_placed_many(conn, pairs)

    async def progress(intents: list[queue.Intent]) -> None:
        for i in intents:
            event = CallProgress(Stage.RINGING, i.dial_key, f"pc-{i.dial_key}")
            async with db.write() as conn:
                await following.apply_progress(conn, event)

    async def end(intents: list[queue.Intent]) -> None:
        events = [
            CallEvent(
                outcome=rng.choice([Outcome.COMPLETED, Outcome.FAILED]),
                dial_key=i.dial_key,
                duration_s=1.0,
            )
            for i in intents
        ]
        rng.shuffle(events)
        await apply_outcomes(db, events, RETRY)

    async def sweep(owner: str) -> None:
        async with db.write() as conn:
            await queue.renew_dial_leases(conn, owner, 30_000)
        async with db.write() as conn:
            await queue.expire_claims(conn)
        async with db.write() as conn:
            await queue.expire_dials(conn, owner, 30_000)

    async def worker(owner: str) -> None:
        idle = 0
        while idle < 3:
            async with db.write() as conn:
                claimed, _ = await queue.claim(conn, WS, owner, 150, 30_000)
            if not claimed:
                idle += 1
                await asyncio.sleep(0.05)
                continue
            idle = 0
            # Attempt rows in another order than their calls (as retries and groups that
            # span batches make them): the order of locks must not follow either by luck.
            rng.shuffle(claimed)
            async with db.write() as conn:
                intents = await queue.begin_dials(
                    conn, [(c, "simulated") for c in claimed], owner, 30_000
                )
            half = len(intents) // 2
            await asyncio.gather(
                guarded(place(intents)),
                guarded(progress(intents[: half // 4])),
                guarded(end(intents[half:])),
                guarded(end(intents[: half // 2])),
                guarded(sweep(owner)),
            )
            await guarded(end(intents))

    await asyncio.gather(*(worker(f"w{k}") for k in range(WORKERS)))
    assert errors == []
    real = await assert_consistent(db, batch)
    assert real.get("dialing", 0) == real.get("claimed", 0) == 0
