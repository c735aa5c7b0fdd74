"""Twilio's call statuses, translated once for both callbacks and reconciliation.

A status callback and a fetched Call resource say the same things with different field
names; both come through `translate`, so a call ends the same way however we learn of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.providers.base import CallProgress, ProviderEvent, Stage

# `queued` and `initiated` tell us nothing the engine does not know (it is dialing), and
# applying them would cost a write per call; they are acknowledged and dropped.
QUIET = frozenset({"queued", "initiated"})

PROGRESS: dict[str, Stage] = {
    "ringing": Stage.RINGING,
    "answered": Stage.ANSWERED,  # the event name; the status reads "in-progress"
    "in-progress": Stage.ANSWERED,
}

FINAL: dict[str, Outcome] = {
    "completed": Outcome.COMPLETED,
    "busy": Outcome.BUSY,
    "no-answer": Outcome.NO_ANSWER,
    "failed": Outcome.FAILED,
    "canceled": Outcome.CANCELED,
}

# AnsweredBy values that mean no person took the call (answering machine detection).
# Telnyx TeXML answers `machine` (or `human`, `not_sure`) with MachineDetection=Enable.
MACHINE = frozenset(
    {
        "machine",
        "machine_start",
        "machine_end_beep",
        "machine_end_silence",
        "machine_end_other",
        "fax",
    }
)


def is_machine(answered_by: str | None) -> bool:
    return (answered_by or "").strip().lower() in MACHINE


def translate(
    status: str,
    *,
    dial_key: str | None,
    call_sid: str | None,
    answered_by: str | None = None,
    duration: str | int | None = None,
    sip_code: str | None = None,
    error_code: str | None = None,
    at_ms: int | None = None,
    provider: str = "Twilio",
) -> ProviderEvent | None:
    """One Twilio status as our event; None for one that says nothing new (queued,
    initiated) or that we do not know. `provider` names who said it in the event's detail
    (`Twilio`, or `Telnyx TeXML` for the Twilio-compatible dialect)."""
    status = status.strip().lower()
    if status in QUIET:
        return None
    stage = PROGRESS.get(status)
    if stage is not None:
        return CallProgress(stage=stage, dial_key=dial_key, provider_call_id=call_sid, at_ms=at_ms)
    outcome = FINAL.get(status)
    if outcome is None:
        return None
    if outcome is Outcome.COMPLETED and is_machine(answered_by):
        outcome = Outcome.VOICEMAIL
    talked = outcome in (Outcome.COMPLETED, Outcome.VOICEMAIL)
    return CallEvent(
        outcome=outcome,
        dial_key=dial_key,
        provider_call_id=call_sid,
        duration_s=_seconds(duration) if talked else None,
        ended_at=at_ms,
        provider_code=sip_code or error_code or None,
        detail=_detail(outcome, status, provider, error_code, sip_code, answered_by),
    )


def from_callback(
    params: Mapping[str, str], dial_key: str | None, *, provider: str = "Twilio"
) -> ProviderEvent | None:
    """A status callback's form fields (already verified) as our event."""
    return translate(
        params.get("CallStatus", ""),
        dial_key=dial_key,
        call_sid=params.get("CallSid") or None,
        answered_by=params.get("AnsweredBy"),
        duration=params.get("CallDuration"),
        sip_code=params.get("SipResponseCode") or None,
        error_code=params.get("ErrorCode") or None,
        at_ms=rfc2822_ms(params.get("Timestamp")),
        provider=provider,
    )


def rfc2822_ms(value: str | None) -> int | None:
    """Twilio's `Timestamp` ("Wed, 18 Mar 2015 20:30:00 +0000") in epoch milliseconds;
    Telnyx TeXML's ISO 8601 one ("2024-01-15T10:30:00Z") too."""
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp() * 1000)
    except (TypeError, ValueError):
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _seconds(value: str | int | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _detail(
    outcome: Outcome,
    status: str,
    provider: str,
    error_code: str | None,
    sip_code: str | None,
    answered_by: str | None,
) -> str | None:
    """What the provider said, for the error beside the outcome's words
    (`No answer (Twilio status no-answer, SIP 480)`, domain.retry.final_reason). A failure's
    detail leads the error on its own, so it says it failed."""
    if outcome is Outcome.COMPLETED:
        return None
    if outcome is Outcome.FAILED:
        if error_code:
            return f"Call failed - {provider} error {error_code}"
        if sip_code:
            return f"Call failed - SIP {sip_code}"
        return None
    if outcome is Outcome.VOICEMAIL:
        return f"{provider} AnsweredBy {(answered_by or '').strip().lower()}"
    parts = [f"{provider} status {status}"]
    if sip_code:
        parts.append(f"SIP {sip_code}")
    return ", ".join(parts)
