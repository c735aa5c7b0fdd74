"""What Telnyx Call Control webhooks mean for a dial: pure functions, no I/O.

The dial key travels in `client_state` (base64, echoed by Telnyx in every webhook of the
call), so any process can match a webhook to its attempt. Mapping, forward-only:

- `call.initiated` and any other event of ours: word that Telnyx follows the call;
- `call.answered`: stage ANSWERED;
- `call.machine.detection.ended` / `call.machine.premium.detection.ended` with a machine
  (or fax) result: the outcome `voicemail`, final at once;
- `call.hangup`: the outcome, by `hangup_cause` (then `sip_hangup_cause`); an answered
  call that ended normally is `completed`, or `voicemail` when a machine was detected
  (a hangup we asked for after a machine answer says so in its client_state).

The first final event a call gets wins (events.apply.apply_outcomes), so duplicates and late
webhooks change nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.providers.base import CallProgress, Stage

ANSWERED = "call.answered"
HANGUP = "call.hangup"
MACHINE_EVENTS = ("call.machine.detection.ended", "call.machine.premium.detection.ended")
# `detect`: human | machine | not_sure; premium: human_residence | human_business |
# machine | silence | fax_detected | not_sure. A fax is no person either.
MACHINE_RESULTS = frozenset({"machine", "fax_detected"})

HANGUP_CAUSES: dict[str, Outcome] = {
    "normal_clearing": Outcome.COMPLETED,  # answered, then either side hung up
    "time_limit": Outcome.COMPLETED,  # answered, ended at time_limit_secs
    "user_busy": Outcome.BUSY,
    "call_rejected": Outcome.BUSY,  # declined by the callee: try again later
    "timeout": Outcome.NO_ANSWER,  # rang for timeout_secs
    "no_answer": Outcome.NO_ANSWER,
    "originator_cancel": Outcome.CANCELED,  # we hung up while it rang
    "not_found": Outcome.FAILED,
}
# For `unspecified` (or a cause this table does not know yet): the SIP final response.
SIP_CODES: dict[str, Outcome] = {
    "200": Outcome.COMPLETED,
    "486": Outcome.BUSY,
    "600": Outcome.BUSY,
    "603": Outcome.BUSY,
    "408": Outcome.NO_ANSWER,
    "480": Outcome.NO_ANSWER,
    "487": Outcome.CANCELED,
}
TALKED = (Outcome.COMPLETED, Outcome.VOICEMAIL)


@dataclass(frozen=True)
class ClientState:
    """What we put in a call's client_state: the dial key, whether machine detection was
    asked for, and (set on our own hangup) that a machine answered."""

    dial_key: str
    amd: bool = False
    machine: bool = False

    def encode(self) -> str:
        raw: dict[str, Any] = {"dialbatch": 1, "k": self.dial_key}
        if self.amd:
            raw["a"] = 1
        if self.machine:
            raw["m"] = 1
        return base64.b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode()

    @classmethod
    def decode(cls, value: object) -> ClientState | None:
        """None when absent or not ours (a call placed by something else)."""
        if not isinstance(value, str) or not value:
            return None
        try:
            raw = json.loads(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            return None
        if not isinstance(raw, dict) or raw.get("dialbatch") != 1:
            return None
        key = raw.get("k")
        if not isinstance(key, str) or not key:
            return None
        return cls(key, amd=bool(raw.get("a")), machine=bool(raw.get("m")))


@dataclass(frozen=True)
class Webhook:
    """One Telnyx v2 webhook (`{"data": {"event_type", "id", "occurred_at", "payload"}}`)."""

    event_id: str | None
    event_type: str
    occurred_at_ms: int | None
    payload: Mapping[str, Any]

    @property
    def call_control_id(self) -> str | None:
        value = self.payload.get("call_control_id")
        return value if isinstance(value, str) and value else None

    @property
    def state(self) -> ClientState | None:
        return ClientState.decode(self.payload.get("client_state"))

    @property
    def is_machine(self) -> bool:
        return self.event_type in MACHINE_EVENTS and self.payload.get("result") in MACHINE_RESULTS


def parse_webhook(data: object) -> Webhook | None:
    """The webhook in a decoded body (or in a call-event log record); None if malformed."""
    if isinstance(data, Mapping) and isinstance(data.get("data"), Mapping):
        data = data["data"]
    if not isinstance(data, Mapping):
        return None
    event_type = data.get("event_type")
    payload = data.get("payload")
    if not isinstance(event_type, str) or not isinstance(payload, Mapping):
        return None
    event_id = data.get("id")
    return Webhook(
        event_id=event_id if isinstance(event_id, str) else None,
        event_type=event_type,
        occurred_at_ms=iso_ms(data.get("occurred_at")),
        payload=payload,
    )


def iso_ms(value: object) -> int | None:
    """Telnyx's ISO 8601 timestamps ("2024-05-01T10:00:00.123456Z") as epoch ms."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def hangup_outcome(cause: object, sip_code: object) -> Outcome:
    if isinstance(cause, str) and cause in HANGUP_CAUSES:
        return HANGUP_CAUSES[cause]
    if isinstance(sip_code, str | int) and str(sip_code) in SIP_CODES:
        return SIP_CODES[str(sip_code)]
    return Outcome.FAILED


