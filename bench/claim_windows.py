"""What a calling window costs the queue (issue 10, item 1), on SQLite, store level.

    python bench/claim_windows.py [--calls 20000] [--group 100]
    python bench/claim_windows.py --gate [--calls 20000] [--rounds 3]

Three runs over batches of random US numbers, each drained by claim + intent transactions
of `--group` calls (no provider: the store's own cost):

1. no window (the old path);
2. a daytime window (08:00-21:00 every day) at US midday: each call asked at the claim and
   again at the intent (numbers whose zones include one where it is night are deferred);
3. a 24-hour window: the worst case of the window code, which looks up to a year ahead for
   the end of an opening that never closes;
4. the daytime window at US night: every call moved to its next opening by the claims (the
   work a batch uploaded at night does once);
5. no window, the workspace under the `us` compliance profile at US midday: the federal
   hours as a window, the FL/OK/MD hours and their caps (a per-number lock and a ledger read
   in the intent for those numbers).

A number with no known zone is claimed and then failed by the intent step, never dialed.

`--gate` is issue 10's performance acceptance, side by side in one run: the same calls
through claim + intent with the gate off (a workspace without suppressions or caps, a batch
without a window) and on (a workspace under the `us` profile, with a 100,000-number
suppression list and frequency caps of 3 per 24 h and 10 per 30 days, a batch with the
window 08:00-21:00 every day), at US midday, `--rounds` times, which side goes first
alternating. Every number is inside its window then (numbers the window would hold are left
out, so both sides dial the same calls) and none is on the list (those would be refused at
upload): what differs is the gate's own work. Wall time and the process's CPU time are both
printed; on a shared machine the CPU time is the steadier figure.

Prints figures; nothing is asserted. Timing varies with machine load: run it on a quiet box.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import sqlalchemy as sa

from dialbatch.domain.caps import Caps
from dialbatch.domain.clock import FixedClock
from dialbatch.domain.gate import Admit
from dialbatch.domain.ids import new_batch_id
from dialbatch.domain.windows import parse_calling_window
from dialbatch.store import (
    batches,
    gate_settings,
    gating,
    migrate,
    number_dials,
    queue,
    suppressions,
    workspaces,
)
from dialbatch.store.batches import release_slots
from dialbatch.store.engine import Database
from dialbatch.store.tables import calls
from dialbatch.store.tables import number_dials as number_dials_table
from gate_domain import us_numbers

WS = "ws_bench"
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAYTIME = {"days": {d: [["08:00", "21:00"]] for d in WEEK}}
ALWAYS = {"days": {d: [["00:00", "24:00"]] for d in WEEK}}
# Wednesday 9 June 2027, 06:00 UTC: night everywhere in the United States. In the future of
# the database's clock, so that a call moved to its next opening is no longer due by it.
US_NIGHT = 1_812_520_800_000
US_MIDDAY = US_NIGHT + 12 * 3600 * 1000  # 14:00 in New York, 08:00 in Honolulu


async def make(
    db: Database, numbers: list[str], window: dict[str, object] | None, ws: str = WS
) -> str:
    async def rows() -> AsyncIterator[list[tuple[int, str, str]]]:
        yield [(i, p, "{}") for i, p in enumerate(numbers)]

    batch_id = new_batch_id()
    async with db.write() as conn:
        await batches.insert_batch(
            conn,
            batch_id=batch_id,
            workspace_id=ws,
            agent_id="agent_bench",
            scheduled_at=None,
            callback_policy={"enabled": False, "maxAttempts": 1, "gaps": []},
            source_name=None,
            rows=rows(),
            calling_window=None if window is None else parse_calling_window(window).to_json(),
        )
    return batch_id


async def drain(
    db: Database, group: int, clock: FixedClock | None, ws: str = WS
) -> tuple[int, float, float]:
    """Claim and begin dials until nothing is claimed; dialed calls end at once. Returns the
    calls dialed, the wall time and the process's CPU time (SQLite's thread included), which
    other work on the machine disturbs much less than the wall time."""
    dialed = 0
    start, cpu = time.perf_counter(), time.process_time()
    while True:
        async with db.write() as conn:
            claimed, _ = await queue.claim(conn, ws, "w", group, 60_000, clock=clock)
        if not claimed:
            break
        async with db.write() as conn:
            intents = await queue.begin_dials(
                conn, [(c, "simulated") for c in claimed], "w", 60_000, clock=clock
            )
            # Free the slots at once (the outcome path is not what is measured here).
            await conn.execute(
                calls.update()
                .where(calls.c.id.in_([i.call.call_id for i in intents]))
                .values(status="completed")
            )
            await release_slots(conn, ws, len(claimed))
        dialed += len(intents)
    return dialed, time.perf_counter() - start, time.process_time() - cpu


async def main(n_calls: int, group: int) -> None:
    numbers = us_numbers(n_calls)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        migrate.upgrade(url)
        db = Database(url)
        async with db.write() as conn:
            await workspaces.create_workspace(
                conn, workspace_id=WS, max_concurrent_calls=group, calls_per_second=1_000_000
            )
            await workspaces.create_agent(
                conn, WS, name="b", provider="simulated", agent_id="agent_bench"
            )
        for label, window, at, profile in (
            ("no window", None, US_MIDDAY, "none"),
            ("daytime, open", DAYTIME, US_MIDDAY, "none"),
            ("24 h, open", ALWAYS, US_MIDDAY, "none"),
            ("daytime, shut", DAYTIME, US_NIGHT, "none"),
            ("us profile", None, US_MIDDAY, "us"),
        ):
            async with db.write() as conn:
                await gate_settings.update(conn, WS, compliance_profile=profile)
                # Each run dials the same numbers: forget the earlier runs' dials, or the
                # `us` caps (3 per 24 h in FL, OK, MD) would hold those numbers back.
                await conn.execute(number_dials_table.delete())
            batch = await make(db, numbers, window)
            dialed, took, _ = await drain(db, group, FixedClock(at))
            async with db.read() as conn:
                left = dict(
                    (
                        await conn.execute(
                            sa.select(calls.c.status, sa.func.count())
                            .where(calls.c.batch_id == batch)
                            .group_by(calls.c.status)
                        )
                    ).all()
                )
            print(
                f"{label:>14}: {n_calls:,} calls through claim+intent in {took:.2f} s"
                f" = {n_calls / took:,.0f}/s; dialed {dialed:,}, then {left}"
            )
            async with db.write() as conn:
                await conn.execute(calls.delete().where(calls.c.batch_id == batch))
        print(json.dumps({"calls": n_calls, "group": group}))
        await db.dispose()


GATE_OFF, GATE_ON = "ws_gate_off", "ws_gate_on"
SUPPRESSED = 100_000


async def gate_side_by_side(n_calls: int, group: int, rounds: int) -> None:
    """Gate off and on, alternating, over the same calls (see the module docstring)."""
    policy = gating.policy_for(parse_calling_window(DAYTIME).to_json(), "us")
    candidates = us_numbers(n_calls * 2 + SUPPRESSED)
    asker = gating._Asker(US_MIDDAY, 0)  # one answer per set of zones
    inside = [p for p in candidates[:-SUPPRESSED] if isinstance(asker(policy, p, None), Admit)]
    numbers = inside[:n_calls]
    taken = set(numbers)
    listed = [p for p in candidates[-SUPPRESSED:] if p not in taken]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        migrate.upgrade(url)
        db = Database(url)
        async with db.write() as conn:
            for ws in (GATE_OFF, GATE_ON):
                await workspaces.create_workspace(
                    conn, workspace_id=ws, max_concurrent_calls=group, calls_per_second=1_000_000
                )
                await workspaces.create_agent(
                    conn, ws, name="b", provider="simulated", agent_id="agent_bench"
                )
            await number_dials.set_caps(conn, GATE_ON, Caps(per_24h=3, per_30d=10))
            # The `us` pack on top: federal hours, and FL/OK/MD hours and caps (a per-number
            # lock and a ledger read in the intent for those numbers).
            await gate_settings.update(conn, GATE_ON, compliance_profile="us")
            for i in range(0, len(listed), 10_000):
                await suppressions.add(
                    conn, GATE_ON, [(p, "bench") for p in listed[i : i + 10_000]], source="api"
                )
        print(
            f"gate on: the us profile, window 08:00-21:00, caps 3/24 h and 10/30 days,"
            f" {len(listed):,}"
            f" suppressed numbers; {n_calls:,} calls a run, groups of {group}"
        )
        rates: dict[str, list[float]] = {"off": [], "on": [], "off cpu": [], "on cpu": []}
        sides = [("off", GATE_OFF, None), ("on", GATE_ON, DAYTIME)]
        for r in range(rounds):
            # Alternate which side goes first, so a drift over the run falls on both alike.
            for label, ws, window in sides if r % 2 == 0 else sides[::-1]:
                batch = await make(db, numbers, window, ws)
                dialed, took, cpu = await drain(db, group, FixedClock(US_MIDDAY), ws)
                rates[label].append(dialed / took)
                rates[f"{label} cpu"].append(dialed / cpu)
                print(
                    f"  round {r + 1} gate {label:>3}: dialed {dialed:,} in {took:.2f} s"
                    f" = {dialed / took:,.0f}/s; {cpu:.2f} s of CPU = {dialed / cpu:,.0f}"
                    " per CPU-second"
                )
                async with db.write() as conn:
                    await conn.execute(calls.delete().where(calls.c.batch_id == batch))
                    await conn.execute(sa.text("DELETE FROM number_dials"))
                    await conn.execute(sa.text("DELETE FROM attempts"))
                    await conn.execute(sa.text("DELETE FROM outbox"))
        med = {k: statistics.median(v) for k, v in rates.items()}
        for unit, off, on in (
            ("calls/s (wall)", med["off"], med["on"]),
            ("calls per CPU-second", med["off cpu"], med["on cpu"]),
        ):
            print(
                f"median {unit}: gate off {off:,.0f}, gate on {on:,.0f}:"
                f" {100 * (on / off - 1):+.1f} %"
            )
        print(json.dumps({"calls": n_calls, "group": group, "rounds": rounds, **med}))
        await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--group", type=int, default=100)
    parser.add_argument("--gate", action="store_true", help="gate off vs on, side by side")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.gate:
        asyncio.run(gate_side_by_side(args.calls, args.group, args.rounds))
    else:
        asyncio.run(main(args.calls, args.group))
