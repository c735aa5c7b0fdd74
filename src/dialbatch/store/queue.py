"""The queue protocol of DESIGN.md §4: claim -> intent -> (dial) -> outcome, and recovery.

Outcomes are applied through events/apply.py (the one entry point), which writes them
with store/outcomes.py.

Claiming is safe to redo; dialing is not. So the intent to dial commits on its own,
fenced by the lease token, before any provider is asked, and a call whose fate became
uncertain is reconciled rather than dialed again.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain import batch_limits, caller_pool
from dialbatch.domain.caller_pool import CallerPool
from dialbatch.domain.caps import MONTH_MS, NO_CAPS, Caps, next_allowed_at
from dialbatch.domain.caps import allowed as caps_allowed
from dialbatch.domain.clock import Clock
from dialbatch.domain.compliance import CapRule, Policy, combined_caps, region_for
from dialbatch.domain.ids import dial_key, job_id
from dialbatch.domain.states import (
    ACTIVE_CALL_STATES,
    RUNNING_BATCH_STATES,
    BatchState,
    CallState,
)
from dialbatch.store import (
    caller_dials,
    counters,
    gate_log,
    gating,
    number_dials,
    outbox,
    suppressions,
)
from dialbatch.store._dialect import (
    db_now_ms,
    for_update,
    in_list,
    lock_numbers,
    takes_row_locks,
)
from dialbatch.store._prepared import Prepared, one_of, run
from dialbatch.store.batches import mark_done_if_drained, release_slots
from dialbatch.store.pauses import is_paused, may_dial
from dialbatch.store.tables import attempts, batch_counters, batches, calls, workspace_limiter


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
    timezone: str | None = None  # the recipient's own zone from the upload, for the gate

    @property
    def job_id(self) -> str:
        return job_id(self.batch_id, self.seq)


@dataclass(frozen=True)
class GateHold:
    """The gate held a claimed call back: due again at `until`, and why (the audit record)."""

    until: int
    decision: dict[str, Any]


@dataclass(frozen=True)
class Intent:
    """A dial made durable: the provider may now be asked, with `dial_key` as idempotency key."""

    call: Claimed
    attempt: int
    dial_key: str
    # The caller number the dial shows (the pool's choice, or the one the caller gave);
    # None: the agent has none.
    from_number: str | None = None
    # Whether the caller numbers' ledger holds this dial in flight: the dialer then tells
    # it when the provider has answered (caller_dials.answered), and the number's
    # per-second limit counts the dial from that answer.
    in_caller_ledger: bool = False


async def runnable_workspaces(conn: AsyncConnection) -> list[str]:
    now = await db_now_ms(conn)
    return [r[0] for r in await run(conn, _RUNNABLE_WORKSPACES, {"_now": now})]


_RUNNING = sorted(RUNNING_BATCH_STATES)
_RUNNABLE_WORKSPACES = Prepared(
    "runnable_workspaces",
    lambda conn: (
        sa.select(batches.c.workspace_id)
        .where(
            one_of(batches.c.status, _RUNNING),
            batches.c.scheduled_at <= sa.bindparam("_now"),
            may_dial(),
        )
        .distinct()
    ),
)


# Lock order, in every transaction that waits for more than one of these: call rows (by
# id), the workspace's limiter row, counter rows (by batch, then status), the batch row.
# The claim locks the limiter first but takes call rows only with SKIP LOCKED, never
# waiting for one. PostgreSQL detects the deadlocks any other order produces (measured).


# How far ahead a claim takes calls: those whose start falls within the next second.
CLAIM_HORIZON_MS = 1000.0


@dataclass(frozen=True)
class Pace:
    """When a claimed group's calls may start, on the database's clock: call i of the group
    at `first_start_ms + i * interval_ms`."""

    now_ms: int
    first_start_ms: float
    interval_ms: float

    def delay_s(self, i: int) -> float:
        """Seconds from the claim until call i may start."""
        return (self.first_start_ms + i * self.interval_ms - self.now_ms) / 1000.0


async def claim(
    conn: AsyncConnection,
    workspace_id: str,
    owner: str,
    max_n: int,
    lease_ms: int,
    *,
    clock: Clock | None = None,
    on_hold: gating.OnHold | None = None,
) -> tuple[list[Claimed], Pace]:
    """Claim up to `max_n` due calls of the workspace within its rate and concurrency budget.

    Returns the claimed calls and when each may start. The rate is a schedule shared by
    every worker on every host (GCRA): the limiter row, locked for the whole transaction,
    holds the start time of the next call; a claim takes the calls whose starts fall within
    CLAIM_HORIZON_MS and moves it on by 1/calls_per_second each. So calls start exactly
    evenly, with no burst after an idle spell and none when a second worker joins.

    A call outside its batch's calling window is not claimed: its due time moves to the
    window's next opening (store/gating.py), read on `clock` (default: the database's),
    the decision recorded on it and reported to `on_hold`.
    """
    now = await db_now_ms(conn)
    found = await run(conn, _LIMITER, {"_ws": workspace_id})
    limiter = found[0] if found else None
    if limiter is None or limiter.calls_per_second <= 0:
        return [], Pace(now, float(now), 0.0)
    interval = 1000.0 / limiter.calls_per_second
    start = max(float(now), limiter.next_start_at)
    by_rate = math.ceil((now + CLAIM_HORIZON_MS - start) / interval)
    n = min(max_n, by_rate, limiter.max_active - limiter.active)
    pace = Pace(now, start, interval)
    if n <= 0:
        return [], pace
    gate_now = clock.now_ms() if clock is not None else now
    claimed = await _claim_fairly(
        conn, workspace_id, owner, n, now, lease_ms, gate_now, on_hold=on_hold
    )
    if claimed:
        await run(
            conn,
            _TAKE_SLOTS,
            {"_ws": workspace_id, "_next": start + len(claimed) * interval, "_k": len(claimed)},
        )
    return claimed, pace


_LIMITER = Prepared(
    "limiter",
    lambda conn: for_update(
        conn,
        sa.select(workspace_limiter).where(workspace_limiter.c.workspace_id == sa.bindparam("_ws")),
    ),
)
_TAKE_SLOTS = Prepared(
    "limiter_take",
    lambda conn: (
        workspace_limiter.update()
        .where(workspace_limiter.c.workspace_id == sa.bindparam("_ws"))
        .values(
            next_start_at=sa.bindparam("_next", type_=sa.Float),
            active=workspace_limiter.c.active + sa.bindparam("_k", type_=sa.Integer),
        )
    ),
)


async def _claim_fairly(
    conn: AsyncConnection,
    workspace_id: str,
    owner: str,
    n: int,
    now: int,
    lease_ms: int,
    gate_now: int,
    *,
    on_hold: gating.OnHold | None = None,
) -> list[Claimed]:
    """Share `n` between the workspace's runnable batches: higher priorities first, and
    within one priority fairly, least recently served first. A batch with its own
    `max_concurrency` gets no more than its room (domain/batch_limits.py)."""
    runnable = await run(conn, _RUNNABLE_BATCHES, {"_ws": workspace_id, "_now": now})
    if not runnable:
        return []
    policies = {row.id: gating.policy_of(row) for row in runnable}
    by_id = {r.id: r for r in runnable}
    live = await _live_calls(conn, [r.id for r in runnable if r.max_concurrency is not None])
    order = batch_limits.service_order(
        [
            batch_limits.Runnable(
                r.id,
                r.priority,
                None if r.max_concurrency is None else r.max_concurrency - live.get(r.id, 0),
            )
            for r in runnable
        ]
    )
    claimed: list[Claimed] = []
    taken: Counter[str] = Counter()
    for group in order:
        left = n - len(claimed)
        if left <= 0:
            break
        fair_share = max(1, math.ceil(left / len(group)))
        for share_pass in (fair_share, left):
            for entry in group:
                want = min(share_pass, n - len(claimed))
                if entry.room is not None:
                    want = min(want, entry.room - taken[entry.batch_id])
                if want <= 0:
                    continue
                row = by_id[entry.batch_id]
                policy = policies[row.id]
                gate = None if policy is None else (policy, gate_now)
                got = await _claim_from_batch(
                    conn,
                    row.id,
                    row.agent_id,
                    workspace_id,
                    owner,
                    want,
                    now,
                    lease_ms,
                    gate,
                    on_hold=on_hold,
                )
                taken[row.id] += len(got)
                claimed.extend(got)
            if len(claimed) >= n:
                break
    served = Counter(c.batch_id for c in claimed)
    # The claims of a workspace queue on its limiter row, so one claim alone sees each
    # batch leave `queued`.
    started = sorted(r.id for r in runnable if r.status == BatchState.QUEUED and r.id in served)
    await outbox.emit_many(
        conn,
        [
            (
                workspace_id,
                "batch.started",
                {"batchId": b_id, "status": BatchState.PROCESSING.value},
            )
            for b_id in started
        ],
    )
    for batch_id, k in served.items():
        await counters.move(conn, batch_id, {CallState.WAITING: -k, CallState.CLAIMED: k})
        await run(conn, _SERVED, {"_id": batch_id, "_now": now})
    return claimed


_RUNNABLE_BATCHES = Prepared(
    "runnable_batches",
    lambda conn: (
        sa.select(
            batches.c.id,
            batches.c.agent_id,
            batches.c.status,
            batches.c.priority,
            batches.c.max_concurrency,
            *gating.gate_columns(),
        )
        .select_from(gating.with_workspace())
        .where(
            batches.c.workspace_id == sa.bindparam("_ws"),
            one_of(batches.c.status, _RUNNING),
            batches.c.scheduled_at <= sa.bindparam("_now"),
            may_dial(),  # paused batches (or workspace) are skipped
        )
        .order_by(batches.c.last_claimed_at, batches.c.created_at)
    ),
)
_SERVED = Prepared(
    "batch_served",
    lambda conn: (
        batches.update()
        .where(batches.c.id == sa.bindparam("_id"))
        .values(
            last_claimed_at=sa.bindparam("_now", type_=sa.BigInteger),
            status=sa.case(
                (batches.c.status == BatchState.QUEUED.value, BatchState.PROCESSING.value),
                else_=batches.c.status,
            ),
            started_at=sa.func.coalesce(
                batches.c.started_at, sa.bindparam("_now", type_=sa.BigInteger)
            ),
        )
    ),
)


async def _live_calls(conn: AsyncConnection, batch_ids: list[str]) -> dict[str, int]:
    """Each batch's calls that hold a slot now (claimed, dialing, unknown), from its
    counters. Read under the workspace's limiter lock: only a claim, which holds that lock,
    makes a call live, so the count cannot grow before this claim commits (it may shrink,
    which errs on the safe side)."""
    if not batch_ids:
        return {}
    c = batch_counters.c
    rows = await conn.execute(
        sa.select(c.batch_id, sa.func.sum(c.n))
        .where(c.batch_id.in_(batch_ids), c.status.in_([s.value for s in ACTIVE_CALL_STATES]))
        .group_by(c.batch_id)
    )
    return {batch_id: int(k or 0) for batch_id, k in rows}


# A claim of a windowed batch looks at most this many times for calls inside their window,
# moving those outside it to their next opening each time.
_WINDOW_ROUNDS = 4


async def _claim_from_batch(
    conn: AsyncConnection,
    batch_id: str,
    agent_id: str,
    workspace_id: str,
    owner: str,
    want: int,
    now: int,
    lease_ms: int,
    gate: tuple[Policy, int] | None = None,
    *,
    on_hold: gating.OnHold | None = None,
) -> list[Claimed]:
    """Claim up to `want` due calls of one batch; with `gate` (its window's policy and the
    gate's "now"), only calls inside their window, the others deferred to its next opening."""
    claimed: list[Claimed] = []
    for _ in range(_WINDOW_ROUNDS if gate is not None else 1):
        asked = want - len(claimed)
        due = await _due(conn, batch_id, asked, now, with_phone=gate is not None)
        if not due:
            break
        ids = [r.id for r in due]
        if gate is not None:
            ids = await gating.defer_closed(conn, gate[0], due, gate[1], on_hold=on_hold)
        if ids:
            claimed += await _claim_ids(
                conn, ids, batch_id, agent_id, workspace_id, owner, now, lease_ms
            )
        if len(due) < asked or len(claimed) >= want:
            break
    return claimed


async def _due(
    conn: AsyncConnection, batch_id: str, limit: int, now: int, *, with_phone: bool
) -> list[Any]:
    """The batch's first `limit` due waiting calls that nobody else holds, locked."""
    return await run(
        conn,
        _DUE_WITH_PHONE if with_phone else _DUE,
        {"_batch": batch_id, "_now": now, "_limit": limit},
    )


def _build_due(with_phone: bool) -> Prepared:
    c = calls.c
    return Prepared(
        "due_with_phone" if with_phone else "due",
        lambda conn: for_update(
            conn,
            sa.select(c.id, *([c.phone_number, c.timezone, c.attempt] if with_phone else []))
            .where(
                c.batch_id == sa.bindparam("_batch"),
                # Inlined, not bound: a generic (prepared) plan must see `status = 'waiting'`
                # to prove ix_calls_due's predicate; tests/store/test_claim_plan.py checks it.
                one_of(c.status, [CallState.WAITING.value]),
                c.next_attempt_at <= sa.bindparam("_now", type_=sa.BigInteger),
            )
            .order_by(c.next_attempt_at, c.id)
            .limit(sa.bindparam("_limit", type_=sa.Integer)),
            skip_locked=True,
        ),
    )


_DUE = _build_due(False)
_DUE_WITH_PHONE = _build_due(True)


async def _claim_ids(
    conn: AsyncConnection,
    ids: list[int],
    batch_id: str,
    agent_id: str,
    workspace_id: str,
    owner: str,
    now: int,
    lease_ms: int,
) -> list[Claimed]:
    rows = await run(
        conn, _CLAIM_IDS, {"_ids": sorted(ids), "_owner": owner, "_expires": now + lease_ms}
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
            timezone=r.timezone,
        )
        for r in sorted(rows, key=lambda r: r.seq)
    ]


