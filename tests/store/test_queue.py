"""The queue protocol's invariants (DESIGN.md §4), exercised directly on the store."""

from __future__ import annotations

import asyncio
import itertools

import pytest
import sqlalchemy as sa

from dialbatch.domain.ids import now_ms
from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.domain.retry import RetryConfig
from dialbatch.events.apply import apply_outcomes
from dialbatch.store import batches, counters, queue, workspaces
from dialbatch.store.engine import Database
from dialbatch.store.outcomes import Applied
from dialbatch.store.tables import attempts, calls, workspace_limiter
from dialbatch.store.tables import batches as batches_table
from tests.helpers import WS, assert_consistent, make_batch

LEASE = 30_000
RETRY = RetryConfig(connection_attempts=3, backoff_base_ms=1000)


async def claim(db: Database, n: int = 100, owner: str = "w1") -> list[queue.Claimed]:
    async with db.write() as conn:
        got, _ = await queue.claim(conn, WS, owner, n, LEASE)
    return got


async def dial(db: Database, c: queue.Claimed, owner: str = "w1") -> queue.Intent | None:
    async with db.write() as conn:
        return await queue.begin_dial(conn, c, owner, "simulated", LEASE)


async def outcome(db: Database, key: str, o: Outcome, **kw: object) -> Applied:
    (applied,) = await apply_outcomes(db, [CallEvent(outcome=o, dial_key=key, **kw)], RETRY)  # type: ignore[arg-type]
    return applied


async def test_claims_never_exceed_the_concurrency_cap(db: Database) -> None:
    batch = await make_batch(db, 20)
    first = await claim(db)
    assert len(first) == 5  # max_concurrent_calls
    assert await claim(db) == []
    intent = await dial(db, first[0])
    assert intent is not None
    await outcome(db, intent.dial_key, Outcome.COMPLETED, duration_s=12.5)
    assert len(await claim(db)) == 1  # exactly the slot that was freed
    await assert_consistent(db, batch)


async def test_claims_follow_one_schedule_shared_by_all_workers(db: Database) -> None:
    async with db.write() as conn:
        await workspaces.set_limits(conn, WS, max_concurrent_calls=100, calls_per_second=4)
    await make_batch(db, 50)
    starts: list[float] = []

    async def claim_as(owner: str) -> int:
        async with db.write() as conn:
            got, pace = await queue.claim(conn, WS, owner, 100, LEASE)
        assert all(pace.delay_s(i) >= 0 for i in range(len(got)))  # none before its claim
        starts.extend(pace.first_start_ms + i * pace.interval_ms for i in range(len(got)))
        return len(got)

    assert await claim_as("w1") == 4  # the starts within the next second: no more
    assert await claim_as("w2") <= 1  # a second worker finds the schedule already taken
    await asyncio.sleep(0.6)
    assert await claim_as("w2") >= 1  # its next starts have come within the horizon
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == [pytest.approx(250.0)] * len(gaps)  # exactly 1/cps apart, across workers


async def test_an_idle_workspace_gets_no_burst(db: Database) -> None:
    async with db.write() as conn:
        await workspaces.set_limits(conn, WS, max_concurrent_calls=100, calls_per_second=2)
        # Its last call started long ago.
        await conn.execute(workspace_limiter.update().values(next_start_at=now_ms() - 3_600_000))
    await make_batch(db, 50)
    async with db.write() as conn:
        got, pace = await queue.claim(conn, WS, "w1", 100, LEASE)
    assert len(got) == 2  # one second's worth, spaced, not an hour's saved-up burst
    assert pace.delay_s(0) == 0 and pace.delay_s(1) == pytest.approx(0.5)


async def test_a_claim_racing_a_cancel_never_dials(db: Database) -> None:
    batch = await make_batch(db, 10)
    claimed = await claim(db)
    cancelled = await batches.cancel_batch(db, WS, batch)
    assert cancelled is not None and cancelled.status == "cancelled"
    for c in claimed:
        assert await dial(db, c) is None
    async with db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(attempts)) == 0
    real = await assert_consistent(db, batch)
    assert real == {"cancelled": 10}
    async with db.read() as conn:
        b = await batches.get_batch(conn, WS, batch)
    assert b is not None and b.completed_at is not None  # nothing can run any more


async def test_cancel_leaves_active_calls_to_finish(db: Database) -> None:
    batch = await make_batch(db, 10)
    claimed = await claim(db)
    intent = await dial(db, claimed[0])
    assert intent is not None
    await batches.cancel_batch(db, WS, batch)
    assert await assert_consistent(db, batch) == {"dialing": 1, "cancelled": 9}
    await outcome(db, intent.dial_key, Outcome.COMPLETED, duration_s=3)
    assert await assert_consistent(db, batch) == {"completed": 1, "cancelled": 9}
    assert await claim(db) == []


