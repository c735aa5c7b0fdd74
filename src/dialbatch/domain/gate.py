"""The pre-dial gate: may this call be dialed now, and if not, why and until when?

One pure decision, taken in the intent step immediately before a dial (and usable as a cheap
filter earlier): from what is known about the call (its candidate zones, its region, whether
its number is suppressed, whether consent is on record, the number's recent dials) and the
batch's effective policy, at an instant the caller reads from its clock, it answers

* :class:`Admit`: dial it;
* :class:`Defer`: not now; it stays waiting, due again at ``until_ms`` (the next instant at
  which every window is open and every cap allows a dial);
* :class:`Refuse`: never (suppressed, no consent, no known zone, no opening within a year).

Each answer other than Admit carries a :class:`Reason` for the audit record: its kind, the
rule that decided and the regulation it comes from, and the zone it was evaluated in. The
checks run in a fixed order (suppression, consent, zone, window, caps), so the reason is the
first that applies.

The gate fails closed: anything it cannot evaluate (a zone the IANA database does not know, a
value of the wrong type) is a Refuse with kind ``undecidable``, never an Admit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from dialbatch.domain.caps import allowed, next_allowed_at
from dialbatch.domain.compliance import CapRule, Policy, WindowRule
from dialbatch.domain.windows import HORIZON_MS, next_opening, open_through

__all__ = [
    "Admit",
    "CallFacts",
    "Defer",
    "GateDecision",
    "Reason",
    "ReasonKind",
    "Refuse",
    "decide",
    "earliest_admission",
]


class ReasonKind(StrEnum):
    OUTSIDE_WINDOW = "outside_window"
    SUPPRESSED = "suppressed"
    CAPPED = "capped"
    NO_CONSENT = "no_consent"
    NO_ZONE = "no_zone"
    UNDECIDABLE = "undecidable"


@dataclass(frozen=True)
class Reason:
    """Why the gate held a call back, in a form the audit record keeps as JSON."""

    kind: ReasonKind
    message: str
    rule: str | None = None
    source: str | None = None
    zone: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {"kind": self.kind.value, "message": self.message}
        for key in ("rule", "source", "zone"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True)
class Admit:
    """Dial now. ``rules`` names every window and cap rule that was checked, for the audit."""

    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Defer:
    """Not now: the call stays waiting, due again at ``until_ms``. Not an outcome."""

    until_ms: int
    reason: Reason


@dataclass(frozen=True)
class Refuse:
    """Never dial this call: it ends failed with ``reason``."""

    reason: Reason


GateDecision = Admit | Defer | Refuse


@dataclass(frozen=True)
class CallFacts:
    """What the store knows about one call when the gate is asked.

    ``zones`` are the recipient's candidate IANA zones (the CSV's ``timezone`` column, else
    :func:`dialbatch.domain.timezones.zones_for`); None or empty means unknown. ``region`` is
    the number's region under the profile (:func:`dialbatch.domain.compliance.region_for`).
    ``recent_dials_ms`` are the number's dials in the workspace over the last 30 days.
    """

    zones: Sequence[str] | None
    region: str | None = None
    suppressed: bool = False
    suppression_reason: str | None = None
    consent: bool = False
    recent_dials_ms: Sequence[int] = field(default_factory=tuple)


def decide(call: CallFacts, policy: Policy, now_ms: int, *, dial_lead_ms: int = 0) -> GateDecision:
    """The gate's decision at ``now_ms``.

    ``dial_lead_ms`` is how long after ``now_ms`` the dial may still start (the intent commit
    and the provider request): a call is admitted only if every window stays open beyond
    ``now_ms + dial_lead_ms``, so a decision at 20:59:59.9 whose dial would start after 21:00
    is deferred to the next opening instead.
    """
    try:
        return _decide(call, policy, int(now_ms), max(int(dial_lead_ms), 0))
    except Exception as exc:  # fail closed: whatever cannot be evaluated is not dialed
        return Refuse(
            Reason(
                ReasonKind.UNDECIDABLE,
                f"the gate could not evaluate this call ({type(exc).__name__}: {exc})",
            )
        )


def earliest_admission(
    call: CallFacts, policy: Policy, after_ms: int, *, dial_lead_ms: int = 0
) -> int | None:
    """The earliest instant >= ``after_ms`` at which windows and caps would admit the call.

    For a deferral's due time and for a retry's (``after_ms`` = the end of its gap), so that
    the next attempt lands inside the window. None when no window opens within a year or the
    zones are unknown. Suppression and consent are not time-dependent and not considered.
    """
    windows = policy.windows(call.region)
    caps = policy.cap_rules(call.region)
    at = after_ms
    for _ in range(3):  # caps leave at fixed instants, so this settles in at most two rounds
        opening = next_opening(windows, call.zones, at, min_open_ms=dial_lead_ms + 1)
        if opening is None:
            return None
        ready = max(
            [opening, *(next_allowed_at(call.recent_dials_ms, r.caps, opening) for r in caps)]
        )
        if ready == opening:
            return opening
        at = ready
    return None


def _decide(call: CallFacts, policy: Policy, now_ms: int, lead_ms: int) -> GateDecision:
    if call.suppressed:
        why = call.suppression_reason or "on the workspace's suppression list"
        return Refuse(Reason(ReasonKind.SUPPRESSED, f"Suppressed: {why}"))
    if policy.require_consent and not call.consent:
        return Refuse(
            Reason(ReasonKind.NO_CONSENT, "no consent on record and the batch requires it")
        )
    window_rules = policy.window_rules(call.region)
    cap_rules = policy.cap_rules(call.region)
    zones = tuple(call.zones or ())
    for rule in window_rules:
        if not rule.window.zones(zones):
            return Refuse(
                Reason(
                    ReasonKind.NO_ZONE,
                    "the recipient's time zone is unknown; add a timezone column to call it",
                    rule=rule.name,
                    source=rule.source,
                )
            )
    closed = _closed_rule(window_rules, zones, now_ms, lead_ms)
    if closed is not None:
        rule, zone = closed
        return _defer_or_refuse(
            call,
            policy,
            now_ms,
            lead_ms,
            Reason(
                ReasonKind.OUTSIDE_WINDOW,
                f"outside the calling window of {rule.name} in {zone}",
                rule=rule.name,
                source=rule.source,
                zone=zone,
            ),
        )
    for cap in cap_rules:
        if not allowed(call.recent_dials_ms, cap.caps, now_ms):
            return _defer_or_refuse(
                call,
                policy,
                now_ms,
                lead_ms,
                Reason(
                    ReasonKind.CAPPED,
                    f"{_cap_words(cap)} reached for this number",
                    rule=cap.name,
                    source=cap.source,
                ),
            )
    return Admit(rules=tuple(r.name for r in window_rules) + tuple(c.name for c in cap_rules))


def _closed_rule(
    rules: Sequence[WindowRule], zones: Sequence[str], now_ms: int, lead_ms: int
) -> tuple[WindowRule, str] | None:
    """The first window rule, and zone, in which a dial started by now + lead is not inside."""
    for rule in rules:
        for zone in rule.window.zones(zones):
            if not open_through(rule.window, (zone,), now_ms, now_ms + lead_ms):
                return rule, zone
    return None


def _defer_or_refuse(
    call: CallFacts, policy: Policy, now_ms: int, lead_ms: int, reason: Reason
) -> GateDecision:
    until = earliest_admission(call, policy, now_ms, dial_lead_ms=lead_ms)
    if until is None or until <= now_ms:
        # Nothing opens within the horizon (or the answer contradicts the check): never dial.
        days = HORIZON_MS // (24 * 3600 * 1000)
        return Refuse(
            Reason(
                reason.kind,
                f"{reason.message}, and no opening within {days} days",
                rule=reason.rule,
                source=reason.source,
                zone=reason.zone,
            )
        )
    return Defer(until, reason)


def _cap_words(rule: CapRule) -> str:
    parts = []
    if rule.caps.per_24h is not None:
        parts.append(f"{rule.caps.per_24h} dials per 24 h")
    if rule.caps.per_30d is not None:
        parts.append(f"{rule.caps.per_30d} dials per 30 days")
    return f"the limit of {' / '.join(parts)} ({rule.name})"