_CLAIM_IDS = Prepared(
    "claim_ids",
    lambda conn: (
        calls.update()
        .where(in_list(conn, calls.c.id, "_ids"), calls.c.status == CallState.WAITING.value)
        .values(
            status=CallState.CLAIMED.value,
            lease_owner=sa.bindparam("_owner"),
            lease_token=calls.c.lease_token + 1,
            lease_expires=sa.bindparam("_expires", type_=sa.BigInteger),
            gate_hold=None,  # the hold is over; gate_decision stays, the last word
        )
        .returning(
            calls.c.id,
            calls.c.seq,
            calls.c.phone_number,
            calls.c.metadata,
            calls.c.lease_token,
            calls.c.timezone,
        )
    ),
)


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
    """claimed -> dialing for one call; see `begin_dials`."""
    intents = await begin_dials(conn, [(call, provider)], owner, lease_ms)
    return intents[0] if intents else None


async def begin_dials(
    conn: AsyncConnection,
    group: Sequence[tuple[Claimed, str]],
    owner: str,
    lease_ms: int,
    from_numbers: Mapping[int, str | None] | None = None,
    *,
    clock: Clock | None = None,
    dial_lead_ms: int = gating.DIAL_LEAD_MS,
    on_hold: gating.OnHold | None = None,
    pools: Mapping[int, CallerPool] | None = None,
) -> list[Intent]:
    """claimed -> dialing for each (call, provider name) whose lease we still hold and whose
    batch still runs and is not paused; the others must not be dialed (the batch was
    cancelled or paused, or the lease was lost and the call belongs to someone else now). A
    claim of a paused batch goes back to waiting. One statement of each kind for the whole
    group: the intents of a claimed group commit together, before any dial.

    `from_numbers` (by call id) is the caller number each dial will use, kept on its
    attempt row so that the call's attempt history names it. With `pools` (by call id: its
    agent's caller numbers), the pool's rule chooses instead (domain/caller_pool.py), after
    the gate and the caps, counting the caller numbers' ledger under their locks: a call
    whose number is busy (its own calls-per-second or daily limit) goes back to waiting
    until it frees, not failed. The choice is on the intent (`Intent.from_number`).

    The gate is asked again here, immediately before the dial, on `clock` (default: the
    database's): a call whose window would close within `dial_lead_ms` goes back to waiting
    until its next opening, and one the gate refuses ends failed (store/gating.py). Every
    hold and refusal is recorded on its call and reported to `on_hold`.
    """
    if not group:
        return []
    now = await db_now_ms(conn)
    by_id = {call.call_id: (call, provider) for call, provider in group}
    await lock_calls(conn, sorted(by_id))  # in id order, as every writer of calls takes them
    # The gate's last word, in the same transaction as the intent, in its order (suppression,
    # window, caps; docs/compliance.md): a number suppressed since its batch was uploaded
    # (or opted out by the agent a moment ago) is never dialed.
    blocked = await suppressions.matching(
        conn, {(call.workspace_id, call.phone_number) for call, _ in group}, now
    )
    refused_now = [call for call, _ in group if (call.workspace_id, call.phone_number) in blocked]
    open_calls = [c for c, _ in group if (c.workspace_id, c.phone_number) not in blocked]
    policies = await gating.policies_of(conn, {call.batch_id for call in open_calls})
    held = gating.hold_back(
        policies,
        [(call.call_id, call.batch_id, call.phone_number, call.timezone) for call in open_calls],
        clock.now_ms() if clock is not None else now,
        dial_lead_ms,
    )
    ids = sorted(call.call_id for call in open_calls if call.call_id not in held)
    capped = await _check_caps(conn, [by_id[i][0] for i in ids], now, policies)
    ids = [i for i in ids if i not in capped]
    chosen, pool_waits = await _choose_caller_numbers(
        conn, [by_id[i][0] for i in ids], pools or {}, from_numbers or {}, now
    )
    ids = [i for i in ids if i not in pool_waits]
    rows: Sequence[Any] = []
    if ids:
        rows = await run(
            conn,
            _BEGIN_DIALS,
            {
                "_ids": ids,
                "_claims": [_claim_key(i, by_id[i][0].lease_token) for i in ids],
                "_batches": sorted({call.batch_id for call, _ in group}),
                "_owner": owner,
                "_now": now,
                "_expires": now + lease_ms,
            },
        )
    granted: dict[int, int] = {r.id: r.attempt for r in rows}
    ledgered = {call_id for call_id, pool in (pools or {}).items() if pool.needs_ledger()}
    intents = [
        Intent(
            call=call,
            attempt=granted[call.call_id],
            dial_key=_key(call, granted),
            from_number=chosen.get(call.call_id),
            in_caller_ledger=call.call_id in ledgered and chosen.get(call.call_id) is not None,
        )
        for call, _ in group
        if call.call_id in granted
    ]
    if intents:
        await outbox.emit_many(
            conn,
            [
                (
                    i.call.workspace_id,
                    "call.started",
                    {
                        "batchId": i.call.batch_id,
                        "jobId": i.call.job_id,
                        "status": "active",
                        "attempt": i.attempt,
                    },
                )
                for i in intents
            ],
        )
        await run(
            conn,
            _INSERT_ATTEMPTS,
            [
                {
                    "call_id": i.call.call_id,
                    "n": i.attempt,
                    "dial_key": i.dial_key,
                    "provider": by_id[i.call.call_id][1],
                    "state": "dialing",
                    "started_at": now,
                    "from_number": i.from_number,
                    "batch_id": i.call.batch_id,
                }
                for i in intents
            ],
        )
        await number_dials.record(
            conn, [(i.dial_key, i.call.workspace_id, i.call.phone_number, now) for i in intents]
        )
        await caller_dials.record(
            conn,
            [
                (i.call.workspace_id, i.from_number, now, i.dial_key)
                for i in intents
                if i.in_caller_ledger and i.from_number is not None
            ],
        )
    refused = [by_id[i][0] for i in ids if i not in granted]
    ended = await _cancel_refused(conn, refused, owner, now) if refused else []
    if len(ended) < len(refused):
        ended += await _unclaim_paused(conn, refused, owner)
    if refused_now:
        ended += await _fail_suppressed(conn, refused_now, blocked, owner, now, on_hold)
    if held:
        ended += await gating.end_held_claims(
            conn,
            [(sa.and_(*_holds_claim(by_id[i][0], owner)), d) for i, d in sorted(held.items())],
            now,
            on_hold=on_hold,
        )
    if capped:
        ended += await _defer_capped(
            conn, [by_id[i][0] for i in capped], capped, owner, now, on_hold
        )
    if pool_waits:
        ended += await _wait_for_caller_number(
            conn, [by_id[i][0] for i in sorted(pool_waits)], pool_waits, owner
        )
    per_batch = Counter(i.call.batch_id for i in intents)
    await _end_claims(
        conn,
        ended,
        [
            counters.Move(b, {CallState.CLAIMED: -k, CallState.DIALING: k})
            for b, k in per_batch.items()
        ],
    )
    return intents


