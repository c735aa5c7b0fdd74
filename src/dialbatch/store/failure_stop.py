"""The automatic stop on failure spikes, applied: after outcomes are written, a batch that
just had a dial fail at the network or provider is weighed by the pure rule
(domain/failure_stop.py) against its latest ended dials, and paused by itself when the rule
says so (store/pauses.auto_pause: the same pause as by hand, with its reason).

Cheap by construction: only batches with a new failure are weighed, and their latest dials
are read through the partial index ix_attempts_batch_ended (at most `lastDials` rows).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain import failure_stop
from dialbatch.domain.failure_stop import DialEnd, FailureStop, counts_as_failure
from dialbatch.domain.outcomes import Outcome
from dialbatch.domain.states import RUNNING_BATCH_STATES
from dialbatch.store import pauses
from dialbatch.store._dialect import db_now_ms
from dialbatch.store.tables import attempts, batches, workspaces

# How many times `lastDials` ended dials are read: a call retried after a network failure
# makes up to `connection_attempts` (3 by default) dials, of which only the first counts.
READ_DEPTH = 4


async def weigh(conn: AsyncConnection, batch_ids: Iterable[str]) -> list[str]:
    """Pause each of the batches (running, not paused) whose latest dials cross its rule,
    in `conn`'s transaction; returns the ids of the batches it paused."""
    paused: list[str] = []
    for batch_id in sorted(set(batch_ids)):
        row = await _settings(conn, batch_id)
        if row is None:
            continue
        rule = failure_stop.effective(row.failure_stop, row.ws_failure_stop)
        if not rule.enabled:
            continue
        now = await db_now_ms(conn)
        reason = failure_stop.decide(
            rule, await _latest(conn, batch_id, rule, now), now, int(row.resumed_at or 0)
        )
        if reason and await pauses.auto_pause(conn, row.workspace_id, batch_id, reason):
            paused.append(batch_id)
    return paused


async def _settings(conn: AsyncConnection, batch_id: str) -> Any:
    b = batches.c
    return (
        await conn.execute(
            sa.select(
                b.workspace_id,
                b.failure_stop,
                b.resumed_at,
                workspaces.c.failure_stop.label("ws_failure_stop"),
            )
            .join(workspaces, workspaces.c.id == b.workspace_id)
            .where(b.id == batch_id, b.status.in_(RUNNING_BATCH_STATES), b.paused_at.is_(None))
        )
    ).first()


async def _latest(
    conn: AsyncConnection, batch_id: str, rule: FailureStop, now: int
) -> list[DialEnd]:
    """The batch's latest ended dials in the window, each marked `repeat` when its call had
    failed at the network on an earlier dial. Read a few times `lastDials` deep, so that
    enough remain once the repeats (at most the connection retries of each call) are left
    out."""
    a = attempts.c
    rows = (
        await conn.execute(
            sa.select(a.call_id, a.n, a.ended_at, a.outcome, a.provider_code)
            .where(
                a.batch_id == batch_id,
                a.ended_at.is_not(None),  # the partial index's predicate
                a.ended_at >= now - rule.within_s * 1000,
            )
            .order_by(a.ended_at.desc())
            .limit(rule.last_dials * READ_DEPTH)
        )
    ).all()
    first = await _first_failures(conn, {r.call_id for r in rows}) if rows else {}
    return [
        DialEnd(
            r.call_id,
            int(r.ended_at),
            r.outcome or "",
            r.provider_code,
            repeat=r.n > first.get(r.call_id, r.n),
        )
        for r in rows
    ]


async def _first_failures(conn: AsyncConnection, call_ids: set[int]) -> dict[int, int]:
    """Each call's first dial that failed at the network (its number n), through
    ix_attempts_call: a few dials of each call read."""
    a = attempts.c
    rows = await conn.execute(
        sa.select(a.call_id, a.n, a.provider_code).where(
            a.call_id.in_(sorted(call_ids)), a.outcome == Outcome.FAILED.value
        )
    )
    first: dict[int, int] = {}
    for r in rows:
        if counts_as_failure(Outcome.FAILED.value, r.provider_code):
            first[r.call_id] = min(r.n, first.get(r.call_id, r.n))
    return first


async def workspace_rule(conn: AsyncConnection, workspace_id: str) -> FailureStop:
    """The workspace's rule (the default when it set none)."""
    raw = await conn.scalar(
        sa.select(workspaces.c.failure_stop).where(workspaces.c.id == workspace_id)
    )
    return failure_stop.effective(None, raw)


async def set_workspace_rule(
    conn: AsyncConnection, workspace_id: str, rule: FailureStop | None
) -> None:
    """Set the workspace's rule (None: back to the default), in `conn`'s transaction."""
    await conn.execute(
        workspaces.update()
        .where(workspaces.c.id == workspace_id)
        .values(failure_stop=None if rule is None else rule.to_json())
    )
