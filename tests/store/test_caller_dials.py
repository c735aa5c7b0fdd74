"""A caller number's per-second limit counts each start from when the provider answered the
dial's request, and a dial whose request is still out as starting now: the carrier, which
counts a start when the request reaches it, sees a number's starts a full second apart however
long each request took. The end-to-end run (3 workers, a carrier with an uneven path) is
tests/test_caller_pool_workers.py."""

from __future__ import annotations

from dialbatch.domain.caller_pool import IN_FLIGHT_MS, PACE_MARGIN_MS, SECOND_MS
from dialbatch.store import caller_dials
from dialbatch.store._dialect import db_now_ms
from dialbatch.store.engine import Database
from tests.helpers import WS

NY = "+12125550100"
PAIR = (WS, NY)


async def test_a_dial_in_flight_counts_as_starting_now_however_long_ago_its_intent(
    db: Database,
) -> None:
    async with db.write() as conn:
        now = await db_now_ms(conn)
        await caller_dials.record(conn, [(WS, NY, now - 5_000, "k1")])
        seen = await caller_dials.starts(conn, [PAIR], now - SECOND_MS - PACE_MARGIN_MS, now)
    # Its intent was 5 s ago, but its request may reach the carrier at any moment.
    assert seen[PAIR] == [now]


async def test_once_answered_a_dial_counts_from_the_answer_not_from_its_intent(
    db: Database,
) -> None:
    async with db.write() as conn:
        now = await db_now_ms(conn)
        await caller_dials.record(conn, [(WS, NY, now - 5_000, "k1"), (WS, NY, now - 4_000, "k2")])
        await caller_dials.answered(conn, ["k1"])
        answered_at = await db_now_ms(conn)
        seen = await caller_dials.starts(conn, [PAIR], now - 60_000, answered_at)
    # k1 counts from its answer (not 5 s ago), k2 is still out: it counts as now.
    assert len(seen[PAIR]) == 2
    assert now <= seen[PAIR][0] <= answered_at and seen[PAIR][1] == answered_at


async def test_a_dial_whose_worker_died_with_its_request_out_stops_holding_its_number(
    db: Database,
) -> None:
    async with db.write() as conn:
        now = await db_now_ms(conn)
        intent_at = now - IN_FLIGHT_MS - 10_000
        await caller_dials.record(conn, [(WS, NY, intent_at, "lost")])
        seen = await caller_dials.starts(conn, [PAIR], now - SECOND_MS - PACE_MARGIN_MS, now)
        assert seen.get(PAIR, []) == []  # counted at intent + IN_FLIGHT_MS: over a second ago
        await caller_dials.prune(conn)
        seen = await caller_dials.starts(conn, [PAIR], intent_at, now)
    assert seen[PAIR] == [intent_at + IN_FLIGHT_MS]  # no longer in flight, at its bound


async def test_answering_an_unknown_key_or_none_changes_nothing(db: Database) -> None:
    async with db.write() as conn:
        now = await db_now_ms(conn)
        await caller_dials.record(conn, [(WS, NY, now, "k1")])
        await caller_dials.answered(conn, [])
        await caller_dials.answered(conn, ["other"])
        seen = await caller_dials.starts(conn, [PAIR], now - 60_000, now + 3_000)
    assert seen[PAIR] == [now + 3_000]  # still in flight