def _claim_key(call_id: int, lease_token: int) -> str:
    """A claim as one value, for `_BEGIN_DIALS`'s list: the call and its fencing token."""
    return f"{call_id}:{lease_token}"


def _build_begin_dials(conn: AsyncConnection) -> Any:
    c = calls.c
    running = sa.select(batches.c.id).where(
        in_list(conn, batches.c.id, "_batches"), one_of(batches.c.status, _RUNNING), may_dial()
    )
    claim_key = sa.cast(c.id, sa.String) + ":" + sa.cast(c.lease_token, sa.String)
    return (
        calls.update()
        .where(
            in_list(conn, c.id, "_ids"),  # the primary key finds the rows
            in_list(conn, claim_key, "_claims"),  # each under the token we hold
            c.status == CallState.CLAIMED.value,
            c.lease_owner == sa.bindparam("_owner"),
            c.batch_id.in_(running),
        )
        .values(
            status=CallState.DIALING.value,
            attempt=c.attempt + 1,
            started_at=sa.bindparam("_now", type_=sa.BigInteger),
            ended_at=None,
            duration_s=None,
            lease_expires=sa.bindparam("_expires", type_=sa.BigInteger),
        )
        .returning(c.id, c.attempt)
    )


_BEGIN_DIALS = Prepared("begin_dials", _build_begin_dials)
_INSERT_ATTEMPTS = Prepared(
    "attempts_insert",
    lambda conn: attempts.insert(),
    keys=(
        "call_id",
        "n",
        "dial_key",
        "provider",
        "state",
        "started_at",
        "from_number",
        "batch_id",
    ),
)


