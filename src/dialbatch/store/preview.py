"""What the validate endpoint reads to estimate a batch's run: the workspace's limits and
the agent's typical dial length, learned from its latest dials."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.store.tables import attempts, batches, workspace_limiter

# How far back the agent's typical dial is learned: its latest batches, their latest dials.
RECENT_BATCHES = 5
RECENT_DIALS = 500


async def limits(conn: AsyncConnection, workspace_id: str) -> tuple[int, float]:
    """(concurrent calls at most, calls started per second at most) of the workspace."""
    row = (
        await conn.execute(
            sa.select(workspace_limiter.c.max_active, workspace_limiter.c.calls_per_second).where(
                workspace_limiter.c.workspace_id == workspace_id
            )
        )
    ).one()
    return int(row.max_active), float(row.calls_per_second)


async def typical_dial_s(
    conn: AsyncConnection, workspace_id: str, agent_id: str
) -> tuple[float | None, int]:
    """The mean length (start to end, seconds) of the agent's latest ended dials, and how
    many dials it is taken from; (None, 0) when the agent has none yet. Reads at most
    RECENT_DIALS rows of RECENT_BATCHES batches, through ix_attempts_batch_ended."""
    b = batches.c
    recent = (
        sa.select(b.id)
        .where(b.workspace_id == workspace_id, b.agent_id == agent_id)
        .order_by(b.created_at.desc())
        .limit(RECENT_BATCHES)
    )
    ids = [r[0] for r in await conn.execute(recent)]
    if not ids:
        return None, 0
    a = attempts.c
    latest = (
        sa.select((a.ended_at - a.started_at).label("ms"))
        .where(a.batch_id.in_(ids), a.ended_at.is_not(None))
        .order_by(a.ended_at.desc())
        .limit(RECENT_DIALS)
        .subquery()
    )
    row = (await conn.execute(sa.select(sa.func.avg(latest.c.ms), sa.func.count()))).one()
    n = int(row[1] or 0)
    return (float(row[0]) / 1000.0 if n else None), n


async def latest_starts(
    conn: AsyncConnection, workspace_id: str, agent_id: str
) -> tuple[list[int], int | None]:
    """When the latest ended dials (at most RECENT_DIALS) of the agent's latest batch that
    has any started, and that batch's own maxConcurrency: what the pace it achieved is
    learned from (domain/preview.achieved_pace)."""
    b = batches.c
    recent = (
        await conn.execute(
            sa.select(b.id, b.max_concurrency)
            .where(b.workspace_id == workspace_id, b.agent_id == agent_id)
            .order_by(b.created_at.desc())
            .limit(RECENT_BATCHES)
        )
    ).all()
    a = attempts.c
    for batch_id, max_concurrency in recent:
        starts = [
            int(r[0])
            for r in await conn.execute(
                sa.select(a.started_at)
                .where(a.batch_id == batch_id, a.ended_at.is_not(None))
                .order_by(a.ended_at.desc())
                .limit(RECENT_DIALS)
            )
        ]
        if starts:
            return starts, max_concurrency
    return [], None
