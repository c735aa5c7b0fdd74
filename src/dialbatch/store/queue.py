"""The queue protocol of DESIGN.md §4: claim -> intent -> (dial) -> outcome, and recovery.

Claiming is safe to redo; dialing is not. So the intent to dial commits on its own,
fenced by the lease token, before any provider is asked, and a call whose fate became
uncertain is reconciled rather than dialed again.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.ids import dial_key, job_id
from dialbatch.domain.outcomes import OUTCOME_RULES, CallEvent, Outcome
from dialbatch.domain.retry import AttemptHistory, decide, parse_callback_policy
from dialbatch.domain.states import RUNNING_BATCH_STATES, BatchState, CallState
from dialbatch.settings import Settings
from dialbatch.store import counters, outbox
from dialbatch.store._dialect import db_now_ms, for_update
from dialbatch.store.batches import mark_done_if_drained, release_slots
from dialbatch.store.results import agent_fields
from dialbatch.store.tables import attempts, batches, calls, workspace_limiter


@dataclass(frozen=True)
class Claimed:
    call_id: int
    batch_id: str
    workspace_id: str
    agent_id: str
    seq: int
    phone_number: str
    metadata: str
    lease_token: int

    @property
    def job_id(self) -> str:
        return job_id(self.batch_id, self.seq)


@dataclass(frozen=True)
class Intent:
    """A dial made durable: the provider may now be asked, with `dial_key` as idempotency key."""

    call: Claimed
    attempt: int
    dial_key: str


async def runnable_workspaces(conn: AsyncConnection) -> list[str]:
    now = await db_now_ms(conn)
    rows = await conn.execute(
        sa.select(batches.c.workspace_id)
        .where(batches.c.status.in_(RUNNING_BATCH_STATES), batches.c.scheduled_at <= now)
        .distinct()
    )
    return [r[0] for r in rows]


# Lock order, in every transaction that takes more than one of these: the workspace's
# limiter row, then call rows, then counter rows (sorted by status), then the batch row.
# PostgreSQL detects the deadlocks any other order produces (measured: it did).


async def claim(
    conn: AsyncConnection, workspace_id: str, owner: str, max_n: int, lease_ms: int
) -> tuple[list[Claimed], float]:
    """Claim up to `max_n` due calls of the workspace within its rate and concurrency budget.

    Returns the claimed calls and the workspace's calls-per-second, to pace them out by.

    The limiter row is locked for the whole transaction and refilled from the database's
    clock, so every worker on every host shares one exact budget.
    """
    now = await db_now_ms(conn)
    lim = workspace_limiter.c
    limiter = (
        await conn.execute(
            for_update(conn, sa.select(workspace_limiter).where(lim.workspace_id == workspace_id))
        )
    ).first()
    if limiter is None:
        return [], 0.0
    elapsed = max(0, now - limiter.refilled_at) / 1000.0
    tokens = min(limiter.burst, limiter.tokens + elapsed * limiter.calls_per_second)
    n = min(max_n, math.floor(tokens), limiter.max_active - limiter.active)
    claimed: list[Claimed] = []
    if n > 0:
        claimed = await _claim_fairly(conn, workspace_id, owner, n, now, lease_ms)
    await conn.execute(
        workspace_limiter.update()
        .where(lim.workspace_id == workspace_id)
        .values(
            tokens=tokens - len(claimed),
            refilled_at=now,
            active=lim.active + len(claimed),
        )
    )
    return claimed, float(limiter.calls_per_second)


async def _claim_fairly(
    conn: AsyncConnection, workspace_id: str, owner: str, n: int, now: int, lease_ms: int
) -> list[Claimed]:
    """Share `n` between the workspace's runnable batches, least recently served first."""
    b = batches.c
    runnable = (
        await conn.execute(
            sa.select(b.id, b.agent_id)
            .where(
                b.workspace_id == workspace_id,
                b.status.in_(RUNNING_BATCH_STATES),
                b.scheduled_at <= now,
            )
            .order_by(b.last_claimed_at, b.created_at)
        )
    ).all()
    if not runnable:
        return []
    fair_share = max(1, math.ceil(n / len(runnable)))
    claimed: list[Claimed] = []
    for share_pass in (fair_share, n):
        for batch_id, agent_id in runnable:
            want = min(share_pass, n - len(claimed))
            if want <= 0:
                break
            claimed.extend(
                await _claim_from_batch(
                    conn, batch_id, agent_id, workspace_id, owner, want, now, lease_ms
                )
            )
        if len(claimed) >= n:
            break
    served = Counter(c.batch_id for c in claimed)
    for batch_id, k in served.items():
        await counters.move(conn, batch_id, {CallState.WAITING: -k, CallState.CLAIMED: k})
        await conn.execute(
            batches.update()
            .where(b.id == batch_id)
            .values(
                last_claimed_at=now,
                status=sa.case(
                    (b.status == BatchState.QUEUED.value, BatchState.PROCESSING.value),
                    else_=b.status,
                ),
                started_at=sa.func.coalesce(b.started_at, now),
            )
        )
    return claimed


