"""Calling hours in the queue (issue 10, items 1 and 2), on SQLite and PostgreSQL, with an
injected clock: a call outside its hours is never claimed and waits for the next opening in
its own zone; the intent step re-checks immediately before the dial; a number with no known
zone is never dialed.

The hours come from three places, and the tests that hold for all three run under each
(the `hours` fixture): the batch's own window of 8:00-21:00, its workspace's default window
of the same hours, and the `us` compliance profile (federal 8:00-21:00 recipient-local) with
no window at all. The rules only a profile has (Florida's 8:00-20:00 and its cap of 3 dials
per 24 h) are tested under the profile alone."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from dialbatch.domain.clock import FixedClock
from dialbatch.domain.gate import Admit
from dialbatch.domain.ids import new_batch_id
from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.domain.retry import RetryConfig
from dialbatch.domain.windows import is_open, parse_calling_window
from dialbatch.events.apply import apply_outcomes
from dialbatch.store import batches, gate_settings, gating, queue
from dialbatch.store._dialect import CallRow, db_now_ms
from dialbatch.store.engine import Database
from dialbatch.store.tables import attempts, calls, gate_log, outbox
from tests.domain._time import LOS_ANGELES, NEW_YORK, local, utc, wall
from tests.helpers import AGENT, WS, assert_consistent

LEASE = 30_000
NYC, LA, BOISE, NOWHERE = "+12125550123", "+12135550123", "+12085550123", "+80012345678"
MIAMI = "+13055550123"  # Florida: 8:00-20:00 and 3 dials per 24 h under `us`
EIGHT_TO_NINE = {"days": {d: [["08:00", "21:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}}
EVERY_DAY = {
    "days": {d: [["08:00", "21:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
}
# Wednesday 10 June 2026 (in the past of the database's clock, so every call stays due by it).
WED = (2026, 6, 10)


async def make_windowed(
    db: Database,
    phones: list[str],
    window: dict[str, Any] | None,
    *,
    profile: str = "none",
    policy: dict[str, Any] | None = None,
) -> str:
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
            callback_policy=policy or {"enabled": False, "maxAttempts": 1, "gaps": []},
            source_name=None,
            rows=rows(),
            calling_window=stored,
            compliance_profile=profile,
        )
    return batch_id


HOURS = ("batch window", "workspace window", "us profile")


@pytest.fixture(params=HOURS)
def hours(request: pytest.FixtureRequest) -> str:
    """Where the 8:00-21:00 recipient-local hours of a test come from."""
    return str(request.param)


async def make_gated(
    db: Database, phones: list[str], hours: str, *, policy: dict[str, Any] | None = None
) -> str:
    """A batch held to 8:00-21:00 in each recipient's own time, every day, by `hours`."""
    if hours == "batch window":
        return await make_windowed(db, phones, EVERY_DAY, policy=policy)
    async with db.write() as conn:
        if hours == "workspace window":
            window = parse_calling_window(EVERY_DAY).to_json()
            await gate_settings.update(conn, WS, calling_window=window)
        else:
            await gate_settings.update(conn, WS, compliance_profile="us")
    return await make_windowed(db, phones, None, policy=policy)


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
    db: Database, hours: str
) -> None:
    batch = await make_gated(db, [NYC, LA], hours)
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


async def test_each_number_starts_at_8_in_its_own_zone_three_hours_apart(
    db: Database, hours: str
) -> None:
    await make_gated(db, [NYC, LA], hours)
    clock = FixedClock(local(NEW_YORK, *WED, 8, 0))
    first = await claim(db, clock)
    assert [c.phone_number for c in first] == [NYC]
    clock.set(local(LOS_ANGELES, *WED, 7, 59))
    assert await claim(db, clock) == []
    clock.set(local(LOS_ANGELES, *WED, 8, 0))
    assert [c.phone_number for c in await claim(db, clock)] == [LA]


