"""The caller numbers' ledger: which caller number each dial showed, and when.

The pool's rule (domain/caller_pool.py) counts it: rotation takes the least recently used
number, and a number's own ``callsPerSecond`` and ``perDay`` limits count its starts here.
The intent step locks the caller numbers it is about to use (one PostgreSQL advisory lock per
number, in a namespace of their own, taken after the recipients' locks and in a fixed order),
reads their starts, chooses, and records the chosen ones, all in the intent's transaction:
two workers cannot both take a number's last slot of a second. SQLite's single writer takes
turns by itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.caller_pool import DAY_MS
from dialbatch.store._dialect import db_now_ms, lock_numbers
from dialbatch.store.tables import attempts, caller_dials

# A namespace for the caller numbers' advisory locks, apart from the recipients' (the caps).
_LOCK_SPACE = "\x00caller"


async def lock(conn: AsyncConnection, numbers: Iterable[tuple[str, str]]) -> None:
    """Take turns on (workspace, caller number) until the transaction ends."""
    await lock_numbers(conn, [(ws + _LOCK_SPACE, n) for ws, n in numbers])


async def starts(
    conn: AsyncConnection, numbers: Iterable[tuple[str, str]], since: int
) -> dict[tuple[str, str], list[int]]:
    """When each (workspace, caller number) started a dial after `since`, oldest first."""
    wanted = set(numbers)
    if not wanted:
        return {}
    d = caller_dials.c
    rows = await conn.execute(
        sa.select(d.workspace_id, d.from_number, d.at)
        .where(
            d.workspace_id.in_({w for w, _ in wanted}),
            d.from_number.in_({n for _, n in wanted}),
            d.at > since,
        )
        .order_by(d.at)
    )
    out: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in rows:
        if (r.workspace_id, r.from_number) in wanted:
            out[(r.workspace_id, r.from_number)].append(int(r.at))
    return out


async def last_used(
    conn: AsyncConnection, numbers: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """When each (workspace, caller number) last started a dial (absent: never, or over a
    day ago): the rotation's "least recently used". One statement of one `max` per number,
    each an index probe from the end of ix_caller_dials_number (a GROUP BY would read every
    row of the day)."""
    wanted = sorted(set(numbers))
    if not wanted:
        return {}
    d = caller_dials.c
    probes = [
        sa.select(sa.func.max(d.at))
        .where(d.workspace_id == ws, d.from_number == n)
        .scalar_subquery()
        .label(f"n{i}")
        for i, (ws, n) in enumerate(wanted)
    ]
    row = (await conn.execute(sa.select(*probes))).one()
    return {pair: int(at) for pair, at in zip(wanted, row, strict=True) if at is not None}


async def first_used(conn: AsyncConnection, call_ids: Sequence[int]) -> dict[int, str]:
    """The caller number of each call's first dial, for the calls that have one."""
    if not call_ids:
        return {}
    a = attempts.c
    rows = await conn.execute(
        sa.select(a.call_id, a.from_number).where(
            a.call_id.in_(list(call_ids)), a.n == 1, a.from_number.is_not(None)
        )
    )
    return {r.call_id: r.from_number for r in rows}


async def record(conn: AsyncConnection, dials: Sequence[tuple[str, str, int]]) -> None:
    """(workspace, caller number, when) of each dial whose intent is being written."""
    if dials:
        await conn.execute(
            caller_dials.insert(),
            [{"workspace_id": ws, "from_number": n, "at": at} for ws, n, at in dials],
        )


async def prune(conn: AsyncConnection) -> int:
    """Forget starts no limit counts any more (a day and a minute back)."""
    now = await db_now_ms(conn)
    result = await conn.execute(
        caller_dials.delete().where(caller_dials.c.at < now - DAY_MS - 60_000)
    )
    return int(result.rowcount or 0)