async def _cancel_refused(
    conn: AsyncConnection, refused: list[Claimed], owner: str, now: int
) -> list[Any]:
    """Claims we still hold in a cancelled batch end here, cancelled: a claim that committed
    just after the cancel's sweep of claimed calls would otherwise outlive it."""
    c = calls.c
    cancelled = sa.select(batches.c.id).where(
        batches.c.id.in_({call.batch_id for call in refused}),
        batches.c.status == BatchState.CANCELLED.value,
    )
    rows = await conn.execute(
        calls.update()
        .where(
            sa.tuple_(c.id, c.lease_token).in_([(r.call_id, r.lease_token) for r in refused]),
            c.status == CallState.CLAIMED.value,
            c.lease_owner == owner,
            c.batch_id.in_(cancelled),
        )
        .values(
            status=CallState.CANCELLED.value, ended_at=now, lease_owner=None, lease_expires=None
        )
        .returning(c.batch_id, c.workspace_id, c.status)
    )
    return list(rows)


async def _check_caps(
    conn: AsyncConnection, group: list[Claimed], now: int, policies: Mapping[str, Policy]
) -> dict[int, GateHold]:
    """The calls of `group` that one more dial would put over a frequency cap, with when the
    caps next allow one. The caps of a call are its workspace's `frequencyCaps` and, under a
    compliance profile, those of its number's region (`us`: 3 per 24 h in FL, OK and MD);
    all must allow the dial. The numbers are locked first, so the count and the dials this
    transaction admits are one step across workers (store/number_dials.py); two calls to
    one number in the group count each other."""
    ws_caps = await number_dials.caps_of(conn, {call.workspace_id for call in group})
    rules_of: dict[int, tuple[CapRule, ...]] = {}
    for call in group:
        policy = policies.get(call.batch_id)
        caps = ws_caps.get(call.workspace_id, NO_CAPS)
        if policy is None and not caps.periods():
            continue
        base = replace(policy or Policy(), caps=caps)
        rules = base.cap_rules(region_for(call.phone_number, base.profile))
        if rules:
            rules_of[call.call_id] = rules
    if not rules_of:
        return {}
    checked = [call for call in group if call.call_id in rules_of]
    pairs = {(call.workspace_id, call.phone_number) for call in checked}
    await lock_numbers(conn, pairs)
    times = await number_dials.dial_times(conn, pairs, now - MONTH_MS)
    held: dict[int, GateHold] = {}
    for call in sorted(checked, key=lambda c: c.call_id):
        rules = rules_of[call.call_id]
        limit = combined_caps(rules)
        dialed = times.setdefault((call.workspace_id, call.phone_number), [])
        if caps_allowed(dialed, limit, now):
            dialed.append(now)  # this dial counts for the next call to the number
            continue
        until = next_allowed_at(dialed, limit, now)
        rule = next(r for r in rules if not caps_allowed(dialed, r.caps, now))
        held[call.call_id] = GateHold(
            until=until,
            decision={
                "kind": "capped",
                "message": f"frequency cap reached for this number ({_caps_words(rule.caps)}"
                f", {rule.name}); deferred until the caps allow a dial",
                "rule": rule.name,  # which rule held it, for the audit
                "source": rule.source,
                "until": until,
                "at": now,
            },
        )
    return held


