"""The pre-dial gate in the queue (DESIGN.md §4, invariants 2 and 3): calling windows and
the hours of the rule packs.

The decision is the domain's (:func:`dialbatch.domain.gate.decide`); this module reads what
it needs (the batch's window or its workspace's default, the batch's and the workspace's
compliance profiles, the recipient's zones: the call's own ``timezone`` from the upload,
else the number's candidate zones; its region from the number) and writes what it decided:

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

from dialbatch.domain.compliance import (
    BATCH_WINDOW_RULE,
    DEFAULT_PROFILE,
    WORKSPACE_WINDOW_RULE,
    Policy,
    join_profiles,
    region_for,
)
from dialbatch.domain.gate import Admit, CallFacts, Defer, GateDecision, Refuse, decide
from dialbatch.domain.ids import job_id
from dialbatch.domain.states import CallState
from dialbatch.domain.timezones import call_zones
from dialbatch.domain.windows import parse_calling_window
from dialbatch.store import gate_log, outbox
from dialbatch.store._dialect import in_list
from dialbatch.store._prepared import Prepared, run
from dialbatch.store.tables import batches, calls, workspaces

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
    """The gate's policy of each of these batches that has one: a window (its own or its
    workspace's default) or a profile other than ``none`` (its own or its workspace's).
    A batch absent from the answer is dialed at any hour."""
    ids = sorted(set(batch_ids))
    if not ids:
        return {}
    rows = await run(conn, _POLICIES_OF, {"_ids": ids})
    found = {r.id: policy_of(r) for r in rows}
    return {batch_id: policy for batch_id, policy in found.items() if policy is not None}


# An alias, so that a query joining it keeps correlating subqueries on `workspaces` (the
# pause check, store/pauses.may_dial) to their own row.
_ws = workspaces.alias("gate_ws")


def gate_columns() -> tuple[sa.ColumnElement[Any], ...]:
    """The columns :func:`policy_of` reads, from batches joined with :func:`with_workspace`."""
    b, w = batches.c, _ws.c
    return (
        b.calling_window,
        b.compliance_profile,
        w.calling_window.label("ws_calling_window"),
        w.compliance_profile.label("ws_compliance_profile"),
    )


def with_workspace() -> sa.Join:
    """Batches joined with their workspace, for :func:`gate_columns`."""
    return batches.join(_ws, _ws.c.id == batches.c.workspace_id)


_POLICIES_OF = Prepared(
    "policies_of",
    lambda conn: (
        sa.select(batches.c.id, *gate_columns())
        .select_from(with_workspace())
        .where(in_list(conn, batches.c.id, "_ids"))
    ),
)


def policy_of(row: Any) -> Policy | None:
    """The policy of a row with :func:`gate_columns`, resolved now (see :func:`policy_for`)."""
    return policy_for(
        row.calling_window,
        row.compliance_profile,
        workspace_window=row.ws_calling_window,
        workspace_profile=row.ws_compliance_profile,
    )


def policy_for(
    window: Any,
    profile: str | None = None,
    *,
    workspace_window: Any = None,
    workspace_profile: str | None = None,
) -> Policy | None:
    """The gate's policy for stored values (JSON as stored); None when there is no rule.

    The window is the batch's own, else its workspace's default. The profile is the join of
    the batch's (the one it was created under) and its workspace's current one: raising the
    workspace's profile tightens running batches; lowering it does not loosen a batch
    created under the higher one. Parsed once per distinct input.
    """
    rule = BATCH_WINDOW_RULE
    if window is None and workspace_window is not None:
        window, rule = workspace_window, WORKSPACE_WINDOW_RULE
    joined = join_profiles(profile or DEFAULT_PROFILE, workspace_profile or DEFAULT_PROFILE)
    if window is None and joined == DEFAULT_PROFILE:
        return None
    text = None if window is None else json.dumps(window, sort_keys=True)
    return _policy(text, rule, joined)


@functools.lru_cache(maxsize=1024)
def _policy(window_text: str | None, rule: str, profile: str) -> Policy:
    window = None if window_text is None else parse_calling_window(window_text)
    return Policy(profile=profile, window=window, window_rule=rule)


def call_facts(policy: Policy, phone_number: str, timezone: str | None = None) -> CallFacts:
    """What the gate needs of one call under ``policy``: its zones (its own ``timezone``
    from the upload, else the number's) and its region."""
    return CallFacts(
        zones=call_zones(phone_number, timezone), region=region_for(phone_number, policy.profile)
    )


def ask(
    policy: Policy,
    phone_number: str,
    now_ms: int,
    *,
    dial_lead_ms: int = 0,
    timezone: str | None = None,
) -> GateDecision:
    """The gate's answer for one call at ``now_ms`` (windows and hours; not caps);
    ``timezone`` is the call's own zone from its upload, if it has one."""
    facts = call_facts(policy, phone_number, timezone)
    return decide(facts, policy, now_ms, dial_lead_ms=dial_lead_ms)


class _Asker:
    """Asks the gate for a group of calls at one instant, once per distinct (policy, zones,
    region): without caps, a call's answer depends only on those, and most numbers of a
    group share a few (measured: bench/claim_windows.py). The region (a US state under the
    ``us`` profile) is a few string operations on the number. An admission is also reused
    by later groups for a while (:func:`_reused_admit`)."""

    def __init__(self, now_ms: int, dial_lead_ms: int) -> None:
        self.now_ms = now_ms
        self.dial_lead_ms = dial_lead_ms
        self._answers: dict[tuple[Policy, tuple[str, ...], str | None], GateDecision] = {}

    def __call__(self, policy: Policy, phone_number: str, timezone: str | None) -> GateDecision:
        zones = call_zones(phone_number, timezone)
        region = region_for(phone_number, policy.profile)
        key = (policy, zones, region)
        answer = self._answers.get(key)
        if answer is None:
            answer = _reused_admit(policy, zones, region, self.now_ms, self.dial_lead_ms)
            self._answers[key] = answer
        return answer


# An admission at t0 whose windows stay open through t0 + lead + _REUSE_MS is the answer at
# every t in [t0, t0 + _REUSE_MS] too (the windows are then open through t + lead), so the
# groups of the next minute take it from here instead of deciding again. Only admissions are
# kept: a hold or refusal is decided afresh each time. Bounded, per process.
_REUSE_MS = 60_000
_MAX_REUSED = 4096
_admits: dict[tuple[Policy, tuple[str, ...], str | None, int], tuple[int, Admit]] = {}


def _reused_admit(
    policy: Policy, zones: tuple[str, ...], region: str | None, now_ms: int, lead_ms: int
) -> GateDecision:
    """The gate's answer for a call with these zones and region: a recent admission still
    valid at ``now_ms``, else :func:`decide` (whose admission is kept when it lasts the
    minute)."""
    key = (policy, zones, region, lead_ms)
    kept = _admits.get(key)
    if kept is not None and kept[0] <= now_ms <= kept[0] + _REUSE_MS:
        return kept[1]
    facts = CallFacts(zones=zones, region=region)
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
    """Of due waiting calls (rows with ``id``, ``phone_number``, ``timezone`` and
    ``attempt``), move those outside the window to its next opening, with the decision
    recorded (on the call and in its gate log), and return the ids of the rest, to be
    claimed.

    A call the gate would refuse is claimed all the same: the intent step ends it, in the one
    place that ends calls the gate refuses.
    """
    c = calls.c
    keep: list[int] = []
    later: list[dict[str, Any]] = []
    asker = _Asker(now_ms, 0)
    for row in due:
        decision = asker(policy, row.phone_number, row.timezone)
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
        attempts_of = {row.id: row.attempt for row in due}
        await gate_log.record(
            conn, [(e["_id"], attempts_of[e["_id"]], e["_decision"]) for e in later]
        )
        if on_hold is not None:
            for entry in later:
                on_hold(entry["_kind"], entry["_decision"].get("rule"))
    return keep


def hold_back(
    policies: Mapping[str, Policy],
    group: Iterable[tuple[int, str, str, str | None]],
    now_ms: int,
    dial_lead_ms: int,
) -> dict[int, Defer | Refuse]:
    """Of (call id, batch id, phone number, own timezone) about to be dialed, those the gate
    does not admit now, with its answer."""
    held: dict[int, Defer | Refuse] = {}
    asker = _Asker(now_ms, dial_lead_ms)
    for call_id, batch_id, phone, timezone in group:
        policy = policies.get(batch_id)
        if policy is None:
            continue
        decision = asker(policy, phone, timezone)
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
    logged: list[tuple[int, int, dict[str, Any]]] = []
    failed_events: list[tuple[str, str, dict[str, Any]]] = []
    for still_ours, decision in held:
        record = decision_record(decision, now_ms)
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
                    gate_decision=record,
                    **values,
                )
                .returning(c.id, c.batch_id, c.workspace_id, c.status, c.seq, c.attempt)
            )
        ).first()
        if row is None:
            continue
        moved.append(row)
        logged.append((row.id, row.attempt, record))
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
    await gate_log.record(conn, logged)
    await outbox.emit_many(conn, failed_events)
    return moved
