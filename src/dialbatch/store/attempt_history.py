"""A call's attempt history: its rows of the `attempts` ledger, one per dial, in order.

The ledger is written before each dial (the intent) and filled in as the provider reports
(placement, outcome), so it is the record of what was asked of the carrier and what came
back: what `GET .../calls/{jobId}` shows as `attemptHistory`.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.store.tables import attempts, calls


@dataclass(frozen=True)
class AttemptRecord:
    n: int
    state: str
    started_at: int
    ended_at: int | None
    outcome: str | None
    duration_s: float | None
    provider: str
    provider_call_id: str | None
    provider_code: str | None
    from_number: str | None


async def attempt_history(
    conn: AsyncConnection, workspace_id: str, call_id: int
) -> list[AttemptRecord]:
    """Every dial of the call (the workspace's), first first."""
    a = attempts.c
    rows = await conn.execute(
        sa.select(
            a.n,
            a.state,
            a.started_at,
            a.ended_at,
            a.outcome,
            a.duration_s,
            a.provider,
            a.provider_call_id,
            a.provider_code,
            a.from_number,
        )
        .join(calls, calls.c.id == a.call_id)
        .where(a.call_id == call_id, calls.c.workspace_id == workspace_id)
        .order_by(a.n)
    )
    return [AttemptRecord(**r._mapping) for r in rows]


async def attempt_histories(
    conn: AsyncConnection, workspace_id: str, call_ids: list[int]
) -> dict[int, list[AttemptRecord]]:
    """The attempt history of each of these calls (the workspace's), in one query: a page
    of the calls listing with `include=attempts` costs one read, not one per call."""
    if not call_ids:
        return {}
    a = attempts.c
    rows = await conn.execute(
        sa.select(
            a.call_id,
            a.n,
            a.state,
            a.started_at,
            a.ended_at,
            a.outcome,
            a.duration_s,
            a.provider,
            a.provider_call_id,
            a.provider_code,
            a.from_number,
        )
        .join(calls, calls.c.id == a.call_id)
        .where(a.call_id.in_(call_ids), calls.c.workspace_id == workspace_id)
        .order_by(a.call_id, a.n)
    )
    out: dict[int, list[AttemptRecord]] = {i: [] for i in call_ids}
    for r in rows:
        fields = dict(r._mapping)
        out[fields.pop("call_id")].append(AttemptRecord(**fields))
    return out
