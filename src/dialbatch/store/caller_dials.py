"""The caller numbers' ledger: which caller number each dial showed, and when.

The pool's rule (domain/caller_pool.py) counts it: rotation takes the least recently used
number, and a number's own ``callsPerSecond`` and ``perDay`` limits count its starts here.
The intent step locks the caller numbers it is about to use (one PostgreSQL advisory lock per
number, in a namespace of their own, taken after the recipients' locks and in a fixed order),
reads their starts, chooses, and records the chosen ones, all in the intent's transaction:
two workers cannot both take a number's last slot of a second. SQLite's single writer takes
turns by itself.

**When a start counts.** The carrier counts a start when the dial's request reaches it, which
may be well after the intent commits (a loaded host, a slow network). So a row is written
*in flight* (its dial key in ``in_flight``, ``at`` the intent's time) and counts as starting
*now* for as long as the request is out; when the provider answers, the dialer marks it
(:func:`answered`): ``at`` becomes the time of the answer, which is no earlier than the
request reached the carrier. A next start is admitted a second after those times, at an
intent, before its own request leaves: the carrier sees the two at least a second apart
however long either request took. A row whose worker died with its request out stops
counting as "now" after :data:`~dialbatch.domain.caller_pool.IN_FLIGHT_MS`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.caller_pool import DAY_MS, IN_FLIGHT_MS
from dialbatch.store._dialect import db_now_ms, greatest, lock_numbers
from dialbatch.store.tables import attempts, caller_dials

# A namespace for the caller numbers' advisory locks, apart from the recipients' (the caps).
_LOCK_SPACE = "\x00caller"


async def lock(conn: AsyncConnection, numbers: Iterable[tuple[str, str]]) -> None:
    """Take turns on (workspace, caller number) until the transaction ends."""
    await lock_numbers(conn, [(ws + _LOCK_SPACE, n) for ws, n in numbers])


async def starts(
    conn: AsyncConnection, numbers: Iterable[tuple[str, str]], since: int, now: int
) -> dict[tuple[str, str], list[int]]:
    """When each (workspace, caller number) started a dial after `since`, oldest first, as
    its limits count it: a dial whose request is still out starts `now` (until
    IN_FLIGHT_MS after its intent), one the provider answered at the answer's time."""
    wanted = set(numbers)
    if not wanted:
        return {}
    d = caller_dials.c
    cols = (d.id, d.workspace_id, d.from_number, d.at, d.in_flight)
    pairs = (d.workspace_id.in_({w for w, _ in wanted}), d.from_number.in_({n for _, n in wanted}))
    # Two index ranges, not one OR (which SQLite would answer by reading the day's rows):
    # the window's rows through ix_caller_dials_number, those in flight (few) through the
    # partial ix_caller_dials_in_flight.
    recent = await conn.execute(sa.select(*cols).where(*pairs, d.at > since))
    out_now = await conn.execute(sa.select(*cols).where(*pairs, d.in_flight.is_not(None)))
    rows = {r.id: r for r in (*recent, *out_now)}.values()
    out: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in rows:
        pair = (r.workspace_id, r.from_number)
        if pair not in wanted:
            continue
        at = int(r.at)
        if r.in_flight is not None:
            at = now if at > now - IN_FLIGHT_MS else at + IN_FLIGHT_MS
        if at > since:
            out[pair].append(at)
    for times in out.values():
        times.sort()
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


async def record(conn: AsyncConnection, dials: Sequence[tuple[str, str, int, str]]) -> None:
    """(workspace, caller number, when, dial key) of each dial whose intent is being
    written: in flight until :func:`answered`."""
    if dials:
        await conn.execute(
            caller_dials.insert(),
            [
                {"workspace_id": ws, "from_number": n, "at": at, "in_flight": key}
                for ws, n, at, key in dials
            ],
        )


async def answered(conn: AsyncConnection, dial_keys: Sequence[str]) -> None:
    """The provider answered these dials' requests (placed or refused): each counts from
    now, no earlier than it reached the carrier, and is no longer in flight."""
    if not dial_keys:
        return
    d = caller_dials.c
    now = await db_now_ms(conn)
    await conn.execute(
        caller_dials.update()
        # IS NOT NULL spelled out: the partial index ix_caller_dials_in_flight is used only
        # when the query states its condition.
        .where(d.in_flight.is_not(None), d.in_flight.in_(list(dial_keys)))
        .values(at=greatest(conn, d.at, sa.literal(now, sa.BigInteger)), in_flight=None)
    )


async def prune(conn: AsyncConnection) -> int:
    """Forget starts no limit counts any more (a day and a minute back); a dial whose
    request was out when its worker died counts from IN_FLIGHT_MS after its intent."""
    now = await db_now_ms(conn)
    d = caller_dials.c
    await conn.execute(
        caller_dials.update()
        .where(d.in_flight.is_not(None), d.at < now - IN_FLIGHT_MS)
        .values(at=d.at + IN_FLIGHT_MS, in_flight=None)
    )
    result = await conn.execute(caller_dials.delete().where(d.at < now - DAY_MS - 60_000))
    return int(result.rowcount or 0)