async def _choose_caller_numbers(
    conn: AsyncConnection,
    group: list[Claimed],
    pools: Mapping[int, CallerPool],
    fixed: Mapping[int, str | None],
    now: int,
) -> tuple[dict[int, str | None], dict[int, int]]:
    """The caller number of each call of `group` (its pool's choice, else `fixed`'s), and
    the calls that must wait for theirs, with until when. The numbers of the pools that
    rotate or have limits are locked and their ledger read first, so the choice and the
    dial it admits are one step across workers (store/caller_dials.py); calls of one group
    count each other's choices."""
    chosen: dict[int, str | None] = {call.call_id: fixed.get(call.call_id) for call in group}
    ruled: list[Claimed] = []
    for call in group:
        pool = pools.get(call.call_id)
        if pool is None or not pool.numbers:
            continue
        if pool.needs_ledger():
            ruled.append(call)
        else:
            chosen[call.call_id] = pool.numbers[0]
    if not ruled:
        return chosen, {}
    pairs = {(call.workspace_id, n) for call in ruled for n in pools[call.call_id].numbers}
    await caller_dials.lock(conn, pairs)
    back = max(pools[call.call_id].read_back_ms() for call in ruled)
    seen = await caller_dials.starts(conn, pairs, now - back, now)
    for pair, at in (await caller_dials.last_used(conn, pairs)).items():
        # The last start, however old, orders the rotation; outside every limit's window
        # it counts for no limit (domain/caller_pool.free_at reads the windows only).
        if not seen.get(pair):
            seen[pair] = [at]
    firsts = await caller_dials.first_used(conn, [call.call_id for call in ruled])
    waits: dict[int, int] = {}
    for call in sorted(ruled, key=lambda c: c.call_id):
        pool = pools[call.call_id]
        starts = {n: seen.setdefault((call.workspace_id, n), []) for n in pool.numbers}
        choice = caller_pool.choose(pool, call.phone_number, firsts.get(call.call_id), starts, now)
        if choice is None:
            continue
        if choice.at > now:
            waits[call.call_id] = choice.at
            continue
        chosen[call.call_id] = choice.number
        starts[choice.number].append(now)  # counts for the next call of the group
    return chosen, waits


