"""Dials per number, across batches: the ledger frequency caps count, and the caps.

Every dial's intent writes a row here (store/queue.begin_dials), in the same transaction
as its attempt, whether or not the workspace has caps, so that caps set later count the
dials made before. With caps set, the intent step first locks the numbers it is about to
dial (store/_dialect.lock_numbers: one PostgreSQL advisory lock per number, in a fixed
order), then counts their dials here: two workers dialing the same number from two batches
take turns, and the second sees the first's dial. Rows older than the longest period (30
days, plus a day of slack) are pruned by the reconciler's sweep.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.caps import DAY_MS, MONTH_MS, NO_CAPS, Caps, parse_caps
from dialbatch.store._dialect import db_now_ms, in_list
from dialbatch.store._prepared import Prepared, run
from dialbatch.store.tables import number_dials, workspaces

KEEP_MS = MONTH_MS + DAY_MS


async def caps_of(conn: AsyncConnection, workspace_ids: Iterable[str]) -> dict[str, Caps]:
    """The caps of each workspace that has any (a workspace without caps is absent)."""
    rows = await run(conn, _CAPS_OF, {"_ids": sorted(set(workspace_ids))})
    found = {r.id: parse_caps(r.frequency_caps) for r in rows}
    return {ws: caps for ws, caps in found.items() if caps.periods()}


_CAPS_OF = Prepared(
    "caps_of",
    lambda conn: sa.select(workspaces.c.id, workspaces.c.frequency_caps).where(
        in_list(conn, workspaces.c.id, "_ids"), workspaces.c.frequency_caps.is_not(None)
    ),
)


async def get_caps(conn: AsyncConnection, workspace_id: str) -> Caps:
    return (await caps_of(conn, [workspace_id])).get(workspace_id, NO_CAPS)


async def set_caps(conn: AsyncConnection, workspace_id: str, caps: Caps) -> bool:
    """Replace the workspace's caps (NO_CAPS removes them); False for an unknown workspace."""
    result = await conn.execute(
        workspaces.update()
        .where(workspaces.c.id == workspace_id)
        .values(frequency_caps=caps.to_json() if caps.periods() else None)
    )
    return bool(result.rowcount)


async def dial_times(
    conn: AsyncConnection, numbers: Iterable[tuple[str, str]], since: int
) -> dict[tuple[str, str], list[int]]:
    """When each (workspace, number) was dialed after `since` (epoch ms), oldest first."""
    wanted = set(numbers)
    if not wanted:
        return {}
    d = number_dials.c
    rows = await conn.execute(
        sa.select(d.workspace_id, d.phone_number, d.at)
        .where(
            d.workspace_id.in_({w for w, _ in wanted}),
            d.phone_number.in_({n for _, n in wanted}),
            d.at > since,
        )
        .order_by(d.at)
    )
    times: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in rows:
        if (r.workspace_id, r.phone_number) in wanted:
            times[(r.workspace_id, r.phone_number)].append(int(r.at))
    return times


async def record(conn: AsyncConnection, dials: Sequence[tuple[str, str, str, int]]) -> None:
    """(dial key, workspace, number, when) of each dial whose intent is being written."""
    if dials:
        await run(
            conn,
            _RECORD,
            [
                {"dial_key": key, "workspace_id": ws, "phone_number": number, "at": at}
                for key, ws, number, at in dials
            ],
        )


_RECORD = Prepared(
    "number_dials_record",
    lambda conn: number_dials.insert(),
    keys=("dial_key", "workspace_id", "phone_number", "at"),
)


async def prune(conn: AsyncConnection) -> int:
    """Forget dials no cap can count any more (on the database's clock)."""
    now = await db_now_ms(conn)
    result = await conn.execute(number_dials.delete().where(number_dials.c.at < now - KEEP_MS))
    return int(result.rowcount or 0)