async def test_a_number_with_several_zones_waits_until_every_zone_is_inside(
    db: Database, hours: str
) -> None:
    batch = await make_gated(db, [BOISE], hours)  # Mountain and Pacific time
    clock = FixedClock(local("America/Boise", *WED, 8, 30))  # 7:30 in Los Angeles
    assert await claim(db, clock) == []
    rows = await rows_by_phone(db, batch)
    assert rows[BOISE].next_attempt_at == local(LOS_ANGELES, *WED, 8, 0)


async def test_a_batch_without_a_window_is_claimed_at_any_hour(db: Database) -> None:
    await make_windowed(db, [NYC], None)
    clock = FixedClock(local(NEW_YORK, *WED, 3, 0))
    assert len(await claim(db, clock)) == 1


async def test_a_claim_just_before_closing_whose_dial_would_start_after_does_not_dial(
    db: Database, hours: str
) -> None:
    batch = await make_gated(db, [NYC], hours)
    clock = FixedClock(local(NEW_YORK, *WED, 20, 59, 59) + 900)  # 20:59:59.9
    claimed = await claim(db, clock)
    assert len(claimed) == 1  # open at the claim
    clock.advance(200)  # the intent commits at 21:00:00.1
    assert await dial(db, claimed, clock) == []
    rows = await rows_by_phone(db, batch)
    assert rows[NYC].status == "waiting"
    assert rows[NYC].next_attempt_at == local(NEW_YORK, 2026, 6, 11, 8, 0)
    assert await assert_consistent(db, batch) == {"waiting": 1}  # its slot is free again


async def test_the_intent_step_keeps_a_margin_for_the_dial_itself(db: Database, hours: str) -> None:
    batch = await make_gated(db, [NYC], hours)
    clock = FixedClock(local(NEW_YORK, *WED, 20, 59, 59) + 900)
    claimed = await claim(db, clock)
    # Still 20:59:59.9 at the intent, but the dial needs 2 s: it would start after 21:00.
    assert await dial(db, claimed, clock, lead_ms=gating.DIAL_LEAD_MS) == []
    assert (await rows_by_phone(db, batch))[NYC].status == "waiting"
    clock.set(local(NEW_YORK, 2026, 6, 11, 8, 0))
    again = await claim(db, clock)
    assert len(await dial(db, again, clock, lead_ms=gating.DIAL_LEAD_MS)) == 1


async def test_inside_the_window_the_intent_dials(db: Database, hours: str) -> None:
    batch = await make_gated(db, [NYC, LA], hours)
    clock = FixedClock(local(LOS_ANGELES, *WED, 12, 0))
    intents = await dial(db, await claim(db, clock), clock, lead_ms=gating.DIAL_LEAD_MS)
    assert len(intents) == 2
    assert await assert_consistent(db, batch) == {"dialing": 2}


async def test_a_number_with_no_known_zone_is_never_dialed_and_ends_failed(
    db: Database, hours: str
) -> None:
    batch = await make_gated(db, [NOWHERE, NYC], hours)
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


async def test_a_batch_whose_only_call_is_refused_completes(db: Database, hours: str) -> None:
    batch = await make_gated(db, [NOWHERE], hours)
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


async def make_with_zones(
    db: Database, rows_: list[tuple[str, str | None]], window: dict[str, Any], policy: Any = None
) -> str:
    """A windowed batch whose rows carry their own zone (the upload's timezone column)."""

    async def rows() -> AsyncIterator[list[CallRow]]:
        yield [(i, p, "{}", (zone, None, None)) for i, (p, zone) in enumerate(rows_)]

    batch = new_batch_id()
    async with db.write() as conn:
        await batches.insert_batch(
            conn,
            batch_id=batch,
            workspace_id=WS,
            agent_id=AGENT,
            scheduled_at=None,
            callback_policy=policy or {"enabled": False, "maxAttempts": 1, "gaps": []},
            source_name=None,
            rows=rows(),
            calling_window=parse_calling_window(window).to_json(),
        )
    return batch


