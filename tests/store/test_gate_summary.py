"""A batch's gate summary (issue 10, item 7), on SQLite and PostgreSQL: waiting calls held
for a window or a cap, and the calls the gate refused, by kind; a hold whose time has come
no longer counts."""

from __future__ import annotations

from dialbatch.domain.caps import Caps
from dialbatch.domain.clock import FixedClock
from dialbatch.store import gate_summary, number_dials, suppressions
from dialbatch.store.engine import Database
from tests.domain._time import NEW_YORK, local
from tests.helpers import WS, assert_consistent
from tests.store.test_gating import (
    EIGHT_TO_NINE,
    LA,
    NOWHERE,
    NYC,
    WED,
    WED_2027,
    claim,
    dial,
    make_windowed,
)

SUPPRESSED = "+12125550188"


async def summary(db: Database, batch_id: str) -> gate_summary.GateSummary:
    async with db.read() as conn:
        return await gate_summary.gate_summary(conn, batch_id)


async def test_the_summary_counts_each_kind_of_hold_and_refusal(db: Database) -> None:
    async with db.write() as conn:
        await number_dials.set_caps(conn, WS, Caps(per_24h=1))
    batch = await make_windowed(db, [NYC, NYC, LA, NOWHERE, SUPPRESSED], EIGHT_TO_NINE)
    async with db.write() as conn:
        await suppressions.add(conn, WS, [(SUPPRESSED, "asked")], source="api")
    clock = FixedClock(local(NEW_YORK, *WED_2027, 10, 0))  # 7:00 in Los Angeles
    intents = await dial(db, await claim(db, clock), clock)
    assert [i.call.phone_number for i in intents] == [NYC]  # the second one is capped
    got = await summary(db, batch)
    assert got == gate_summary.GateSummary(
        waiting_for_window=1, waiting_for_cap=1, refused={"no_zone": 1, "suppressed": 1}
    )
    assert await assert_consistent(db, batch) == {"dialing": 1, "waiting": 2, "failed": 2}


async def test_a_hold_whose_time_has_come_is_no_longer_counted(db: Database) -> None:
    batch = await make_windowed(db, [LA], EIGHT_TO_NINE)
    # Wednesday 10 June 2026 is in the past of the database's clock: the opening it waits
    # for has come, so the call is due, not held.
    assert await claim(db, FixedClock(local(NEW_YORK, *WED, 10, 0))) == []
    assert await summary(db, batch) == gate_summary.GateSummary()