async def _wait_for_caller_number(
    conn: AsyncConnection, held: list[Claimed], until: Mapping[int, int], owner: str
) -> list[Any]:
    """Claims whose caller number is busy go back to waiting, due when it frees: not an
    outcome and not a gate decision (the call keeps its attempts; nothing is recorded)."""
    c = calls.c
    rows: list[Any] = []
    for call in held:
        row = (
            await conn.execute(
                calls.update()
                .where(*_holds_claim(call, owner))
                .values(
                    status=CallState.WAITING.value,
                    next_attempt_at=until[call.call_id],
                    lease_owner=None,
                    lease_expires=None,
                )
                .returning(c.batch_id, c.workspace_id, c.status)
            )
        ).first()
        if row is not None:
            rows.append(row)
    return rows


def _caps_words(caps: Caps) -> str:
    words = []
    if caps.per_24h is not None:
        words.append(f"at most {caps.per_24h} per 24 hours")
    if caps.per_30d is not None:
        words.append(f"at most {caps.per_30d} per 30 days")
    return ", ".join(words)


async def _defer_capped(
    conn: AsyncConnection,
    held: list[Claimed],
    holds: dict[int, GateHold],
    owner: str,
    now: int,
    on_hold: gating.OnHold | None = None,
) -> list[Any]:
    """Claims over a frequency cap go back to waiting, due when the cap allows a dial: a
    deferral, not an outcome (the call keeps its attempts; its batch is not complete)."""
    c = calls.c
    rows: list[Any] = []
    logged: list[tuple[int, int, dict[str, Any]]] = []
    for call in held:
        hold = holds[call.call_id]
        row = (
            await conn.execute(
                calls.update()
                .where(*_holds_claim(call, owner))
                .values(
                    status=CallState.WAITING.value,
                    next_attempt_at=hold.until,
                    lease_owner=None,
                    lease_expires=None,
                    gate_decision=hold.decision,
                    gate_hold=hold.decision["kind"],
                )
                .returning(c.batch_id, c.workspace_id, c.status, c.attempt)
            )
        ).first()
        if row is not None:
            rows.append(row)
            logged.append((call.call_id, row.attempt, hold.decision))
            if on_hold is not None:
                on_hold(hold.decision["kind"], hold.decision.get("rule"))
    await gate_log.record(conn, logged)
    return rows


async def _fail_suppressed(
    conn: AsyncConnection,
    held: list[Claimed],
    blocked: dict[tuple[str, str], str],
    owner: str,
    now: int,
    on_hold: gating.OnHold | None = None,
) -> list[Any]:
    """Claims we hold whose number is suppressed end failed `Suppressed (reason)`, undialed
    (whatever their batch's state: a cancelled or paused batch would not dial them either)."""
    c = calls.c
    ended: list[Any] = []
    events: list[tuple[str, str, dict[str, Any]]] = []
    decisions: dict[int, dict[str, Any]] = {}
    logged: list[tuple[int, int, dict[str, Any]]] = []
    for call in held:
        error = suppressions.error_text(blocked[(call.workspace_id, call.phone_number)])
        decisions[call.call_id] = {"kind": "suppressed", "message": error, "at": now}
        row = (
            await conn.execute(
                calls.update()
                .where(*_holds_claim(call, owner))
                .values(
                    status=CallState.FAILED.value,
                    error=error,
                    ended_at=now,
                    lease_owner=None,
                    lease_expires=None,
                    gate_decision=decisions[call.call_id],
                    gate_hold="suppressed",
                )
                .returning(c.batch_id, c.workspace_id, c.status, c.attempt)
            )
        ).first()
        if row is None:
            continue
        ended.append(row)
        logged.append((call.call_id, row.attempt, decisions[call.call_id]))
        if on_hold is not None:
            on_hold("suppressed", None)
        events.append(
            (
                call.workspace_id,
                "call.failed",
                {
                    "batchId": call.batch_id,
                    "jobId": call.job_id,
                    "status": CallState.FAILED.value,
                    "attempt": row.attempt,
                    "error": error,
                },
            )
        )
    await gate_log.record(conn, logged)
    if events:
        await outbox.emit_many(conn, events)
    return ended


