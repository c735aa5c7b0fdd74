"""A batch's gate summary: how many of its calls the pre-dial gate holds back now, and how
many it refused (issue 10, item 7).

Every hold or refusal writes its kind in ``calls.gate_hold`` (store/gating.py, and the
suppression and cap holds of store/queue.py), cleared when the call is claimed again. The
summary is a COUNT over the partial index ``ix_calls_gate_hold``, which holds only calls with
a standing hold, so it reads index entries alone and nothing of the batch's other calls. It is
exact: a hold whose due time has passed no longer counts (the call is due, not held).
Counters were the alternative; they cannot see a hold end by the clock alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.gate import ReasonKind
from dialbatch.domain.states import CallState
from dialbatch.store._dialect import db_now_ms
from dialbatch.store.tables import calls


@dataclass(frozen=True)
class GateSummary:
    """Waiting calls held for a window or a cap, and calls the gate ended, by kind."""

    waiting_for_window: int = 0
    waiting_for_cap: int = 0
    refused: dict[str, int] = field(default_factory=dict)


async def gate_summary(conn: AsyncConnection, batch_id: str) -> GateSummary:
    """The batch's summary now, on the database's clock (the caller scopes the batch to its
    workspace)."""
    now = await db_now_ms(conn)
    c = calls.c
    waiting = sa.and_(c.status == CallState.WAITING.value, c.next_attempt_at > now)
    rows = await conn.execute(
        sa.select(c.gate_hold, c.status, sa.func.count())
        .where(
            c.batch_id == batch_id,
            c.gate_hold.is_not(None),
            sa.or_(waiting, c.status == CallState.FAILED.value),
        )
        .group_by(c.gate_hold, c.status)
    )
    window = cap = 0
    refused: dict[str, int] = {}
    for kind, status, n in rows:
        if status == CallState.FAILED.value:
            refused[kind] = refused.get(kind, 0) + n
        elif kind == ReasonKind.OUTSIDE_WINDOW.value:
            window += n
        elif kind == ReasonKind.CAPPED.value:
            cap += n
    return GateSummary(window, cap, dict(sorted(refused.items())))
