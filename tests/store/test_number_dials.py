"""Frequency caps are exact across workers: two intent transactions for the same number,
open at the same time (two workers, two batches), take turns on the number, so the second
counts the first's dial. The end-to-end run of the same promise, with 3 worker processes and
the carrier's ledger, is tests/test_gate_workers.py; this one makes the overlap happen every
time instead of when the timing allows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import sqlalchemy as sa

from dialbatch.domain.caps import DAY_MS, Caps
from dialbatch.domain.clock import FixedClock
from dialbatch.domain.ids import new_batch_id
from dialbatch.store import batches, gate_settings, number_dials, queue
from dialbatch.store._dialect import db_now_ms
from dialbatch.store.engine import Database
from dialbatch.store.tables import calls
from tests.domain._time import NEW_YORK, local
from tests.helpers import AGENT, WS, make_batch


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


async def test_floridas_cap_under_us_is_exact_across_workers_and_names_its_rule(
    db: Database,
) -> None:
    """The same promise for a cap that comes from a rule pack: under `us`, a Florida number
    gets at most 3 dials per 24 h. Two dials are on record; two workers then dial it from
    two batches at once: one gets the third, the other is held by Florida's rule."""
    miami = "+13055550123"
    async with db.write() as conn:
        await gate_settings.update(conn, WS, compliance_profile="us")
        now = await db_now_ms(conn)
        await number_dials.record(
            conn, [(f"earlier:{i}", WS, miami, now - 3_600_000 * (i + 1)) for i in range(2)]
        )
    first, second = await make_batch_to(db, miami), await make_batch_to(db, miami)
    clock = FixedClock(local(NEW_YORK, 2026, 6, 10, 12, 0))  # inside Florida's hours
    async with db.write() as conn:
        (one,), _ = await queue.claim(conn, WS, "w1", 1, 30_000, clock=clock)
    async with db.write() as conn:
        (two,), _ = await queue.claim(conn, WS, "w2", 1, 30_000, clock=clock)
    first_counted = asyncio.Event()

    async def worker1() -> list[queue.Intent]:
        async with db.write() as conn:
            intents = await queue.begin_dials(conn, [(one, "simulated")], "w1", 30_000, clock=clock)
            first_counted.set()
            await asyncio.sleep(0.5)
        return intents

    async def worker2() -> list[queue.Intent]:
        await first_counted.wait()
        async with db.write() as conn:
            return await queue.begin_dials(conn, [(two, "simulated")], "w2", 30_000, clock=clock)

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
    held = rows[second if one.batch_id == first else first]
    assert held.status == "waiting"
    assert held.gate_decision["rule"] == "us.fl.frequency"
    assert "Fla. Stat." in held.gate_decision["source"]
    # Due when the older of the two earlier dials is 24 hours old.
    assert held.gate_decision["until"] == now - 3_600_000 * 2 + DAY_MS


async def make_batch_to(db: Database, phone: str) -> str:
    async def rows() -> AsyncIterator[list[tuple[int, str, str]]]:
        yield [(0, phone, "{}")]

    batch_id = new_batch_id()
    async with db.write() as conn:
        await batches.insert_batch(
            conn,
            batch_id=batch_id,
            workspace_id=WS,
            agent_id=AGENT,
            scheduled_at=None,
            callback_policy={"enabled": False, "maxAttempts": 1, "gaps": []},
            source_name=None,
            rows=rows(),
        )
    return batch_id