async def _unclaim_paused(conn: AsyncConnection, refused: list[Claimed], owner: str) -> list[Any]:
    """Claims we still hold in a paused batch (or workspace) go back to waiting, due as they
    were: a claim that raced the pause is neither dialed nor failed."""
    c = calls.c
    paused = sa.select(batches.c.id).where(
        batches.c.id.in_({call.batch_id for call in refused}),
        batches.c.status.in_(RUNNING_BATCH_STATES),
        is_paused(),
    )
    rows = await conn.execute(
        calls.update()
        .where(
            sa.tuple_(c.id, c.lease_token).in_([(r.call_id, r.lease_token) for r in refused]),
            c.status == CallState.CLAIMED.value,
            c.lease_owner == owner,
            c.batch_id.in_(paused),
        )
        .values(status=CallState.WAITING.value, lease_owner=None, lease_expires=None)
        .returning(c.batch_id, c.workspace_id, c.status)
    )
    return list(rows)


async def _end_claims(
    conn: AsyncConnection, ended: Sequence[Any], moves: list[counters.Move] | None = None
) -> None:
    """Slots and counters of claims that ended without a dial ((batch_id, workspace_id,
    new status) rows), plus `moves`; in lock order: limiter, counters, batch."""
    slots = Counter(r.workspace_id for r in ended)
    for workspace_id, k in sorted(slots.items()):
        await release_slots(conn, workspace_id, k)
    per_state = Counter((r.batch_id, r.status) for r in ended)
    await counters.move_many(
        conn,
        [
            *(moves or []),
            *(
                counters.Move(b, {CallState.CLAIMED: -k, CallState(status): k})
                for (b, status), k in per_state.items()
            ),
        ],
    )
    final = (CallState.CANCELLED.value, CallState.FAILED.value)  # failed: the gate refused it
    for batch_id in sorted({r.batch_id for r in ended if r.status in final}):
        await mark_done_if_drained(conn, batch_id)


async def lock_calls(conn: AsyncConnection, call_ids: Sequence[int]) -> None:
    """Lock call rows in id order and wait for them (PostgreSQL; SQLite's writer is
    already alone): the first locks of every transaction that writes several rows."""
    # No statement at all on SQLite: it only read ids, a statement and a thread hop inside
    # the single writer's transaction, twice a dial (docs/benchmarks.md, "Validate's
    # estimate against the run").
    if takes_row_locks(conn):
        await run(conn, _LOCK_CALL_IDS, {"_ids": sorted(set(call_ids))})


_LOCK_CALL_IDS = Prepared(
    "lock_calls",
    lambda conn: (
        sa.select(calls.c.id)
        .where(in_list(conn, calls.c.id, "_ids"))
        .order_by(calls.c.id)
        .with_for_update()
    ),
)


async def _take_calls(conn: AsyncConnection, *where: sa.ColumnElement[bool]) -> list[int]:
    """Ids of the call rows matching `where` that nobody else holds, locked in id order
    (SKIP LOCKED: a row another transaction holds is being moved by it). Multi-row
    updates of calls go through here so that they never wait out of the lock order."""
    c = calls.c
    stmt = sa.select(c.id).where(*where).order_by(c.id)
    return [r[0] for r in await conn.execute(for_update(conn, stmt, skip_locked=True))]


def _key(call: Claimed, granted: dict[int, int]) -> str:
    return dial_key(call.batch_id, call.seq, granted[call.call_id])


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
    await record_placed_many(conn, [(key, provider_call_id)])


async def record_placed_many(conn: AsyncConnection, placed: Sequence[tuple[str, str]]) -> None:
    """(dial key, provider call id) pairs: each id is written to its attempt once, and to
    its call while that attempt is still the call's live one."""
    if not placed:
        return
    ids = dict(placed)
    rows = await run(conn, _UNPLACED, {"_keys": sorted(ids)})
    if not rows:
        return
    # The store's lock order: call rows (by id) before anything else, attempts included.
    await lock_calls(conn, [r.call_id for r in rows])
    await run(conn, _PLACE_ATTEMPT, [{"_id": r.id, "_pcid": ids[r.dial_key]} for r in rows])
    await run(
        conn,
        _PLACE_CALL,
        [{"_id": r.call_id, "_n": r.n, "_pcid": ids[r.dial_key]} for r in rows],
    )


_UNPLACED = Prepared(
    "attempts_unplaced",
    lambda conn: (
        sa.select(attempts.c.id, attempts.c.call_id, attempts.c.n, attempts.c.dial_key)
        .where(in_list(conn, attempts.c.dial_key, "_keys"), attempts.c.provider_call_id.is_(None))
        .order_by(attempts.c.call_id)
    ),
)
_PLACE_ATTEMPT = Prepared(
    "attempts_placed",
    lambda conn: (
        attempts.update()
        .where(attempts.c.id == sa.bindparam("_id"), attempts.c.provider_call_id.is_(None))
        .values(provider_call_id=sa.bindparam("_pcid"))
    ),
)
_PLACE_CALL = Prepared(
    "calls_placed",
    lambda conn: (
        calls.update()
        .where(
            calls.c.id == sa.bindparam("_id"),
            calls.c.attempt == sa.bindparam("_n"),
            # Not IN (...): an expanding parameter cannot be used with executemany.
            sa.or_(
                calls.c.status == CallState.DIALING.value, calls.c.status == CallState.UNKNOWN.value
            ),
        )
        .values(provider_call_id=sa.bindparam("_pcid"))
    ),
)