async def _claim_from_batch(
    conn: AsyncConnection,
    batch_id: str,
    agent_id: str,
    workspace_id: str,
    owner: str,
    want: int,
    now: int,
    lease_ms: int,
) -> list[Claimed]:
    c = calls.c
    due = (
        sa.select(c.id)
        .where(
            c.batch_id == batch_id,
            # Inlined, not bound: a generic (prepared) plan must see `status = 'waiting'` to
            # prove ix_calls_due's predicate; tests/store/test_claim_plan.py checks it.
            c.status == sa.literal(CallState.WAITING.value, literal_execute=True),
            c.next_attempt_at <= now,
        )
        .order_by(c.next_attempt_at, c.id)
        .limit(want)
    )
    ids = [r[0] for r in await conn.execute(for_update(conn, due, skip_locked=True))]
    if not ids:
        return []
    rows = await conn.execute(
        calls.update()
        .where(c.id.in_(ids), c.status == CallState.WAITING.value)
        .values(
            status=CallState.CLAIMED.value,
            lease_owner=owner,
            lease_token=c.lease_token + 1,
            lease_expires=now + lease_ms,
        )
        .returning(c.id, c.seq, c.phone_number, c.metadata, c.lease_token)
    )
    return [
        Claimed(
            call_id=r.id,
            batch_id=batch_id,
            workspace_id=workspace_id,
            agent_id=agent_id,
            seq=r.seq,
            phone_number=r.phone_number,
            metadata=r.metadata,
            lease_token=r.lease_token,
        )
        for r in sorted(rows, key=lambda r: r.seq)
    ]


def _holds_claim(call: Claimed, owner: str) -> tuple[sa.ColumnElement[bool], ...]:
    """The call is still claimed by `owner` under the same fencing token."""
    c = calls.c
    return (
        c.id == call.call_id,
        c.status == CallState.CLAIMED.value,
        c.lease_token == call.lease_token,
        c.lease_owner == owner,
    )


async def begin_dial(
    conn: AsyncConnection, call: Claimed, owner: str, provider: str, lease_ms: int
) -> Intent | None:
    """claimed -> dialing, only if our lease still holds and the batch still runs.

    None means: do not dial (the batch was cancelled, or the lease was lost and the call
    belongs to someone else now).
    """
    now = await db_now_ms(conn)
    c = calls.c
    running = sa.select(batches.c.id).where(
        batches.c.id == call.batch_id, batches.c.status.in_(RUNNING_BATCH_STATES)
    )
    row = (
        await conn.execute(
            calls.update()
            .where(*_holds_claim(call, owner), sa.exists(running))
            .values(
                status=CallState.DIALING.value,
                attempt=c.attempt + 1,
                started_at=now,
                ended_at=None,
                duration_s=None,
                lease_expires=now + lease_ms,
            )
            .returning(c.attempt)
        )
    ).first()
    if row is None:
        return None
    key = dial_key(call.batch_id, call.seq, row.attempt)
    await conn.execute(
        attempts.insert().values(
            call_id=call.call_id,
            n=row.attempt,
            dial_key=key,
            provider=provider,
            state="dialing",
            started_at=now,
        )
    )
    await counters.move(conn, call.batch_id, {CallState.CLAIMED: -1, CallState.DIALING: 1})
    return Intent(call=call, attempt=row.attempt, dial_key=key)


