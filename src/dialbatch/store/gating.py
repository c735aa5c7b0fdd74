"""The pre-dial gate in the queue (DESIGN.md §4, invariants 2 and 3): calling windows.

The decision is the domain's (:func:`dialbatch.domain.gate.decide`); this module reads what
it needs (the batch's window, the recipient's candidate zones from the number) and writes
what it decided:

* the claim asks it as a cheap filter, "open now": a call outside its window is not claimed,
  its ``next_attempt_at`` moves to the window's next opening, and it stays ``waiting``;
* the intent step asks it again, on the database's clock and with the time a dial needs
  (``dial_lead_ms``), immediately before the dial: a claim taken just before the window
  closed goes back to ``waiting`` until the next opening instead of dialing; a call the gate
  refuses (no known zone for the number, no opening within a year) ends ``failed``, never
  dialed.

Every hold and refusal is written on the call for the audit (``gate_decision``, shown as
``gateDecision``: kind, message, rule, source, zone, until, at) with its kind in ``gate_hold``
(the batch's gate summary counts those), and reported to ``on_hold`` (the dispatcher's
metric). A call held at the claim is moved past now, so it is not read again until its
opening: each hold is written once, never once per dispatcher tick.

"Now" is the database's clock unless the caller passes a :class:`~dialbatch.domain.clock.Clock`
(tests set any instant in any zone with a ``FixedClock``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.compliance import Policy
from dialbatch.domain.gate import Admit, CallFacts, Defer, GateDecision, Refuse, decide
from dialbatch.domain.ids import job_id
from dialbatch.domain.states import CallState
from dialbatch.domain.timezones import zones_for
from dialbatch.domain.windows import CallingWindow, parse_calling_window
from dialbatch.store import outbox
from dialbatch.store.tables import batches, calls

# How long after the intent's decision a dial may still start: the intent's commit and the
# provider's request. A window must stay open past now + this for the call to be dialed.
DIAL_LEAD_MS = 2_000

# Told of each hold or refusal written: (kind, rule or None). The dispatcher counts them in
# its metric; the store does not import the metrics (DESIGN.md §2).
OnHold = Callable[[str, str | None], None]


def decision_record(decision: Defer | Refuse, now_ms: int) -> dict[str, Any]:
    """The audit record of a hold or refusal, as ``calls.gate_decision`` keeps it."""
    record: dict[str, Any] = decision.reason.to_json()
    if isinstance(decision, Defer):
        record["until"] = decision.until_ms
    record["at"] = now_ms
    return record


async def policies_of(conn: AsyncConnection, batch_ids: Iterable[str]) -> dict[str, Policy]:
    """The gate's policy of each of these batches that has a calling window (others: none)."""
    ids = sorted(set(batch_ids))
    if not ids:
        return {}
    b = batches.c
    rows = await conn.execute(
        sa.select(b.id, b.calling_window).where(b.id.in_(ids), b.calling_window.is_not(None))
    )
    return {r.id: policy_for(r.calling_window) for r in rows if r.calling_window is not None}


def policy_for(raw: Any) -> Policy:
    """The gate's policy for a stored window (JSON as stored), parsed once per window."""
    return _policy(json.dumps(raw, sort_keys=True))


@functools.lru_cache(maxsize=1024)
def _policy(text: str) -> Policy:
    window: CallingWindow = parse_calling_window(text)
    return Policy(window=window)


def ask(policy: Policy, phone_number: str, now_ms: int, *, dial_lead_ms: int = 0) -> GateDecision:
    """The gate's answer for one call of a windowed batch at ``now_ms``."""
    facts = CallFacts(zones=zones_for(phone_number))
    return decide(facts, policy, now_ms, dial_lead_ms=dial_lead_ms)


class _Asker:
    """Asks the gate for a group of calls at one instant, once per distinct set of zones:
    with windows alone, a call's answer depends only on its zones, and most numbers of a
    group share a few (measured: bench/claim_windows.py). An admission is also reused by
    later groups for a while (:func:`_reused_admit`)."""

    def __init__(self, now_ms: int, dial_lead_ms: int) -> None:
        self.now_ms = now_ms
        self.dial_lead_ms = dial_lead_ms
        self._answers: dict[tuple[Policy, tuple[str, ...]], GateDecision] = {}

    def __call__(self, policy: Policy, phone_number: str) -> GateDecision:
        zones = zones_for(phone_number)
        key = (policy, zones)
        answer = self._answers.get(key)
        if answer is None:
            answer = _reused_admit(policy, zones, self.now_ms, self.dial_lead_ms)
            self._answers[key] = answer
        return answer


# An admission at t0 whose windows stay open through t0 + lead + _REUSE_MS is the answer at
# every t in [t0, t0 + _REUSE_MS] too (the windows are then open through t + lead), so the
# groups of the next minute take it from here instead of deciding again. Only admissions are
# kept: a hold or refusal is decided afresh each time. Bounded, per process.
_REUSE_MS = 60_000
_MAX_REUSED = 4096
_admits: dict[tuple[Policy, tuple[str, ...], int], tuple[int, Admit]] = {}


