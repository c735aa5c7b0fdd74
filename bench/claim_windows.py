"""What a calling window costs the queue (issue 10, item 1), on SQLite, store level.

    python bench/claim_windows.py [--calls 20000] [--group 100]

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

Prints figures; nothing is asserted. Timing varies with machine load: run it on a quiet box.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import sqlalchemy as sa

from dialbatch.domain.clock import FixedClock
from dialbatch.domain.ids import new_batch_id
from dialbatch.domain.windows import parse_calling_window
from dialbatch.store import batches, gate_settings, migrate, queue, workspaces
from dialbatch.store.batches import release_slots
from dialbatch.store.engine import Database
from dialbatch.store.tables import calls, number_dials
from gate_domain import us_numbers

WS = "ws_bench"
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAYTIME = {"days": {d: [["08:00", "21:00"]] for d in WEEK}}
ALWAYS = {"days": {d: [["00:00", "24:00"]] for d in WEEK}}
# Wednesday 9 June 2027, 06:00 UTC: night everywhere in the United States. In the future of
# the database's clock, so that a call moved to its next opening is no longer due by it.
US_NIGHT = 1_812_520_800_000
US_MIDDAY = US_NIGHT + 12 * 3600 * 1000  # 14:00 in New York, 08:00 in Honolulu


async def make(db: Database, numbers: list[str], window: dict[str, object] | None) -> str:
    async def rows() -> AsyncIterator[list[tuple[int, str, str]]]:
        yield [(i, p, "{}") for i, p in enumerate(numbers)]

    batch_id = new_batch_id()
    async with db.write() as conn:
        await batches.insert_batch(
            conn,
            batch_id=batch_id,
            workspace_id=WS,
            agent_id="agent_bench",
            scheduled_at=None,
            callback_policy={"enabled": False, "maxAttempts": 1, "gaps": []},
            source_name=None,
            rows=rows(),
            calling_window=None if window is None else parse_calling_window(window).to_json(),
        )
    return batch_id


async def drain(db: Database, group: int, clock: FixedClock | None) -> tuple[int, float]:
    """Claim and begin dials until nothing is claimed; dialed calls end at once."""
    dialed = 0
    start = time.perf_counter()
    while True:
        async with db.write() as conn:
            claimed, _ = await queue.claim(conn, WS, "w", group, 60_000, clock=clock)
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
            await release_slots(conn, WS, len(claimed))
        dialed += len(intents)
    return dialed, time.perf_counter() - start


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
                await conn.execute(number_dials.delete())
            batch = await make(db, numbers, window)
            dialed, took = await drain(db, group, FixedClock(at))
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--group", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.group))
