"""Outcomes applied as a group mean what they would one after another."""

from __future__ import annotations

import sqlalchemy as sa

from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.domain.retry import RetryConfig
from dialbatch.events.apply import apply_outcomes
from dialbatch.store import batches
from dialbatch.store.engine import Database
from dialbatch.store.tables import calls, outbox
from tests.helpers import WS, assert_consistent, make_dialed_batch

RETRY = RetryConfig(connection_attempts=3, backoff_base_ms=1000)


async def test_a_group_of_mixed_outcomes_lands_each_where_it_would_alone(db: Database) -> None:
    batch, (a, b, c, d) = await make_dialed_batch(db, 4)
    events = [
        CallEvent(outcome=Outcome.COMPLETED, dial_key=a.dial_key, duration_s=30.0),
        CallEvent(outcome=Outcome.FAILED, dial_key=b.dial_key, detail="503"),  # retried
        CallEvent(outcome=Outcome.BUSY, dial_key=c.dial_key),  # final: no callback policy
        CallEvent(outcome=Outcome.COMPLETED, dial_key=a.dial_key, duration_s=99.0),  # duplicate
        CallEvent(outcome=Outcome.COMPLETED, dial_key="nobody:1"),  # unknown dial
    ]
    applied = await apply_outcomes(db, events, RETRY)
    assert [x.changed for x in applied] == [True, True, True, False, False]
    assert [x.status.value if x.status else None for x in applied[:3]] == [
        "completed",
        "waiting",
        "failed",
    ]
    async with db.read() as conn:
        rows = dict((await conn.execute(sa.select(calls.c.id, calls.c.duration_s))).all())
        events_out = (await conn.execute(sa.select(outbox.c.event))).scalars().all()
    assert rows[a.call.call_id] == 30.0  # the first word about a dial wins
    assert events_out.count("call.completed") == 1 and events_out.count("call.failed") == 1
    assert await assert_consistent(db, batch) == {
        "completed": 1,
        "waiting": 1,
        "failed": 1,
        "dialing": 1,
    }
    (done,) = await apply_outcomes(
        db, [CallEvent(outcome=Outcome.COMPLETED, dial_key=d.dial_key)], RETRY
    )
    assert done.changed
    async with db.read() as conn:
        b_row = await batches.get_batch(conn, WS, batch)
    assert b_row is not None and b_row.completed_at is None  # one call still to retry


async def test_the_last_outcomes_of_a_batch_close_it_in_the_same_group(db: Database) -> None:
    batch, intents = await make_dialed_batch(db, 3)
    await apply_outcomes(
        db,
        [CallEvent(outcome=Outcome.COMPLETED, dial_key=i.dial_key) for i in intents],
        RETRY,
    )
    assert await assert_consistent(db, batch) == {"completed": 3}
    async with db.read() as conn:
        b = await batches.get_batch(conn, WS, batch)
    assert b is not None and b.status == "completed" and b.completed_at is not None
