"""Listing calls by status: pages are exact, and agree with the counters; the export's
keyset steps."""

from __future__ import annotations

import json

from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.domain.retry import RetryConfig
from dialbatch.domain.states import CallState, states_for_wire
from dialbatch.events.apply import apply_outcomes
from dialbatch.store import calls, counters, queue, tables
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


async def test_export_rows_carry_result_fields_of_completed_calls_only(db: Database) -> None:
    batch = await make_batch(db, 4)
    c = tables.calls.c
    finished = {
        0: ("completed", {"outcome": "booked", "transcript": 'Hi,\n"there"', "data": {"a": 1}}),
        1: ("failed", {"outcome": "no-answer", "summary": "none"}),
        2: ("completed", None),
    }
    async with db.write() as conn:
        for seq, (status, result) in finished.items():
            await conn.execute(
                tables.calls.update()
                .where(c.batch_id == batch, c.seq == seq)
                .values(status=status, result=result, started_at=1, ended_at=2, duration_s=0.5)
            )
    async with db.read() as conn:
        first = await calls.after(
            conn, batch, after_seq=-1, states=None, limit=3, result_fields=True
        )
        rest = await calls.after(
            conn, batch, after_seq=first[-1][0], states=None, limit=3, result_fields=True
        )
        failed = await calls.after(
            conn, batch, after_seq=-1, states=(CallState.FAILED,), limit=9, result_fields=True
        )
    assert [r[0] for r in first] == [0, 1, 2] and [r[0] for r in rest] == [3]
    fields = {r[0]: tuple(r[9:13]) for r in [*first, *rest]}  # then timezone and consent
    outcome, transcript, summary, data = fields[0]
    assert (outcome, transcript, summary) == ("booked", 'Hi,\n"there"', "")
    assert json.loads(data) == {"a": 1}
    # A failed call's result, a completed call without one, a waiting call: all empty.
    assert fields[1] == fields[2] == fields[3] == ("", "", "", "")
    assert [r[0] for r in failed] == [1]


async def test_export_steps_with_different_filters_and_sizes_each_read_their_own(
    db: Database,
) -> None:
    """The export's statement is kept per shape (filter, step size): a step with another
    filter or size gets its own rows, and each step sees what committed before it."""
    batch = await make_batch(db, 6)
    c = tables.calls.c
    async with db.write() as conn:
        await conn.execute(
            tables.calls.update()
            .where(c.batch_id == batch, c.seq.in_([1, 4]))
            .values(status="failed", error="busy", started_at=1, ended_at=2)
        )
    async with db.read() as conn:
        failed = await calls.after(conn, batch, after_seq=-1, states=(CallState.FAILED,), limit=5)
        both = await calls.after(
            conn,
            batch,
            after_seq=-1,
            states=(CallState.FAILED, CallState.WAITING),
            limit=5,
        )
        first = await calls.after(conn, batch, after_seq=-1, states=None, limit=2)
    assert [r[0] for r in failed] == [1, 4]
    assert [r[0] for r in both] == [0, 1, 2, 3, 4]
    assert [r[0] for r in first] == [0, 1]
    # A change committed between two steps is in the next one (no snapshot held across).
    async with db.write() as conn:
        await conn.execute(
            tables.calls.update()
            .where(c.batch_id == batch, c.seq == 5)
            .values(status="failed", error="late", started_at=1, ended_at=2)
        )
    async with db.read() as conn:
        rest = await calls.after(
            conn, batch, after_seq=first[-1][0], states=(CallState.FAILED,), limit=5
        )
    assert [(r[0], r[8]) for r in rest] == [(4, "busy"), (5, "late")]
