"""What the agent runtime reports about a call (transcript, outcome label, extracted data),
merged into the call's `result`.

Telephony decides a call's status; the agent only describes the conversation. So a report
never moves a call or its counters, and the two may arrive in either order: the report is
merged over whatever the provider wrote, and the provider's completion keeps the agent's
fields (store/queue.py's `_result` overlays `agent_fields` of the stored result).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.store._dialect import for_update
from dialbatch.store.tables import agents, batches, calls

# The fields of `result` that belong to the agent: a provider's outcome never overwrites
# them once the agent has reported them.
AGENT_FIELDS = ("transcript", "outcome", "data", "summary", "recordingUrl")


@dataclass(frozen=True)
class Reporter:
    """Who may report on a call: its batch's workspace and agent, and the agent's current
    secret version (to derive the secret the request must be signed with)."""

    workspace_id: str
    agent_id: str
    secret_version: int
    call_status: str
    attempt: int
    phone_number: str  # an opt-out suppresses it


async def reporter(conn: AsyncConnection, batch_id: str, seq: int) -> Reporter | None:
    """The agent entitled to report on call `seq` of `batch_id`; None for an unknown call."""
    c, b, a = calls.c, batches.c, agents.c
    row = (
        await conn.execute(
            sa.select(
                b.workspace_id, b.agent_id, a.secret_version, c.status, c.attempt, c.phone_number
            )
            .select_from(calls)
            .join(batches, b.id == c.batch_id)
            .join(agents, sa.and_(a.workspace_id == b.workspace_id, a.id == b.agent_id))
            .where(c.batch_id == batch_id, c.seq == seq)
        )
    ).first()
    if row is None:
        return None
    return Reporter(
        workspace_id=row.workspace_id,
        agent_id=row.agent_id,
        secret_version=int(row.secret_version),
        call_status=row.status,
        attempt=int(row.attempt),
        phone_number=row.phone_number,
    )


async def record(
    conn: AsyncConnection, workspace_id: str, batch_id: str, seq: int, report: dict[str, Any]
) -> dict[str, Any] | None:
    """Merge `report` (agent fields only) into the call's result; the merged result, or
    None when the workspace has no such call. The row is locked, so a provider outcome
    applied at the same moment is merged with, not lost."""
    c = calls.c
    row = (
        await conn.execute(
            for_update(
                conn,
                sa.select(c.id, c.metadata, c.provider_call_id, c.result).where(
                    c.batch_id == batch_id, c.seq == seq, c.workspace_id == workspace_id
                ),
            )
        )
    ).first()
    if row is None:
        return None
    merged = merge(
        row.result, report, metadata=json.loads(row.metadata), call_id=row.provider_call_id
    )
    await conn.execute(calls.update().where(c.id == row.id).values(result=merged))
    return merged


def merge(
    existing: dict[str, Any] | None,
    report: dict[str, Any],
    *,
    metadata: dict[str, Any],
    call_id: str | None,
) -> dict[str, Any]:
    """The result after a report: what was there, with the agent fields the report carries
    replaced (a field it leaves out keeps its earlier value)."""
    result: dict[str, Any] = (
        dict(existing) if existing else {"callId": call_id, "metadata": metadata}
    )
    result.update({k: v for k, v in report.items() if k in AGENT_FIELDS and v is not None})
    return result


def agent_fields(existing: dict[str, Any] | None) -> dict[str, Any]:
    """The agent's fields of a stored result, for a provider's outcome to keep."""
    if not existing:
        return {}
    return {k: v for k, v in existing.items() if k in AGENT_FIELDS}