async def test_a_rows_own_zone_replaces_the_numbers_at_claim_and_intent(db: Database) -> None:
    batch = await make_with_zones(db, [(NYC, LOS_ANGELES), (LA, None)], EIGHT_TO_NINE)
    clock = FixedClock(local(NEW_YORK, *WED, 8, 0))
    assert await claim(db, clock) == []  # 5:00 in Los Angeles for both
    rows = await rows_by_phone(db, batch)
    assert rows[NYC].next_attempt_at == local(LOS_ANGELES, *WED, 8, 0)
    clock.set(local(LOS_ANGELES, *WED, 8, 0))
    claimed = await claim(db, clock)
    assert {c.phone_number: c.timezone for c in claimed} == {NYC: LOS_ANGELES, LA: None}
    assert len(await dial(db, claimed, clock)) == 2


async def test_the_intent_step_holds_back_by_the_rows_zone(db: Database) -> None:
    batch = await make_with_zones(db, [(LA, NEW_YORK)], EIGHT_TO_NINE)
    clock = FixedClock(local(LOS_ANGELES, *WED, 17, 59))  # 20:59 in New York
    claimed = await claim(db, clock)
    clock.set(local(LOS_ANGELES, *WED, 18, 0, 1))  # New York's 21:00 has passed
    assert await dial(db, claimed, clock) == []
    row = (await rows_by_phone(db, batch))[LA]
    assert row.status == "waiting"
    assert row.next_attempt_at == local(NEW_YORK, 2026, 6, 11, 8, 0)


async def test_a_retry_lands_in_the_window_of_the_rows_zone(db: Database) -> None:
    window = {"days": {"mon": [["10:00", "10:05"]]}}
    policy = {"enabled": True, "maxAttempts": 3, "gaps": [{"hours": 1}]}
    batch = await make_with_zones(db, [(NYC, LOS_ANGELES)], window, policy)
    # A Monday, inside in Los Angeles (13:01 in New York, where the number is: outside).
    clock = FixedClock(local(LOS_ANGELES, 2026, 6, 8, 10, 1))
    (intent,) = await dial(db, await claim(db, clock), clock)
    await apply_outcomes(
        db, [CallEvent(outcome=Outcome.NO_ANSWER, dial_key=intent.dial_key)], RetryConfig()
    )
    due = (await rows_by_phone(db, batch))[NYC].next_attempt_at
    assert wall(LOS_ANGELES, due).strftime("%a %H:%M") == "Mon 10:00"


# -- the `us` profile: what only a profile has, and how a batch comes to obey it --------------

DST_START = (2027, 3, 14)  # a Sunday: New York's clocks go from 2:00 EST to 3:00 EDT
DST_END = (2027, 11, 7)  # a Sunday: from 2:00 EDT back to 1:00 EST


async def set_profile(db: Database, profile: str) -> None:
    async with db.write() as conn:
        await gate_settings.update(conn, WS, compliance_profile=profile)


async def test_on_the_days_daylight_saving_starts_and_ends_8_is_local_8(
    db: Database, hours: str
) -> None:
    batch = await make_gated(db, [NYC], hours)
    # 7:59 EDT on the first day of summer time: 11:59 UTC; 8:00 is 12:00 UTC.
    clock = FixedClock(local(NEW_YORK, *DST_START, 7, 59))
    assert await claim(db, clock) == []
    assert (await rows_by_phone(db, batch))[NYC].next_attempt_at == utc(*DST_START, 12, 0)
    # The day summer time ends, at 1:30 the first time round (EDT): 8:00 EST is 13:00 UTC.
    other = await make_gated(db, [LA], hours)
    clock.set(local(LOS_ANGELES, *DST_END, 1, 30))
    assert await claim(db, clock) == []
    assert (await rows_by_phone(db, other))[LA].next_attempt_at == utc(*DST_END, 16, 0)


async def test_at_8_on_the_day_daylight_saving_starts_a_call_is_dialed(
    db: Database, hours: str
) -> None:
    await make_gated(db, [NYC], hours)
    clock = FixedClock(local(NEW_YORK, *DST_START, 8, 0))
    assert clock.now_ms() == utc(*DST_START, 12, 0)
    assert len(await dial(db, await claim(db, clock), clock)) == 1