async def release_claim(conn: AsyncConnection, call: Claimed, owner: str) -> bool:
    """Give back a claim we will not dial (shutting down): claimed -> waiting, at once."""
    result = await conn.execute(
        calls.update()
        .where(*_holds_claim(call, owner))
        .values(status=CallState.WAITING.value, lease_owner=None, lease_expires=None)
    )
    if not result.rowcount:
        return False
    await release_slots(conn, call.workspace_id, 1)
    await counters.move(conn, call.batch_id, {CallState.CLAIMED: -1, CallState.WAITING: 1})
    return True


async def record_placed(conn: AsyncConnection, key: str, provider_call_id: str) -> None:
    """Remember the provider's id for a dial (used for reconciliation and callbacks)."""
    att = (
        await conn.execute(
            attempts.update()
            .where(attempts.c.dial_key == key, attempts.c.provider_call_id.is_(None))
            .values(provider_call_id=provider_call_id)
            .returning(attempts.c.call_id, attempts.c.n)
        )
    ).first()
    if att is None:
        return
    c = calls.c
    await conn.execute(
        calls.update()
        .where(
            c.id == att.call_id,
            c.attempt == att.n,
            c.status.in_([CallState.DIALING.value, CallState.UNKNOWN.value]),
        )
        .values(provider_call_id=provider_call_id)
    )


@dataclass(frozen=True)
class RetryConfig:
    connection_attempts: int = 3
    backoff_base_ms: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryConfig:
        return cls(
            connection_attempts=settings.connection_attempts,
            backoff_base_ms=settings.retry_backoff_ms,
        )


@dataclass(frozen=True)
class Applied:
    """What applying an event did; `changed` is False for duplicates and late events."""

    changed: bool
    batch_id: str | None = None
    status: CallState | None = None
    workspace_id: str | None = None


