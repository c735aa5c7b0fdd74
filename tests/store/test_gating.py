"""Calling windows in the queue (issue 10, item 1), on SQLite and PostgreSQL, with an injected
clock: a call outside its window is never claimed and waits for the next opening in its own
zone; the intent step re-checks immediately before the dial; a number with no known zone is
never dialed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa

from dialbatch.domain.clock import FixedClock
from dialbatch.domain.ids import new_batch_id
from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.domain.retry import RetryConfig
from dialbatch.domain.windows import is_open, parse_calling_window
from dialbatch.events.apply import apply_outcomes
from dialbatch.store import batches, gating, queue
from dialbatch.store._dialect import db_now_ms
from dialbatch.store.engine import Database
from dialbatch.store.tables import calls, outbox
from tests.domain._time import LOS_ANGELES, NEW_YORK, local, wall
from tests.helpers import AGENT, WS, assert_consistent

LEASE = 30_000
NYC, LA, BOISE, NOWHERE = "+12125550123", "+12135550123", "+12085550123", "+80012345678"
EIGHT_TO_NINE = {"days": {d: [["08:00", "21:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}}
# Wednesday 10 June 2026 (in the past of the database's clock, so every call stays due by it).
WED = (2026, 6, 10)


async def make_windowed(db: Database, phones: list[str], window: dict[str, Any] | None) -> str:
    async def rows() -> AsyncIterator[list[tuple[int, str, str]]]:
        yield [(i, p, json.dumps({"i": i})) for i, p in enumerate(phones)]

    stored = parse_calling_window(window).to_json() if window is not None else None
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
            calling_window=stored,
        )
    return batch_id


async def claim(db: Database, clock: FixedClock) -> list[queue.Claimed]:
    async with db.write() as conn:
        got, _ = await queue.claim(conn, WS, "w1", 10, LEASE, clock=clock)
    return got


async def dial(
    db: Database, claimed: list[queue.Claimed], clock: FixedClock, lead_ms: int = 0
) -> list[queue.Intent]:
    async with db.write() as conn:
        return await queue.begin_dials(
            conn,
            [(c, "simulated") for c in claimed],
            "w1",
            LEASE,
            clock=clock,
            dial_lead_ms=lead_ms,
        )


async def rows_by_phone(db: Database, batch_id: str) -> dict[str, Any]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(
                calls.c.phone_number, calls.c.status, calls.c.next_attempt_at, calls.c.error
            ).where(calls.c.batch_id == batch_id)
        )
        return {r.phone_number: r for r in rows}


async def test_at_759_new_york_time_no_new_york_call_is_claimed_and_it_waits_for_8(
    db: Database,
) -> None:
    batch = await make_windowed(db, [NYC, LA], EIGHT_TO_NINE)
    clock = FixedClock(local(NEW_YORK, *WED, 7, 59))
    assert await claim(db, clock) == []
    rows = await rows_by_phone(db, batch)
    assert rows[NYC].status == "waiting"
    assert rows[NYC].next_attempt_at == local(NEW_YORK, *WED, 8, 0)
    # Los Angeles is three hours behind: its own 8:00.
    assert rows[LA].next_attempt_at == local(LOS_ANGELES, *WED, 8, 0)
    assert await assert_consistent(db, batch) == {"waiting": 2}
    async with db.read() as conn:
        b = await batches.get_batch(conn, WS, batch)
    assert b is not None and b.completed_at is None  # deferral is not an outcome


async def test_each_number_starts_at_8_in_its_own_zone_three_hours_apart(db: Database) -> None:
    await make_windowed(db, [NYC, LA], EIGHT_TO_NINE)
    clock = FixedClock(local(NEW_YORK, *WED, 8, 0))
    first = await claim(db, clock)
    assert [c.phone_number for c in first] == [NYC]
    clock.set(local(LOS_ANGELES, *WED, 7, 59))
    assert await claim(db, clock) == []
    clock.set(local(LOS_ANGELES, *WED, 8, 0))
    assert [c.phone_number for c in await claim(db, clock)] == [LA]


async def test_a_number_with_several_zones_waits_until_every_zone_is_inside(db: Database) -> None:
    batch = await make_windowed(db, [BOISE], EIGHT_TO_NINE)  # Mountain and Pacific time
    clock = FixedClock(local("America/Boise", *WED, 8, 30))  # 7:30 in Los Angeles
    assert await claim(db, clock) == []
    rows = await rows_by_phone(db, batch)
    assert rows[BOISE].next_attempt_at == local(LOS_ANGELES, *WED, 8, 0)


async def test_a_batch_without_a_window_is_claimed_at_any_hour(db: Database) -> None:
    await make_windowed(db, [NYC], None)
    clock = FixedClock(local(NEW_YORK, *WED, 3, 0))
    assert len(await claim(db, clock)) == 1


async def test_a_claim_just_before_closing_whose_dial_would_start_after_does_not_dial(
    db: Database,
) -> None:
    batch = await make_windowed(db, [NYC], EIGHT_TO_NINE)
    clock = FixedClock(local(NEW_YORK, *WED, 20, 59, 59) + 900)  # 20:59:59.9
    claimed = await claim(db, clock)
    assert len(claimed) == 1  # open at the claim
    clock.advance(200)  # the intent commits at 21:00:00.1
    assert await dial(db, claimed, clock) == []
    rows = await rows_by_phone(db, batch)
    assert rows[NYC].status == "waiting"
    assert rows[NYC].next_attempt_at == local(NEW_YORK, 2026, 6, 11, 8, 0)
    assert await assert_consistent(db, batch) == {"waiting": 1}  # its slot is free again


async def test_the_intent_step_keeps_a_margin_for_the_dial_itself(db: Database) -> None:
    batch = await make_windowed(db, [NYC], EIGHT_TO_NINE)
    clock = FixedClock(local(NEW_YORK, *WED, 20, 59, 59) + 900)
    claimed = await claim(db, clock)
    # Still 20:59:59.9 at the intent, but the dial needs 2 s: it would start after 21:00.
    assert await dial(db, claimed, clock, lead_ms=gating.DIAL_LEAD_MS) == []
    assert (await rows_by_phone(db, batch))[NYC].status == "waiting"
    clock.set(local(NEW_YORK, 2026, 6, 11, 8, 0))
    again = await claim(db, clock)
    assert len(await dial(db, again, clock, lead_ms=gating.DIAL_LEAD_MS)) == 1


async def test_inside_the_window_the_intent_dials(db: Database) -> None:
    batch = await make_windowed(db, [NYC, LA], EIGHT_TO_NINE)
    clock = FixedClock(local(LOS_ANGELES, *WED, 12, 0))
    intents = await dial(db, await claim(db, clock), clock, lead_ms=gating.DIAL_LEAD_MS)
    assert len(intents) == 2
    assert await assert_consistent(db, batch) == {"dialing": 2}


async def test_a_number_with_no_known_zone_is_never_dialed_and_ends_failed(db: Database) -> None:
    batch = await make_windowed(db, [NOWHERE, NYC], EIGHT_TO_NINE)
    clock = FixedClock(local(NEW_YORK, *WED, 12, 0))
    intents = await dial(db, await claim(db, clock), clock)
    assert [i.call.phone_number for i in intents] == [NYC]
    rows = await rows_by_phone(db, batch)
    assert rows[NOWHERE].status == "failed"
    assert "time zone is unknown" in rows[NOWHERE].error
    assert await assert_consistent(db, batch) == {"failed": 1, "dialing": 1}
    async with db.read() as conn:
        events = (await conn.execute(sa.select(outbox.c.event, outbox.c.payload))).all()
    failed = [p for e, p in events if e == "call.failed"]
    assert len(failed) == 1 and failed[0]["outcome"] is None


async def test_a_batch_whose_only_call_is_refused_completes(db: Database) -> None:
    batch = await make_windowed(db, [NOWHERE], EIGHT_TO_NINE)
    clock = FixedClock(local(NEW_YORK, *WED, 12, 0))
    assert await dial(db, await claim(db, clock), clock) == []
    async with db.read() as conn:
        b = await batches.get_batch(conn, WS, batch)
    assert b is not None and b.status == "completed"


async def test_a_fixed_zone_window_ignores_the_recipients_zone(db: Database) -> None:
    window = {"timezone": NEW_YORK, "days": EIGHT_TO_NINE["days"]}
    await make_windowed(db, [LA, NOWHERE], window)
    clock = FixedClock(local(NEW_YORK, *WED, 8, 0))  # 5:00 in Los Angeles
    intents = await dial(db, await claim(db, clock), clock)
    assert sorted(i.call.phone_number for i in intents) == sorted([LA, NOWHERE])


async def test_a_retry_is_due_inside_the_window_not_merely_after_its_gap(db: Database) -> None:
    window = {"days": {"mon": [["10:00", "10:05"]]}}  # five minutes a week

    async def rows() -> AsyncIterator[list[tuple[int, str, str]]]:
        yield [(0, NYC, "{}")]

    batch = new_batch_id()
    async with db.write() as conn:
        await batches.insert_batch(
            conn,
            batch_id=batch,
            workspace_id=WS,
            agent_id=AGENT,
            scheduled_at=None,
            callback_policy={"enabled": True, "maxAttempts": 3, "gaps": [{"hours": 1}]},
            source_name=None,
            rows=rows(),
            calling_window=parse_calling_window(window).to_json(),
        )
    clock = FixedClock(local(NEW_YORK, 2026, 6, 8, 10, 1))  # a Monday, inside
    (intent,) = await dial(db, await claim(db, clock), clock)
    before = await db_now(db)
    (applied,) = await apply_outcomes(
        db, [CallEvent(outcome=Outcome.NO_ANSWER, dial_key=intent.dial_key)], RetryConfig()
    )
    assert applied.status is not None and applied.status.value == "waiting"
    due = (await rows_by_phone(db, batch))[NYC].next_attempt_at
    # Not at "now + 1 h" (the window is shut then) but at a Monday 10:00 in New York.
    assert due >= before + 3600 * 1000
    assert is_open(parse_calling_window(window), (NEW_YORK,), due)
    assert wall(NEW_YORK, due).strftime("%a %H:%M") == "Mon 10:00"


async def db_now(db: Database) -> int:
    async with db.read() as conn:
        return await db_now_ms(conn)


# --- the audit record (issue 10, item 7) ------------------------------------------------------

# Wednesday 9 June 2027: in the future of the database's clock, so that a hold is still
# standing by it and the batch's gate summary counts it.
WED_2027 = (2027, 6, 9)


async def gate_rows(db: Database, batch_id: str) -> dict[str, Any]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(calls.c.phone_number, calls.c.gate_hold, calls.c.gate_decision).where(
                calls.c.batch_id == batch_id
            )
        )
        return {r.phone_number: r for r in rows}


async def test_a_window_hold_at_the_claim_is_recorded_with_its_rule_zone_and_opening(
    db: Database,
) -> None:
    batch = await make_windowed(db, [NYC, LA], EIGHT_TO_NINE)
    at = local(NEW_YORK, *WED_2027, 9, 0)  # 6:00 in Los Angeles
    seen: list[tuple[str, str | None]] = []
    async with db.write() as conn:
        got, _ = await queue.claim(
            conn,
            WS,
            "w1",
            10,
            LEASE,
            clock=FixedClock(at),
            on_hold=lambda k, r: seen.append((k, r)),
        )
    assert [c.phone_number for c in got] == [NYC]
    rows = await gate_rows(db, batch)
    assert rows[LA].gate_hold == "outside_window"
    assert rows[LA].gate_decision == {
        "kind": "outside_window",
        "message": f"outside the calling window of batch.callingWindow in {LOS_ANGELES}",
        "rule": "batch.callingWindow",
        "source": "the batch's callingWindow",
        "zone": LOS_ANGELES,
        "until": local(LOS_ANGELES, *WED_2027, 8, 0),
        "at": at,
    }
    assert rows[NYC].gate_hold is None and rows[NYC].gate_decision is None
    assert seen == [("outside_window", "batch.callingWindow")]


async def test_a_held_call_is_not_read_again_before_its_opening(db: Database) -> None:
    batch = await make_windowed(db, [LA], EIGHT_TO_NINE)
    clock = FixedClock(local(LOS_ANGELES, *WED_2027, 6, 0))
    seen: list[str] = []
    for _ in range(3):  # three dispatcher ticks: one hold written
        async with db.write() as conn:
            await queue.claim(
                conn, WS, "w1", 10, LEASE, clock=clock, on_hold=lambda k, r: seen.append(k)
            )
        clock.advance(60_000)
    assert seen == ["outside_window"]
    first = (await gate_rows(db, batch))[LA].gate_decision
    assert first["at"] == local(LOS_ANGELES, *WED_2027, 6, 0)


async def test_the_last_decision_stays_after_the_dial_and_the_hold_ends(db: Database) -> None:
    batch = await make_windowed(db, [LA], EIGHT_TO_NINE)
    clock = FixedClock(local(LOS_ANGELES, *WED, 6, 0))  # in the past: due again by the db
    assert await claim(db, clock) == []
    clock.set(local(LOS_ANGELES, *WED, 8, 0))
    assert len(await dial(db, await claim(db, clock), clock)) == 1
    row = (await gate_rows(db, batch))[LA]
    assert row.gate_hold is None  # no longer held
    assert row.gate_decision["kind"] == "outside_window"  # the last word, kept for the audit


async def test_a_hold_and_a_refusal_at_the_intent_are_recorded(db: Database) -> None:
    batch = await make_windowed(db, [NYC, NOWHERE], EIGHT_TO_NINE)
    clock = FixedClock(local(NEW_YORK, *WED_2027, 20, 59, 59) + 900)
    claimed = await claim(db, clock)
    assert len(claimed) == 2  # NOWHERE is claimed for the intent step to end it
    clock.advance(200)
    seen: list[tuple[str, str | None]] = []
    async with db.write() as conn:
        intents = await queue.begin_dials(
            conn,
            [(c, "simulated") for c in claimed],
            "w1",
            LEASE,
            clock=clock,
            dial_lead_ms=0,
            on_hold=lambda k, r: seen.append((k, r)),
        )
    assert intents == []
    rows = await gate_rows(db, batch)
    assert rows[NYC].gate_hold == "outside_window"
    assert rows[NYC].gate_decision["until"] == local(NEW_YORK, 2027, 6, 10, 8, 0)
    assert rows[NYC].gate_decision["zone"] == NEW_YORK
    assert rows[NOWHERE].gate_hold == "no_zone"
    assert "until" not in rows[NOWHERE].gate_decision
    assert sorted(seen) == [
        ("no_zone", "batch.callingWindow"),
        ("outside_window", "batch.callingWindow"),
    ]


def test_an_admission_reused_by_later_groups_is_the_answer_deciding_again_gives() -> None:
    from dialbatch.domain.gate import CallFacts, decide

    policy = gating.policy_for(parse_calling_window(EIGHT_TO_NINE).to_json())
    closing = local(NEW_YORK, *WED_2027, 21, 0)
    # Groups every 7 s across the closing, at both leads: each answer equals a fresh decision.
    for lead in (0, gating.DIAL_LEAD_MS):
        for at in range(closing - 130_000, closing + 20_000, 7_000):
            got = gating._Asker(at, lead)(policy, NYC)
            assert got == decide(CallFacts(zones=(NEW_YORK,)), policy, at, dial_lead_ms=lead)