async def expire_claims(conn: AsyncConnection) -> int:
    """Claimed calls whose worker vanished go back to waiting (nothing was dialed), or end
    cancelled if their batch was cancelled meanwhile."""
    now = await db_now_ms(conn)
    c = calls.c
    in_cancelled = c.batch_id.in_(
        sa.select(batches.c.id).where(batches.c.status == BatchState.CANCELLED.value)
    )
    ids = await _take_calls(conn, c.status == CallState.CLAIMED.value, c.lease_expires < now)
    if not ids:
        return 0
    rows = (
        await conn.execute(
            calls.update()
            .where(c.id.in_(ids), c.status == CallState.CLAIMED.value, c.lease_expires < now)
            .values(
                status=sa.case(
                    (in_cancelled, CallState.CANCELLED.value), else_=CallState.WAITING.value
                ),
                ended_at=sa.case((in_cancelled, now), else_=c.ended_at),
                lease_owner=None,
                lease_expires=None,
            )
            .returning(c.batch_id, c.workspace_id, c.status)
        )
    ).all()
    await _end_claims(conn, rows)
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
    # What a provider can be searched by when it never told us its call id.
    phone_number: str = ""
    started_at: int | None = None  # the intent's time, on the database's clock
    lost_worker: str | None = None  # who followed it before
    from_number: str | None = None  # the caller number the dial showed (its attempt's)


async def expire_dials(conn: AsyncConnection, owner: str, lease_ms: int) -> list[Uncertain]:
    """Dials nobody follows any more (lease expired) -> unknown, leased to `owner`, who
    must reconcile them with the provider. Unknown ones whose reconciler vanished too are
    taken over the same way."""
    now = await db_now_ms(conn)
    c = calls.c
    live = (CallState.DIALING.value, CallState.UNKNOWN.value)
    expired = (c.lease_expires.is_not(None), c.status.in_(live), c.lease_expires < now)
    ids = await _take_calls(conn, *expired)
    if not ids:
        return []
    a = attempts.c
    before = (
        await conn.execute(
            sa.select(
                c.id,
                c.batch_id,
                c.workspace_id,
                c.seq,
                c.attempt,
                c.status,
                c.lease_owner,
                c.provider_call_id,
                c.phone_number,
                a.started_at,
                a.from_number,
                batches.c.agent_id,
            )
            .join(batches, batches.c.id == c.batch_id)
            .outerjoin(attempts, (a.call_id == c.id) & (a.n == c.attempt))
            .where(c.id.in_(ids), *expired)
        )
    ).all()
    if not before:
        return []
    await conn.execute(
        calls.update()
        .where(c.id.in_([r.id for r in before]))
        .values(status=CallState.UNKNOWN.value, lease_owner=owner, lease_expires=now + lease_ms)
    )
    dialing = Counter(r.batch_id for r in before if r.status == CallState.DIALING.value)
    await counters.move_many(
        conn,
        [
            counters.Move(batch_id, {CallState.DIALING: -k, CallState.UNKNOWN: k})
            for batch_id, k in sorted(dialing.items())
        ],
    )
    return [
        Uncertain(
            call_id=r.id,
            batch_id=r.batch_id,
            workspace_id=r.workspace_id,
            agent_id=r.agent_id,
            dial_key=dial_key(r.batch_id, r.seq, r.attempt),
            provider_call_id=r.provider_call_id,
            phone_number=r.phone_number,
            started_at=r.started_at,
            lost_worker=r.lease_owner,
            from_number=r.from_number,
        )
        for r in before
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
    ours = (
        c.lease_expires.is_not(None),  # through ix_calls_leases, not a table scan
        c.lease_owner == owner,
        c.status == CallState.DIALING.value,
    )
    ids = await _take_calls(conn, *ours)  # one held elsewhere is ending: renewed next time
    if not ids:
        return 0
    result = await conn.execute(
        calls.update().where(c.id.in_(ids), *ours).values(lease_expires=now + lease_ms)
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


async def count_following(conn: AsyncConnection, owner: str, providers: Sequence[str]) -> int:
    """Live dials `owner` follows through any of `providers` (a stopping worker waits for
    those whose calls live in its memory)."""
    if not providers:
        return 0
    c = calls.c
    a = attempts.c
    return int(
        await conn.scalar(
            sa.select(sa.func.count())
            .select_from(calls)
            .join(attempts, (a.call_id == c.id) & (a.n == c.attempt))
            .where(
                c.lease_expires.is_not(None),
                c.lease_owner == owner,
                c.status.in_((CallState.DIALING.value, CallState.UNKNOWN.value)),
                a.provider.in_(providers),
            )
        )
        or 0
    )


async def hand_over(conn: AsyncConnection, owner: str) -> int:
    """A stopping worker gives up the live dials it follows: their leases end now, so the
    next sweep of any worker takes them over and asks the provider how each is going,
    instead of waiting a whole lease and finding them abandoned."""
    now = await db_now_ms(conn)
    c = calls.c
    ours = (
        c.lease_expires.is_not(None),
        c.lease_owner == owner,
        c.status.in_((CallState.DIALING.value, CallState.UNKNOWN.value)),
    )
    ids = [r[0] for r in await conn.execute(sa.select(c.id).where(*ours))]
    if not ids:
        return 0
    await lock_calls(conn, ids)  # waits for one being written: none may be left out
    result = await conn.execute(
        calls.update().where(c.id.in_(ids), *ours).values(lease_expires=now - 1)
    )
    return int(result.rowcount or 0)