async def test_under_us_a_florida_number_is_not_dialed_at_8_pm_its_time(db: Database) -> None:
    await set_profile(db, "us")
    batch = await make_windowed(db, [MIAMI, NYC], None)
    clock = FixedClock(local(NEW_YORK, *WED, 20, 0))  # Miami keeps New York's time
    claimed = await claim(db, clock)
    assert [c.phone_number for c in claimed] == [NYC]  # federal hours: until 21:00
    rows = await rows_by_phone(db, batch)
    assert rows[MIAMI].status == "waiting"
    assert rows[MIAMI].next_attempt_at == local(NEW_YORK, 2026, 6, 11, 8, 0)


async def test_a_florida_claim_at_7_59_59_pm_whose_intent_is_after_8_is_held_by_floridas_rule(
    db: Database,
) -> None:
    await set_profile(db, "us")
    batch = await make_windowed(db, [MIAMI], None)
    clock = FixedClock(local(NEW_YORK, *WED, 19, 59, 59) + 900)
    claimed = await claim(db, clock)
    assert len(claimed) == 1
    clock.advance(200)
    async with db.read() as conn:
        policies = await gating.policies_of(conn, [batch])
    held = gating.hold_back(
        policies,
        [(c.call_id, c.batch_id, c.phone_number, c.timezone) for c in claimed],
        clock.now_ms(),
        0,
    )
    (decision,) = held.values()
    assert decision.reason.rule == "us.fl.hours", decision  # the audit names the rule
    assert decision.reason.source is not None and "501.616" in decision.reason.source
    assert await dial(db, claimed, clock) == []
    assert (await rows_by_phone(db, batch))[MIAMI].status == "waiting"


async def test_a_batch_may_ask_for_the_profile_its_workspace_does_not_have(db: Database) -> None:
    batch = await make_windowed(db, [NYC, LA], None, profile="us")
    clock = FixedClock(local(NEW_YORK, *WED, 7, 59))
    assert await claim(db, clock) == []
    assert (await rows_by_phone(db, batch))[NYC].next_attempt_at == local(NEW_YORK, *WED, 8, 0)


async def test_raising_the_workspaces_profile_tightens_a_running_batch(db: Database) -> None:
    batch = await make_windowed(db, [NYC, LA], None)  # created under `none`
    clock = FixedClock(local(NEW_YORK, *WED, 7, 0))
    claimed = await claim(db, clock)
    assert len(claimed) == 2  # any hour
    await set_profile(db, "us")  # between the claim and the intent
    assert await dial(db, claimed, clock) == []
    assert await assert_consistent(db, batch) == {"waiting": 2}


async def test_lowering_the_workspaces_profile_does_not_loosen_a_batch_made_under_it(
    db: Database,
) -> None:
    await set_profile(db, "us")
    batch = await make_windowed(db, [NYC], None, profile="us")  # as the API stores it
    await set_profile(db, "none")
    clock = FixedClock(local(NEW_YORK, *WED, 7, 0))
    assert await claim(db, clock) == []
    assert (await rows_by_phone(db, batch))[NYC].status == "waiting"


async def test_a_batch_window_is_intersected_with_the_profile_never_widens_it(
    db: Database,
) -> None:
    await set_profile(db, "us")
    night = {"days": {d: [["06:00", "23:00"]] for d in ("wed", "thu")}}
    batch = await make_windowed(db, [NYC], night)
    clock = FixedClock(local(NEW_YORK, *WED, 7, 0))  # inside the batch's window, not the law's
    assert await claim(db, clock) == []
    assert (await rows_by_phone(db, batch))[NYC].next_attempt_at == local(NEW_YORK, *WED, 8, 0)