async def test_a_stale_lease_token_cannot_dial(db: Database) -> None:
    batch = await make_batch(db, 1)
    [mine] = await claim(db, owner="w1")
    async with db.write() as conn:  # w1 stalls past its lease; the sweeper frees the call
        await conn.execute(calls.update().values(lease_expires=0))
        assert await queue.expire_claims(conn) == 1
    [theirs] = await claim(db, owner="w2")
    assert theirs.lease_token == mine.lease_token + 1
    assert await dial(db, mine, owner="w1") is None
    assert await dial(db, theirs, owner="w2") is not None
    await assert_consistent(db, batch)


async def test_duplicate_and_late_events_change_nothing(db: Database) -> None:
    batch = await make_batch(
        db, 1, policy={"enabled": True, "maxAttempts": 2, "gaps": [{"hours": 0}]}
    )
    [c] = await claim(db)
    first = await dial(db, c)
    assert first is not None
    assert (await outcome(db, first.dial_key, Outcome.BUSY)).status == "waiting"
    assert not (await outcome(db, first.dial_key, Outcome.BUSY)).changed  # duplicate
    [c2] = await claim(db)
    second = await dial(db, c2)
    assert second is not None and second.attempt == 2
    # a late, different event for attempt 1 must not touch attempt 2
    assert not (await outcome(db, first.dial_key, Outcome.COMPLETED)).changed
    done = await outcome(db, second.dial_key, Outcome.COMPLETED, duration_s=30)
    assert done.status == "completed"
    assert await assert_consistent(db, batch) == {"completed": 1}


async def test_smart_callback_schedules_the_next_attempt_after_the_gap(db: Database) -> None:
    await make_batch(db, 1, policy={"enabled": True, "maxAttempts": 3, "gaps": [{"hours": 2}]})
    [c] = await claim(db)
    intent = await dial(db, c)
    assert intent is not None
    before = now_ms()
    await outcome(db, intent.dial_key, Outcome.NO_ANSWER)
    async with db.read() as conn:
        row = (await conn.execute(sa.select(calls.c.status, calls.c.next_attempt_at))).one()
    assert row.status == "waiting"
    assert abs(row.next_attempt_at - (before + 2 * 3600 * 1000)) < 5_000
    assert await claim(db) == []  # not due yet


async def test_connection_failures_retry_then_fail_with_the_attempt_count(db: Database) -> None:
    batch = await make_batch(db, 1)
    for n in (1, 2, 3):
        async with db.write() as conn:
            await conn.execute(calls.update().values(next_attempt_at=0))
        [c] = await claim(db)
        intent = await dial(db, c)
        assert intent is not None and intent.attempt == n
        await outcome(db, intent.dial_key, Outcome.FAILED)
    async with db.read() as conn:
        row = (await conn.execute(sa.select(calls.c.status, calls.c.error))).one()
    assert row.status == "failed"
    assert row.error == "Call failed - unable to connect after 3 attempts"
    await assert_consistent(db, batch)


async def test_expired_dials_become_unknown_and_are_never_reclaimed(db: Database) -> None:
    batch = await make_batch(db, 2)
    claimed = await claim(db)
    intent = await dial(db, claimed[0])
    assert intent is not None
    async with db.write() as conn:
        await conn.execute(
            calls.update().where(calls.c.status == "dialing").values(lease_expires=0)
        )
        uncertain = await queue.expire_dials(conn, "sweeper", LEASE)
    assert [u.dial_key for u in uncertain] == [intent.dial_key]
    assert await claim(db) == []  # an unknown call is not waiting: it is never re-dialed blindly
    await assert_consistent(db, batch)


async def test_scheduled_batches_wait_for_their_time(db: Database) -> None:
    await make_batch(db, 3, scheduled_at=now_ms() + 3_600_000)
    assert await claim(db) == []
    async with db.read() as conn:
        assert await queue.runnable_workspaces(conn) == []


async def test_claims_are_shared_fairly_between_batches(db: Database) -> None:
    a = await make_batch(db, 50)
    b = await make_batch(db, 50)
    got = await claim(db, n=4)
    per = {x.batch_id: 0 for x in got}
    for x in got:
        per[x.batch_id] += 1
    assert per == {a: 2, b: 2} or per == {b: 2, a: 2}


async def test_a_retryable_outcome_after_cancel_ends_the_call(db: Database) -> None:
    policy = {"enabled": True, "maxAttempts": 3, "gaps": [{"hours": 0}]}
    batch = await make_batch(db, 3, policy=policy)
    [c, *_] = await claim(db)
    intent = await dial(db, c)
    assert intent is not None
    await batches.cancel_batch(db, WS, batch)
    applied = await outcome(db, intent.dial_key, Outcome.NO_ANSWER)
    assert applied.status == "failed"  # not back to waiting: nothing would ever claim it
    assert await assert_consistent(db, batch) == {"failed": 1, "cancelled": 2}
    async with db.read() as conn:
        b = await batches.get_batch(conn, WS, batch)
        error = await conn.scalar(sa.select(calls.c.error).where(calls.c.status == "failed"))
    assert b is not None and b.completed_at is not None
    assert error == "No answer - not retried: batch cancelled"


