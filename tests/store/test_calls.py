"""Listing calls by status: pages are exact, and agree with the counters."""

from __future__ import annotations

from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.domain.retry import RetryConfig
from dialbatch.domain.states import CallState, states_for_wire
from dialbatch.events.apply import apply_outcomes
from dialbatch.store import calls, counters, queue
from dialbatch.store.engine import Database
from tests.helpers import WS, make_batch


async def test_waiting_lists_claimed_first_then_queue_order_across_pages(db: Database) -> None:
    batch = await make_batch(db, 10)
    async with db.write() as conn:
        claimed, _ = await queue.claim(conn, WS, "w1", 3, 30_000)
        intent = await queue.begin_dial(conn, claimed[0], "w1", "simulated", 30_000)
        assert intent is not None
    await apply_outcomes(
        db, [CallEvent(outcome=Outcome.COMPLETED, dial_key=intent.dial_key)], RetryConfig()
    )
    waiting = states_for_wire("waiting")
    async with db.read() as conn:
        tally = await counters.tally(conn, batch)
        pages = [
            await calls.page(conn, batch, states=waiting, offset=o, limit=4) for o in (0, 4, 8)
        ]
        completed = await calls.page(conn, batch, states=(CallState.COMPLETED,), offset=0, limit=5)
        everything = await calls.page(conn, batch, states=None, offset=0, limit=100)
    listed = [r.seq for p in pages for r in p]
    assert tally.wire("waiting") == 9 == len(listed) == len(set(listed))
    assert listed[:2] == [1, 2]  # the two still claimed, then the queue in CSV order
    assert listed[2:] == list(range(3, 10))
    assert [r.seq for r in completed] == [0]
    assert [r.seq for r in everything] == list(range(10))