def _reused_admit(
    policy: Policy, zones: tuple[str, ...], now_ms: int, lead_ms: int
) -> GateDecision:
    """The gate's answer for a call with these zones: a recent admission still valid at
    ``now_ms``, else :func:`decide` (whose admission is kept when it lasts the minute)."""
    key = (policy, zones, lead_ms)
    kept = _admits.get(key)
    if kept is not None and kept[0] <= now_ms <= kept[0] + _REUSE_MS:
        return kept[1]
    facts = CallFacts(zones=zones)
    answer = decide(facts, policy, now_ms, dial_lead_ms=lead_ms)
    if isinstance(answer, Admit):
        lasting = decide(facts, policy, now_ms, dial_lead_ms=lead_ms + _REUSE_MS)
        if lasting == answer:
            if len(_admits) >= _MAX_REUSED:
                _admits.clear()
            _admits[key] = (now_ms, answer)
    return answer


async def defer_closed(
    conn: AsyncConnection,
    policy: Policy,
    due: Sequence[Any],
    now_ms: int,
    *,
    on_hold: OnHold | None = None,
) -> list[int]:
    """Of due waiting calls (rows with ``id`` and ``phone_number``), move those outside the
    window to its next opening, with the decision recorded, and return the ids of the rest,
    to be claimed.

    A call the gate would refuse is claimed all the same: the intent step ends it, in the one
    place that ends calls the gate refuses.
    """
    c = calls.c
    keep: list[int] = []
    later: list[dict[str, Any]] = []
    asker = _Asker(now_ms, 0)
    for row in due:
        decision = asker(policy, row.phone_number)
        if isinstance(decision, Defer):
            later.append(
                {
                    "_id": row.id,
                    "_next": decision.until_ms,
                    "_kind": decision.reason.kind.value,
                    "_decision": decision_record(decision, now_ms),
                }
            )
        else:
            keep.append(row.id)
    if later:
        await conn.execute(
            calls.update()
            .where(c.id == sa.bindparam("_id"), c.status == CallState.WAITING.value)
            .values(
                next_attempt_at=sa.bindparam("_next"),
                gate_hold=sa.bindparam("_kind"),
                gate_decision=sa.bindparam("_decision", type_=calls.c.gate_decision.type),
            ),
            later,
        )
        if on_hold is not None:
            for entry in later:
                on_hold(entry["_kind"], entry["_decision"].get("rule"))
    return keep


def hold_back(
    policies: Mapping[str, Policy],
    group: Iterable[tuple[int, str, str]],
    now_ms: int,
    dial_lead_ms: int,
) -> dict[int, Defer | Refuse]:
    """Of (call id, batch id, phone number) about to be dialed, those the gate does not admit
    now, with its answer."""
    held: dict[int, Defer | Refuse] = {}
    asker = _Asker(now_ms, dial_lead_ms)
    for call_id, batch_id, phone in group:
        policy = policies.get(batch_id)
        if policy is None:
            continue
        decision = asker(policy, phone)
        if not isinstance(decision, Admit):
            held[call_id] = decision
    return held


async def end_held_claims(
    conn: AsyncConnection,
    held: Sequence[tuple[sa.ColumnElement[bool], Defer | Refuse]],
    now_ms: int,
    *,
    on_hold: OnHold | None = None,
) -> list[Any]:
    """Write the gate's answer for claims it held back at the intent step: a deferral goes
    back to ``waiting`` due at the next opening; a refusal ends ``failed`` with the reason.
    Either way the decision is recorded on the call.

    Each claim comes with the condition that it is still ours (the fencing token); returns
    the (batch_id, workspace_id, status) of those moved, for the slots and counters.
    """
    c = calls.c
    moved: list[Any] = []
    failed_events: list[tuple[str, str, dict[str, Any]]] = []
    for still_ours, decision in held:
        if isinstance(decision, Defer):
            values: dict[str, Any] = {
                "status": CallState.WAITING.value,
                "next_attempt_at": decision.until_ms,
            }
        else:
            values = {
                "status": CallState.FAILED.value,
                "error": decision.reason.message,
                "ended_at": now_ms,
            }
        row = (
            await conn.execute(
                calls.update()
                .where(still_ours)
                .values(
                    lease_owner=None,
                    lease_expires=None,
                    gate_hold=decision.reason.kind.value,
                    gate_decision=decision_record(decision, now_ms),
                    **values,
                )
                .returning(c.batch_id, c.workspace_id, c.status, c.seq, c.attempt)
            )
        ).first()
        if row is None:
            continue
        moved.append(row)
        if on_hold is not None:
            on_hold(decision.reason.kind.value, decision.reason.rule)
        if isinstance(decision, Refuse):
            failed_events.append(
                (
                    row.workspace_id,
                    "call.failed",
                    {
                        "batchId": row.batch_id,
                        "jobId": job_id(row.batch_id, row.seq),
                        "status": CallState.FAILED.value,
                        "attempt": row.attempt,
                        "outcome": None,  # never dialed: the gate refused it
                        "error": decision.reason.message,
                    },
                )
            )
    await outbox.emit_many(conn, failed_events)
    return moved