def hangup_event(
    hook: Webhook,
    state: ClientState,
    *,
    answered_at_ms: int | None = None,
    machine: bool = False,
) -> CallEvent:
    """The final event of a `call.hangup`. `answered_at_ms`: when we heard the answer (the
    duration counts from it; else from the payload's start_time, ringing included)."""
    p = hook.payload
    cause, sip = p.get("hangup_cause"), p.get("sip_hangup_cause")
    outcome = hangup_outcome(cause, sip)
    if outcome is Outcome.COMPLETED and (machine or state.machine):
        outcome = Outcome.VOICEMAIL
    ended = iso_ms(p.get("end_time")) or hook.occurred_at_ms
    duration = None
    begun = answered_at_ms or iso_ms(p.get("start_time"))
    if outcome in TALKED and ended is not None and begun is not None:
        duration = round(max(0, ended - begun) / 1000, 1)
    # Beside the outcome's words in the error (`Number busy (Telnyx hangup_cause user_busy,
    # SIP 486)`); a failure's detail leads the error on its own, so it says it failed.
    said = f"Telnyx hangup_cause {cause or 'unknown'}, SIP {sip or 'n/a'}"
    detail: str | None = said
    if outcome is Outcome.FAILED:
        detail = f"Call failed - {said}"
    elif outcome is Outcome.COMPLETED:
        detail = None
    elif outcome is Outcome.VOICEMAIL:
        detail = "Telnyx answering machine detection"
    return CallEvent(
        outcome=outcome,
        dial_key=state.dial_key,
        provider_call_id=hook.call_control_id,
        duration_s=duration,
        ended_at=ended,
        provider_code=str(cause or sip or "unknown"),
        detail=detail,
    )


def machine_event(hook: Webhook, state: ClientState) -> CallEvent:
    return CallEvent(
        outcome=Outcome.VOICEMAIL,
        dial_key=state.dial_key,
        provider_call_id=hook.call_control_id,
        ended_at=hook.occurred_at_ms,
        provider_code=str(hook.payload.get("result")),
        detail=f"Telnyx answering machine detection: {hook.payload.get('result')}",
    )


def progress(hook: Webhook, state: ClientState) -> CallProgress:
    stage = Stage.ANSWERED if hook.event_type == ANSWERED else Stage.DIALING
    return CallProgress(
        stage=stage,
        dial_key=state.dial_key,
        provider_call_id=hook.call_control_id,
        at_ms=hook.occurred_at_ms,
    )


def outcome_from_log(hooks: Iterable[Webhook]) -> CallEvent | None:
    """Replay a call's webhooks as Telnyx recorded them (reconciliation): its outcome, or
    None if the log holds no hangup (nor a machine answer)."""
    answered_at: int | None = None
    machine: Webhook | None = None
    hangup: Webhook | None = None
    state: ClientState | None = None
    for hook in sorted(hooks, key=lambda h: h.occurred_at_ms or 0):
        state = state or hook.state
        if hook.event_type == ANSWERED:
            answered_at = hook.occurred_at_ms
        elif hook.is_machine:
            machine = hook
        elif hook.event_type == HANGUP:
            hangup = hook
            state = hook.state or state
    if state is None:
        return None
    if hangup is not None:
        return hangup_event(hangup, state, answered_at_ms=answered_at, machine=machine is not None)
    if machine is not None:
        return machine_event(machine, state)
    return None
