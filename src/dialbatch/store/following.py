"""Following a live dial between its start and its end: progress reported by the provider,
and the dials that have gone quiet.

Progress only moves forward (dialing -> ringing -> answered), so duplicated and reordered
callbacks are harmless. Any word from the provider about a dial stamps `heard_at`; the
worker following a dial asks the provider about it once it has been quiet too long, because
a callback that never arrives must not leave a call (and its concurrency slot) live forever.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.ids import dial_key
from dialbatch.domain.progress import CallProgress, Stage
from dialbatch.domain.states import CallState
from dialbatch.store._dialect import now_ms_sql
from dialbatch.store.outcomes import attempt_match
from dialbatch.store.queue import record_placed_many
from dialbatch.store.tables import attempts, batches, calls

STAGE_STATES = {Stage.DIALING: "dialing", Stage.RINGING: "ringing", Stage.ANSWERED: "answered"}


async def apply_progress(conn: AsyncConnection, event: CallProgress) -> bool:
    """Move a live attempt forward to `event.stage`; False if it was already there, further
    on, ended, or unknown to us."""
    match = attempt_match(event.dial_key, event.provider_call_id)
    if match is None:
        return False
    a = attempts.c
    if event.dial_key and event.provider_call_id:
        # The provider's id, the moment it is known: if the worker that placed the dial
        # dies before recording it, this is what lets reconciliation ask about the call.
        await record_placed_many(conn, [(event.dial_key, event.provider_call_id)])
    earlier = [STAGE_STATES[s] for s in Stage if s < event.stage]
    now = now_ms_sql(conn)
    moved = await conn.execute(
        attempts.update()
        .where(match, a.ended_at.is_(None), a.state.in_(earlier))
        .values(state=STAGE_STATES[event.stage], heard_at=now)
    )
    if moved.rowcount:
        return True
    # Not a step forward, but still word that the provider follows the call.
    await conn.execute(attempts.update().where(match, a.ended_at.is_(None)).values(heard_at=now))
    return False


@dataclass(frozen=True)
class QuietDial:
    call_id: int
    workspace_id: str
    agent_id: str
    dial_key: str
    provider_call_id: str | None
    phone_number: str = ""
    started_at: int | None = None  # the intent's time, on the database's clock
    from_number: str | None = None  # the caller number the dial showed


async def quiet_dials(
    conn: AsyncConnection, owner: str, quiet_ms: int, limit: int = 100
) -> list[QuietDial]:
    """Dials `owner` follows that the provider has said nothing about for `quiet_ms`."""
    c = calls.c
    a = attempts.c
    cutoff = now_ms_sql(conn) - quiet_ms
    rows = (
        await conn.execute(
            sa.select(
                c.id,
                c.batch_id,
                c.workspace_id,
                c.seq,
                c.attempt,
                c.provider_call_id,
                c.phone_number,
                a.started_at,
                a.from_number,
                batches.c.agent_id,
            )
            .join(attempts, (a.call_id == c.id) & (a.n == c.attempt))
            .join(batches, batches.c.id == c.batch_id)
            .where(
                c.lease_expires.is_not(None),  # through ix_calls_leases
                c.lease_owner == owner,
                c.status == CallState.DIALING.value,
                a.ended_at.is_(None),
                sa.func.coalesce(a.heard_at, a.started_at) < cutoff,
            )
            .limit(limit)
        )
    ).all()
    return [
        QuietDial(
            call_id=r.id,
            workspace_id=r.workspace_id,
            agent_id=r.agent_id,
            dial_key=dial_key(r.batch_id, r.seq, r.attempt),
            provider_call_id=r.provider_call_id,
            phone_number=r.phone_number,
            started_at=r.started_at,
            from_number=r.from_number,
        )
        for r in rows
    ]


async def mark_heard(conn: AsyncConnection, key: str) -> None:
    """The provider confirmed the dial is live: quiet for another period before asking."""
    a = attempts.c
    await conn.execute(
        attempts.update()
        .where(a.dial_key == key, a.ended_at.is_(None))
        .values(heard_at=now_ms_sql(conn))
    )
