"""The end of a dial, written to the store: forward-only, so duplicates and late events are
harmless, and set-based, so a worker ending a hundred calls pays for a few statements
rather than a few hundred (docs/benchmarks.md §2).

The store's half only: it finds and locks the calls, asks the domain what each one's next
state is (:func:`dialbatch.domain.next_state.next_state`) and writes that. Everyone else
applies outcomes through :func:`dialbatch.events.apply.apply_outcomes`, the one entry point,
which also counts them and closes batches that a concurrent commit left open.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.failure_stop import counts_as_failure
from dialbatch.domain.ids import job_id
from dialbatch.domain.next_state import BatchPolicy, CallHistory, GateContext, next_state
from dialbatch.domain.outcomes import CallEvent
from dialbatch.domain.retry import (
    RetryConfig,
    parse_callback_policy,
)
from dialbatch.domain.retry_policy import RetryPolicy, parse_retry_policy
from dialbatch.domain.states import FINAL_CALL_STATES, CallState
from dialbatch.store import counters, failure_stop, gating, outbox
from dialbatch.store._dialect import db_now_ms, for_update, in_list
from dialbatch.store._prepared import Prepared, run
from dialbatch.store.batches import mark_done_if_drained, release_slots
from dialbatch.store.results import agent_fields
from dialbatch.store.tables import attempts, batches, calls

_LIVE = (CallState.DIALING.value, CallState.UNKNOWN.value)


@dataclass(frozen=True)
class Applied:
    """What applying an event did; `changed` is False for duplicates and late events."""

    changed: bool
    batch_id: str | None = None
    status: CallState | None = None
    workspace_id: str | None = None
    provider: str | None = None  # the dial's provider, for metrics


UNCHANGED = Applied(changed=False)


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


async def write_outcomes(
    conn: AsyncConnection,
    events: Sequence[CallEvent],
    retry: RetryConfig,
    *,
    final_error: str | None = None,
) -> list[Applied]:
    """Write the ends of several dials in `conn`'s transaction; one `Applied` per event.
    `final_error` forces a final failure (an attempt whose fate cannot be learned).

    Of several events about one attempt only the first counts, as if they had come one
    after the other. Locks are taken in the store's one order: calls by id (then their
    attempts), the workspace's limiter row, counters, the batch row.
    """
    found = await _find_attempts(conn, events)
    applied = [UNCHANGED] * len(events)
    targets: dict[int, tuple[int, Any]] = {}  # attempt id -> (event index, attempt row)
    for i, att in enumerate(found):
        if att is not None and att.ended_at is None and att.id not in targets:
            targets[att.id] = (i, att)
    if not targets:
        return applied
    now = await db_now_ms(conn)
    ordered = sorted(targets.items())
    # The store's lock order: the call rows (by id) first, then their attempts.
    locked = {
        row.id: row for row in await _lock_calls(conn, [att.call_id for _, (_, att) in ordered])
    }
    await run(
        conn,
        _END_ATTEMPT,
        [
            {
                "_id": att_id,
                "_ended_at": events[i].ended_at or now,
                "_outcome": events[i].outcome.value,
                "_code": events[i].provider_code,
                "_duration": events[i].duration_s,
                "_pcid": events[i].provider_call_id,
            }
            for att_id, (i, _) in ordered
        ],
    )
    plan = _Plan()
    for _, (i, att) in ordered:
        call = locked.get(att.call_id)
        if call is None or call.attempt != att.n or call.status not in _LIVE:
            continue  # a duplicate that lost the race, or an attempt superseded
        applied[i] = replace(
            plan.add(call, att.n, events[i], now, retry, final_error), provider=att.provider
        )
    await plan.write(conn)
    failing = {
        done.batch_id
        for done, event in zip(applied, events, strict=True)
        if done.changed
        and done.batch_id
        and counts_as_failure(event.outcome.value, event.provider_code)
    }
    if failing:  # the batch row is the last lock: the store's lock order holds
        await failure_stop.weigh(conn, failing)
    return applied


_END_ATTEMPT = Prepared(
    "attempts_end",
    lambda conn: (
        attempts.update()
        .where(attempts.c.id == sa.bindparam("_id"), attempts.c.ended_at.is_(None))
        .values(
            state="ended",
            ended_at=sa.bindparam("_ended_at"),
            outcome=sa.bindparam("_outcome"),
            provider_code=sa.bindparam("_code"),
            duration_s=sa.bindparam("_duration"),
            provider_call_id=sa.func.coalesce(
                attempts.c.provider_call_id, sa.bindparam("_pcid", type_=sa.String)
            ),
        )
    ),
)


async def _find_attempts(conn: AsyncConnection, events: Sequence[CallEvent]) -> list[Any]:
    """The attempt each event names (by dial key, else by the provider's call id), or None."""
    keys = sorted({e.dial_key for e in events if e.dial_key})
    pcids = sorted({e.provider_call_id for e in events if not e.dial_key and e.provider_call_id})
    by_key: dict[str, Any] = {}
    by_pcid: dict[str, Any] = {}
    if keys:
        by_key = {r.dial_key: r for r in await run(conn, _ATTEMPTS_BY_KEY, {"_in": keys})}
    if pcids:
        rows = await run(conn, _ATTEMPTS_BY_PCID, {"_in": pcids})
        by_pcid = {r.provider_call_id: r for r in rows}
    return [
        by_key.get(e.dial_key) if e.dial_key else by_pcid.get(e.provider_call_id or "")
        for e in events
    ]


def _attempts_by(column: str) -> Prepared:
    a = attempts.c
    cols = (a.id, a.call_id, a.n, a.ended_at, a.dial_key, a.provider_call_id, a.provider)
    return Prepared(
        f"attempts_by_{column}",
        lambda conn: sa.select(*cols).where(in_list(conn, a[column], "_in")),
    )


_ATTEMPTS_BY_KEY = _attempts_by("dial_key")
_ATTEMPTS_BY_PCID = _attempts_by("provider_call_id")


async def _lock_calls(conn: AsyncConnection, call_ids: list[int]) -> list[Any]:
    return await run(conn, _LOCK_CALLS, {"_ids": sorted(set(call_ids))})


def _build_lock_calls(conn: AsyncConnection) -> Any:
    c = calls.c
    b = batches.c
    stmt = (
        sa.select(
            c.id,
            c.batch_id,
            c.workspace_id,
            c.seq,
            c.status,
            c.attempt,
            c.connection_failures,
            c.unreached,
            c.metadata,
            c.result,
            c.phone_number,
            c.timezone,
            b.callback_policy,
            b.retry_policy,
            *gating.gate_columns(),
            b.status.label("batch_status"),
        )
        .select_from(calls.join(gating.with_workspace(), b.id == c.batch_id))
        .where(in_list(conn, c.id, "_ids"))
        .order_by(c.id)  # rows are locked in the order they are returned
    )
    return for_update(conn, stmt, of=calls)


_LOCK_CALLS = Prepared("outcomes_lock_calls", _build_lock_calls)


class _Plan:
    """The writes a group of outcomes makes, gathered so each kind is one statement."""

    def __init__(self) -> None:
        self.retries: list[dict[str, Any]] = []
        self.completions: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self.moves: list[counters.Move] = []
        self.slots: Counter[str] = Counter()
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.finished_batches: set[str] = set()
        # Each batch's stored retry rules, read once per group (parsing costs ~40 us).
        self.rules: dict[str, RetryPolicy | None] = {}

    def add(
        self,
        call: Any,
        n: int,
        event: CallEvent,
        now: int,
        retry: RetryConfig,
        final_error: str | None,
    ) -> Applied:
        old = CallState(call.status)
        decision = next_state(
            event.outcome,
            CallHistory(call.connection_failures, call.unreached, call.attempt),
            BatchPolicy(
                parse_callback_policy(call.callback_policy),
                call.batch_status,
                self._rules(call),
            ),
            now,
            retry=retry,
            detail=event.detail,
            final_error=final_error,
            gate=_gate_context(call),
            refused=event.refused,
        )
        new = decision.state
        ended_at = event.ended_at or now
        row: dict[str, Any] = {
            "_id": call.id,
            "_old": old.value,
            "_n": n,
            "_failures": decision.history.connection_failures,
            "_unreached": decision.history.unreached,
            "_ended_at": ended_at,
        }
        duration = 0.0
        if new is CallState.WAITING:
            row.update(_next=decision.due_ms)
            self.retries.append(row)
            self.events.append(
                (
                    call.workspace_id,
                    "call.retry_scheduled",
                    {
                        "batchId": call.batch_id,
                        "jobId": job_id(call.batch_id, call.seq),
                        "status": "waiting",
                        "attempt": n,
                        "outcome": event.outcome.value,
                        "nextAttemptAt": decision.due_ms,
                    },
                )
            )
        elif new is CallState.COMPLETED:
            duration = float(event.duration_s or 0.0)
            row.update(_duration=duration, _result=_result(call, event))
            self.completions.append(row)
        else:
            row.update(_error=decision.error, _duration=event.duration_s)
            self.failures.append(row)
        self.slots[call.workspace_id] += 1
        self.moves.append(
            counters.Move(call.batch_id, {old: -1, new: 1}, duration_s=duration, last_at=ended_at)
        )
        if new in FINAL_CALL_STATES:
            payload = {
                "batchId": call.batch_id,
                "jobId": job_id(call.batch_id, call.seq),
                "status": new.value,
                "attempt": n,
                "outcome": event.outcome.value,
            }
            if new is CallState.FAILED:
                payload["error"] = row.get("_error")
            self.events.append((call.workspace_id, f"call.{new.value}", payload))
            self.finished_batches.add(call.batch_id)
        return Applied(
            changed=True, batch_id=call.batch_id, status=new, workspace_id=call.workspace_id
        )

    def _rules(self, call: Any) -> RetryPolicy | None:
        if call.batch_id not in self.rules:
            stored = call.retry_policy  # validated when written
            self.rules[call.batch_id] = None if stored is None else parse_retry_policy(stored)
        return self.rules[call.batch_id]

    async def write(self, conn: AsyncConnection) -> None:
        for state, rows in (
            (CallState.WAITING, self.retries),
            (CallState.COMPLETED, self.completions),
            (CallState.FAILED, self.failures),
        ):
            if not rows:
                continue
            for row in rows:
                row["_status"] = state.value
            await run(conn, _END_CALL[state], rows)
        for workspace_id, k in sorted(self.slots.items()):
            await release_slots(conn, workspace_id, k)
        await counters.move_many(conn, self.moves)
        await outbox.emit_many(conn, self.events)
        for batch_id in sorted(self.finished_batches):
            await mark_done_if_drained(conn, batch_id)


def _end_call(state: CallState, extra: dict[str, Any]) -> Prepared:
    """The update that ends a dial of a call in `state` (waiting for a retry, completed or
    failed), with the columns that state writes besides the common ones."""
    c = calls.c
    return Prepared(
        f"calls_end_{state.value}",
        lambda conn: (
            calls.update()
            .where(
                c.id == sa.bindparam("_id"),
                c.status == sa.bindparam("_old"),
                c.attempt == sa.bindparam("_n"),
            )
            .values(
                status=sa.bindparam("_status"),
                connection_failures=sa.bindparam("_failures"),
                unreached=sa.bindparam("_unreached"),
                lease_owner=None,
                lease_expires=None,
                ended_at=sa.bindparam("_ended_at"),
                **extra,
            )
        ),
    )


_END_CALL = {
    CallState.WAITING: _end_call(
        CallState.WAITING, {"next_attempt_at": sa.bindparam("_next"), "error": None}
    ),
    CallState.COMPLETED: _end_call(
        CallState.COMPLETED,
        {
            "duration_s": sa.bindparam("_duration"),
            "error": None,
            "result": sa.bindparam("_result", type_=calls.c.result.type),
        },
    ),
    CallState.FAILED: _end_call(
        CallState.FAILED,
        {"duration_s": sa.bindparam("_duration"), "error": sa.bindparam("_error")},
    ),
}


def _gate_context(call: Any) -> GateContext | None:
    """What moves a retry into the hours the call must keep: its batch's calling window (or
    its workspace's default) and its compliance profile's hours, if any."""
    policy = gating.policy_of(call)
    if policy is None:
        return None
    return GateContext(
        gating.call_facts(policy, call.phone_number, call.timezone),
        policy,
        dial_lead_ms=gating.DIAL_LEAD_MS,
    )


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
