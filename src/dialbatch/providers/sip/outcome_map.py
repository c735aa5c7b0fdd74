"""What a SIP final response means for the call (the table in docs/providers.md, SIP)."""

from __future__ import annotations

from dataclasses import dataclass

from dialbatch.domain.outcomes import Outcome


@dataclass(frozen=True)
class Final:
    outcome: Outcome
    code: str | None
    detail: str | None


def for_failure(code: int, reason: str, *, heard_from_peer: bool) -> Final:
    """A non-2xx final response to our INVITE.

    sippy reports a transaction that timed out (no answer at all from the trunk) as a 408
    it made up itself; only a 408 that follows something heard from the trunk is the far
    end's "no answer".
    """
    text = f"SIP {code} {reason}".strip()
    if code in (486, 600):
        return Final(Outcome.BUSY, str(code), text)
    if code == 480 or (code == 408 and heard_from_peer):
        return Final(Outcome.NO_ANSWER, str(code), text)
    if code == 408:
        return Final(Outcome.FAILED, None, "no response from the SIP trunk")
    if 300 <= code < 400:
        return Final(Outcome.FAILED, str(code), f"{text} (redirects are not followed)")
    return Final(Outcome.FAILED, str(code), text)


def for_ring_timeout(ring_timeout_s: float, *, heard_from_peer: bool) -> Final:
    """Our ring timeout fired and we sent CANCEL (the far end answers 487)."""
    if not heard_from_peer:
        return Final(Outcome.FAILED, None, "no response from the SIP trunk")
    return Final(Outcome.NO_ANSWER, "487", f"rang {ring_timeout_s:g} s, CANCEL sent")