async def apply_outcome(
    conn: AsyncConnection,
    event: CallEvent,
    retry: RetryConfig,
    *,
    final_error: str | None = None,
) -> Applied:
    """Apply the end of a dial; forward-only, so duplicates and late events are harmless.

    `final_error` forces a final failure (an attempt whose fate cannot be learned).
    """
    att = await _find_attempt(conn, event)
    if att is None or att.ended_at is not None:
        return Applied(changed=False)
    now = await db_now_ms(conn)
    ended_at = event.ended_at or now
    await conn.execute(
        attempts.update()
        .where(attempts.c.id == att.id, attempts.c.ended_at.is_(None))
        .values(
            state="ended",
            ended_at=ended_at,
            outcome=event.outcome.value,
            provider_code=event.provider_code,
            duration_s=event.duration_s,
            provider_call_id=sa.func.coalesce(attempts.c.provider_call_id, event.provider_call_id),
        )
    )
    c = calls.c
    b = batches.c
    call = (
        await conn.execute(
            for_update(
                conn,
                sa.select(
                    c.id,
                    c.batch_id,
                    c.workspace_id,
                    c.seq,
                    c.status,
                    c.attempt,
                    c.connection_failures,
                    c.unreached,
                    c.phone_number,
                    c.metadata,
                    c.result,
                    b.callback_policy,
                    b.status.label("batch_status"),
                )
                .join(batches, b.id == c.batch_id)
                .where(c.id == att.call_id),
                of=calls,
            )
        )
    ).first()
    live = (CallState.DIALING.value, CallState.UNKNOWN.value)
    if call is None or call.attempt != att.n or call.status not in live:
        return Applied(changed=False)
    old = CallState(call.status)
    is_conn = event.outcome is Outcome.FAILED
    is_unreached = event.outcome in (Outcome.BUSY, Outcome.NO_ANSWER, Outcome.VOICEMAIL)
    history = AttemptHistory(
        connection_failures=call.connection_failures + 1 if is_conn else 0,
        unreached=call.unreached + (1 if is_unreached else 0),
        dials=call.attempt,
    )
    decision = decide(
        event.outcome,
        history,
        parse_callback_policy(call.callback_policy),
        connection_attempts=retry.connection_attempts,
        backoff_base_ms=retry.backoff_base_ms,
        detail=event.detail,
    )
    values: dict[str, Any] = {
        "connection_failures": history.connection_failures,
        "unreached": history.unreached,
        "lease_owner": None,
        "lease_expires": None,
        "ended_at": ended_at,
    }
    duration = 0.0
    if final_error is not None:
        new = CallState.FAILED
        values.update(error=final_error)
    elif not decision.final and call.batch_status in RUNNING_BATCH_STATES:
        new = CallState.WAITING
        values.update(next_attempt_at=now + decision.retry_after_ms, error=None)
    elif not decision.final:
        # The batch was cancelled while this call was live: it ran to its end, and it is
        # not tried again (a waiting call in a cancelled batch would never finish).
        new = CallState.FAILED
        reason = event.detail or OUTCOME_RULES[event.outcome].message
        values.update(error=f"{reason} - not retried: batch {call.batch_status}")
    elif event.outcome is Outcome.COMPLETED:
        new = CallState.COMPLETED
        duration = float(event.duration_s or 0.0)
        values.update(duration_s=duration, error=None, result=_result(call, event))
    else:
        new = CallState.FAILED
        values.update(error=decision.error, duration_s=event.duration_s)
    values["status"] = new.value
    await conn.execute(
        calls.update()
        .where(c.id == call.id, c.status == old.value, c.attempt == att.n)
        .values(**values)
    )
    await release_slots(conn, call.workspace_id, 1)
    await counters.move(
        conn, call.batch_id, {old: -1, new: 1}, duration_s=duration, last_at=ended_at
    )
    if new in (CallState.COMPLETED, CallState.FAILED):
        await outbox.emit(
            conn,
            call.workspace_id,
            f"call.{new.value}",
            {"batchId": call.batch_id, "jobId": job_id(call.batch_id, call.seq), "attempt": att.n},
        )
        await mark_done_if_drained(conn, call.batch_id)
    return Applied(changed=True, batch_id=call.batch_id, status=new, workspace_id=call.workspace_id)


def _result(call: Any, event: CallEvent) -> dict[str, Any]:
    result: dict[str, Any] = {
        "callId": event.provider_call_id,
        "transcript": "",
        "outcome": "successful",
        "metadata": json.loads(call.metadata),
    }
    if event.result:
        result.update(event.result)
    # The agent may have reported first (store/results.py): its fields stay.
    result.update(agent_fields(call.result))
    return result


def attempt_match(
    dial_key: str | None, provider_call_id: str | None
) -> sa.ColumnElement[bool] | None:
    """Which attempt a provider's report is about: by our dial key, else by the provider's
    call id (providers that cannot echo our key back); None if it names neither."""
    a = attempts.c
    if dial_key:
        return a.dial_key == dial_key
    if provider_call_id:
        return a.provider_call_id == provider_call_id
    return None


async def _find_attempt(conn: AsyncConnection, event: CallEvent) -> Any:
    cond = attempt_match(event.dial_key, event.provider_call_id)
    if cond is None:
        return None
    a = attempts.c
    return (await conn.execute(sa.select(a.id, a.call_id, a.n, a.ended_at).where(cond))).first()


async def expire_claims(conn: AsyncConnection) -> int:
    """Claimed calls whose worker vanished go back to waiting: nothing was dialed."""
    now = await db_now_ms(conn)
    c = calls.c
    rows = (
        await conn.execute(
            calls.update()
            .where(c.status == CallState.CLAIMED.value, c.lease_expires < now)
            .values(status=CallState.WAITING.value, lease_owner=None, lease_expires=None)
            .returning(c.batch_id, c.workspace_id)
        )
    ).all()
    for (batch_id, workspace_id), k in Counter((r[0], r[1]) for r in rows).items():
        await release_slots(conn, workspace_id, k)
        await counters.move(conn, batch_id, {CallState.CLAIMED: -k, CallState.WAITING: k})
    return len(rows)


