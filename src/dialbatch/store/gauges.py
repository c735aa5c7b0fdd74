"""The shared state's figures that /metrics shows, read at scrape time: calls waiting and
active per workspace, each workspace's limits, and the webhook backlog.

Cheap at any size: waiting calls come from the sharded counters of running batches
(found through ix_batches_runnable), active calls and limits from the limiter rows, the
backlog from the partial index of pending deliveries (ix_webhook_deliveries_due), which
holds only the deliveries not yet done.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.states import RUNNING_BATCH_STATES, CallState
from dialbatch.store.tables import batch_counters, batches, webhook_deliveries, workspace_limiter
from dialbatch.store.webhooks import PENDING


@dataclass(frozen=True)
class WorkspaceGauge:
    workspace_id: str
    waiting: int
    active: int
    max_active: int
    calls_per_second: float


async def workspace_gauges(conn: AsyncConnection) -> list[WorkspaceGauge]:
    """One row per workspace, in id order."""
    b, bc, lim = batches.c, batch_counters.c, workspace_limiter.c
    # Claimed calls read as waiting on the wire, but they hold a slot: they are counted
    # with `active` (the limiter's figure), not here.
    waiting_rows = await conn.execute(
        sa.select(b.workspace_id, sa.func.coalesce(sa.func.sum(bc.n), 0))
        .select_from(batches.join(batch_counters, bc.batch_id == b.id))
        .where(b.status.in_(RUNNING_BATCH_STATES), bc.status == CallState.WAITING.value)
        .group_by(b.workspace_id)
    )
    waiting = {ws: int(n) for ws, n in waiting_rows}
    limits = await conn.execute(
        sa.select(lim.workspace_id, lim.active, lim.max_active, lim.calls_per_second).order_by(
            lim.workspace_id
        )
    )
    return [
        WorkspaceGauge(
            workspace_id=ws,
            waiting=waiting.get(ws, 0),
            active=int(active),
            max_active=int(max_active),
            calls_per_second=float(cps),
        )
        for ws, active, max_active, cps in limits
    ]


async def webhook_backlog(conn: AsyncConnection) -> int:
    """Deliveries still pending (due, in flight, or waiting for a retry), all workspaces."""
    d = webhook_deliveries.c
    n = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(webhook_deliveries)
        .where(d.status == sa.literal(PENDING, literal_execute=True))
    )
    return int(n or 0)
