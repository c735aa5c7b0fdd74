"""Frequency caps are exact across workers: two intent transactions for the same number,
open at the same time (two workers, two batches), take turns on the number, so the second
counts the first's dial. The end-to-end run of the same promise, with 3 worker processes and
the carrier's ledger, is tests/test_gate_workers.py; this one makes the overlap happen every
time instead of when the timing allows."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from dialbatch.domain.caps import Caps
from dialbatch.store import number_dials, queue
from dialbatch.store.engine import Database
from dialbatch.store.tables import calls
from tests.helpers import WS, make_batch


async def test_two_workers_dialing_one_number_at_once_stay_within_the_cap(db: Database) -> None:
    async with db.write() as conn:
        await number_dials.set_caps(conn, WS, Caps(per_24h=1))
    # Two batches, one call each, to the same number (make_batch numbers its rows alike).
    first, second = await make_batch(db, 1), await make_batch(db, 1)
    async with db.write() as conn:
        (one,), _ = await queue.claim(conn, WS, "w1", 1, 30_000)
    async with db.write() as conn:
        (two,), _ = await queue.claim(conn, WS, "w2", 1, 30_000)
    assert one.phone_number == two.phone_number and one.batch_id != two.batch_id
    first_counted = asyncio.Event()

    async def worker1() -> list[queue.Intent]:
        async with db.write() as conn:
            intents = await queue.begin_dials(conn, [(one, "simulated")], "w1", 30_000)
            first_counted.set()
            # Still open while worker 2's intent runs: without taking turns on the number,
            # worker 2 would count no dial yet and dial too.
            await asyncio.sleep(0.5)
        return intents

    async def worker2() -> list[queue.Intent]:
        await first_counted.wait()
        async with db.write() as conn:
            return await queue.begin_dials(conn, [(two, "simulated")], "w2", 30_000)

    granted1, granted2 = await asyncio.gather(worker1(), worker2())
    assert (len(granted1), len(granted2)) == (1, 0)
    async with db.read() as conn:
        rows = {
            r.batch_id: r
            for r in await conn.execute(
                sa.select(calls.c.batch_id, calls.c.status, calls.c.gate_decision).where(
                    calls.c.batch_id.in_([first, second])
                )
            )
        }
    assert rows[first].status == "dialing"
    assert rows[second].status == "waiting"
    assert rows[second].gate_decision["kind"] == "capped"