@dataclass(frozen=True)
class Uncertain:
    """A dial whose worker stopped following it: to be reconciled with the provider."""

    call_id: int
    batch_id: str
    workspace_id: str
    agent_id: str
    dial_key: str
    provider_call_id: str | None


async def expire_dials(conn: AsyncConnection, owner: str, lease_ms: int) -> list[Uncertain]:
    """Dials nobody follows any more (lease expired) -> unknown, leased to `owner`, who
    must reconcile them with the provider. Unknown ones whose reconciler vanished too are
    taken over the same way."""
    now = await db_now_ms(conn)
    c = calls.c
    found: list[sa.Row[Any]] = []
    for state in (CallState.DIALING, CallState.UNKNOWN):
        rows = (
            await conn.execute(
                calls.update()
                .where(c.status == state.value, c.lease_expires < now)
                .values(
                    status=CallState.UNKNOWN.value,
                    lease_owner=owner,
                    lease_expires=now + lease_ms,
                )
                .returning(c.id, c.batch_id, c.workspace_id, c.seq, c.attempt, c.provider_call_id)
            )
        ).all()
        if state is CallState.DIALING:
            for batch_id, k in Counter(r.batch_id for r in rows).items():
                await counters.move(conn, batch_id, {CallState.DIALING: -k, CallState.UNKNOWN: k})
        found.extend(rows)
    if not found:
        return []
    agent_of = dict(
        (
            await conn.execute(
                sa.select(batches.c.id, batches.c.agent_id).where(
                    batches.c.id.in_({r.batch_id for r in found})
                )
            )
        ).all()
    )
    return [
        Uncertain(
            call_id=r.id,
            batch_id=r.batch_id,
            workspace_id=r.workspace_id,
            agent_id=agent_of[r.batch_id],
            dial_key=dial_key(r.batch_id, r.seq, r.attempt),
            provider_call_id=r.provider_call_id,
        )
        for r in found
    ]


async def resume_following(conn: AsyncConnection, call_id: int, owner: str, lease_ms: int) -> None:
    """The provider says the call is still live: unknown -> dialing, followed by `owner`."""
    now = await db_now_ms(conn)
    c = calls.c
    row = (
        await conn.execute(
            calls.update()
            .where(c.id == call_id, c.status == CallState.UNKNOWN.value)
            .values(status=CallState.DIALING.value, lease_owner=owner, lease_expires=now + lease_ms)
            .returning(c.batch_id, c.attempt)
        )
    ).first()
    if row is not None:
        await conn.execute(
            attempts.update()
            .where(attempts.c.call_id == call_id, attempts.c.n == row.attempt)
            .values(heard_at=now)  # its stage (ringing, answered) stays as it was
        )
        await counters.move(conn, row.batch_id, {CallState.UNKNOWN: -1, CallState.DIALING: 1})


async def renew_dial_leases(conn: AsyncConnection, owner: str, lease_ms: int) -> int:
    """Keep following our live calls: one statement for all of them."""
    now = await db_now_ms(conn)
    c = calls.c
    result = await conn.execute(
        calls.update()
        .where(
            c.lease_expires.is_not(None),  # through ix_calls_leases, not a table scan
            c.lease_owner == owner,
            c.status == CallState.DIALING.value,
        )
        .values(lease_expires=now + lease_ms)
    )
    return int(result.rowcount or 0)


async def close_drained_batches(conn: AsyncConnection) -> int:
    """Catch batches whose last transitions raced each other's completion check."""
    rows = await conn.execute(
        sa.select(batches.c.id).where(
            batches.c.completed_at.is_(None),
            batches.c.status.in_([*RUNNING_BATCH_STATES, BatchState.CANCELLED.value]),
            batches.c.started_at.is_not(None) | (batches.c.status == BatchState.CANCELLED.value),
        )
    )
    closed = 0
    for (batch_id,) in rows.all():
        closed += await mark_done_if_drained(conn, batch_id)
    return closed