@pytest.mark.parametrize("phone", [NYC, MIAMI])
async def test_under_us_a_retry_is_due_inside_the_numbers_hours(db: Database, phone: str) -> None:
    """The outcome path reads the database's clock, so where the retry lands depends on
    the hour the test runs; wherever that is, it must be inside the number's hours."""
    await set_profile(db, "us")
    policy = {"enabled": True, "maxAttempts": 3, "gaps": [{"hours": 1}]}
    batch = await make_windowed(db, [phone], None, policy=policy)
    clock = FixedClock(local(NEW_YORK, *WED, 12, 0))
    (intent,) = await dial(db, await claim(db, clock), clock)
    before = await db_now(db)
    (applied,) = await apply_outcomes(
        db, [CallEvent(outcome=Outcome.NO_ANSWER, dial_key=intent.dial_key)], RetryConfig()
    )
    assert applied.status is not None and applied.status.value == "waiting"
    due = (await rows_by_phone(db, batch))[phone].next_attempt_at
    assert due >= before + 3600 * 1000
    async with db.read() as conn:
        policy_now = (await gating.policies_of(conn, [batch]))[batch]
    assert isinstance(gating.ask(policy_now, phone, due, dial_lead_ms=gating.DIAL_LEAD_MS), Admit)


async def test_a_florida_number_gets_at_most_3_dials_in_24_hours_whatever_the_retry_policy(
    db: Database,
) -> None:
    await set_profile(db, "us")
    policy = {"enabled": True, "maxAttempts": 6, "gaps": [{"hours": 0.001}] * 5}
    batch = await make_windowed(db, [MIAMI, NYC], None, policy=policy)
    clock = FixedClock(local(NEW_YORK, *WED, 12, 0))
    dialed: list[str] = []
    for _ in range(6):
        intents = await dial(db, await claim(db, clock), clock)
        dialed += [i.call.phone_number for i in intents]
        await apply_outcomes(
            db,
            [CallEvent(outcome=Outcome.NO_ANSWER, dial_key=i.dial_key) for i in intents],
            RetryConfig(),
        )
        async with db.write() as conn:  # each retry due now, not after its gap
            await conn.execute(
                calls.update()
                .where(calls.c.batch_id == batch, calls.c.status == "waiting")
                .values(next_attempt_at=0)
            )
    assert dialed.count(MIAMI) == 3  # Florida's cap
    assert dialed.count(NYC) == 6  # the retry policy: no federal cap
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(calls.c.status, calls.c.gate_decision).where(
                    calls.c.batch_id == batch, calls.c.phone_number == MIAMI
                )
            )
        ).one()
        ledger = await conn.scalar(
            sa.select(sa.func.count()).select_from(attempts).where(attempts.c.batch_id == batch)
        )
    assert ledger == 9
    assert row.status == "waiting"  # deferred, not failed
    assert row.gate_decision["kind"] == "capped"
    assert row.gate_decision["rule"] == "us.fl.frequency"


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


async def gate_log_of(db: Database, batch_id: str) -> dict[str, list[tuple[int, Any]]]:
    """Each number's gate log: (dials before, decision), oldest first."""
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(calls.c.phone_number, gate_log.c.after_dials, gate_log.c.decision)
            .join(calls, calls.c.id == gate_log.c.call_id)
            .where(calls.c.batch_id == batch_id)
            .order_by(gate_log.c.id)
        )
        out: dict[str, list[tuple[int, Any]]] = {}
        for r in rows:
            out.setdefault(r.phone_number, []).append((r.after_dials, r.decision))
        return out


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
    # The log keeps it too, before any dial.
    assert await gate_log_of(db, batch) == {LA: [(0, rows[LA].gate_decision)]}


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
    assert await gate_log_of(db, batch) == {LA: [(0, first)]}


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
    log = await gate_log_of(db, batch)
    assert log == {
        NYC: [(0, rows[NYC].gate_decision)],
        NOWHERE: [(0, rows[NOWHERE].gate_decision)],
    }


def test_an_admission_reused_by_later_groups_is_the_answer_deciding_again_gives() -> None:
    from dialbatch.domain.gate import CallFacts, decide

    policy = gating.policy_for(parse_calling_window(EIGHT_TO_NINE).to_json())
    closing = local(NEW_YORK, *WED_2027, 21, 0)
    # Groups every 7 s across the closing, at both leads: each answer equals a fresh decision.
    for lead in (0, gating.DIAL_LEAD_MS):
        for at in range(closing - 130_000, closing + 20_000, 7_000):
            got = gating._Asker(at, lead)(policy, NYC, None)
            assert got == decide(CallFacts(zones=(NEW_YORK,)), policy, at, dial_lead_ms=lead)