async def flip_to_cancelled(db: Database, batch_id: str) -> None:
    """The cancel's status flip alone, as a claim committing just after its sweep sees it."""
    async with db.write() as conn:
        await conn.execute(
            sa.update(batches_table)
            .where(batches_table.c.id == batch_id)
            .values(status="cancelled")
        )


async def test_a_claim_that_outlived_the_cancel_ends_cancelled_at_its_intent(db: Database) -> None:
    batch = await make_batch(db, 4)
    claimed = await claim(db)
    await flip_to_cancelled(db, batch)
    assert [await dial(db, c) for c in claimed] == [None] * len(claimed)
    real = await assert_consistent(db, batch)
    assert real == {"cancelled": 4}
    async with db.read() as conn:
        b = await batches.get_batch(conn, WS, batch)
        active = await conn.scalar(sa.select(workspace_limiter.c.active))
    assert b is not None and b.completed_at is not None
    assert active == 0


async def test_an_expired_claim_in_a_cancelled_batch_ends_cancelled(db: Database) -> None:
    batch = await make_batch(db, 3)
    await claim(db)
    await flip_to_cancelled(db, batch)
    async with db.write() as conn:
        await conn.execute(sa.update(calls).values(lease_expires=0))
        assert await queue.expire_claims(conn) == 3
    assert await assert_consistent(db, batch) == {"cancelled": 3}
    async with db.read() as conn:
        b = await batches.get_batch(conn, WS, batch)
    assert b is not None and b.completed_at is not None


# -- a batch's own maxConcurrency and priority (issue 11, item 7) ---------------------------


def per_batch(got: list[queue.Claimed]) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in got:
        out[x.batch_id] = out.get(x.batch_id, 0) + 1
    return out


async def test_a_batch_cap_leaves_the_rest_of_the_workspace_to_other_batches(db: Database) -> None:
    async with db.write() as conn:
        await workspaces.set_limits(conn, WS, max_concurrent_calls=10, calls_per_second=1000)
    capped = await make_batch(db, 20, max_concurrency=3)
    other = await make_batch(db, 20)
    first = await claim(db)
    assert per_batch(first) == {capped: 3, other: 7}
    # The capped batch's calls stay live while dialing: no more of them, even with room.
    for c in first:
        if c.batch_id == other:
            intent = await dial(db, c)
            assert intent is not None
            await outcome(db, intent.dial_key, Outcome.COMPLETED, duration_s=1.0)
    assert per_batch(await claim(db)) == {other: 7}
    # One of the capped batch's calls ends: exactly one more of it may go live.
    ours = [c for c in first if c.batch_id == capped]
    intent = await dial(db, ours[0])
    assert intent is not None
    await outcome(db, intent.dial_key, Outcome.COMPLETED, duration_s=1.0)
    assert per_batch(await claim(db)) == {capped: 1}
    await assert_consistent(db, capped)
    await assert_consistent(db, other)


async def test_a_batch_cap_above_the_workspace_cap_means_the_workspace_cap(db: Database) -> None:
    await make_batch(db, 20, max_concurrency=50)
    assert len(await claim(db)) == 5  # the workspace's max_concurrent_calls


async def test_a_claim_serves_the_higher_priority_first(db: Database) -> None:
    async with db.write() as conn:
        await workspaces.set_limits(conn, WS, max_concurrent_calls=10, calls_per_second=1000)
    low = await make_batch(db, 20, priority=-5)
    high = await make_batch(db, 20, priority=7)
    assert per_batch(await claim(db, n=6)) == {high: 6}
    assert per_batch(await claim(db)) == {high: 4}  # the rest of the cap, still all high
    assert await claim(db) == []  # the cap (10) is full; the low batch waits
    async with db.read() as conn:
        assert (await counters.tally(conn, low)).by_state == {"waiting": 20}


async def test_a_higher_priority_capped_by_its_own_limit_leaves_the_rest_to_lower(
    db: Database,
) -> None:
    async with db.write() as conn:
        await workspaces.set_limits(conn, WS, max_concurrent_calls=10, calls_per_second=1000)
    low = await make_batch(db, 20)
    high = await make_batch(db, 20, priority=1, max_concurrency=4)
    assert per_batch(await claim(db)) == {high: 4, low: 6}


async def test_equal_priorities_share_fairly(db: Database) -> None:
    a = await make_batch(db, 50, priority=3)
    b = await make_batch(db, 50, priority=3)
    await make_batch(db, 50, priority=-1)
    assert per_batch(await claim(db, n=4)) == {a: 2, b: 2}


async def test_a_lower_priority_is_served_once_the_higher_has_nothing_due(db: Database) -> None:
    high = await make_batch(db, 2, priority=10)
    low = await make_batch(db, 20)
    assert per_batch(await claim(db)) == {high: 2, low: 3}
