"""A recipient's consent record: the CSV's ``consent_basis`` and ``consent_at`` columns.

An AI voice is an "artificial voice" under the TCPA (FCC 24-17), so such calls need prior
express consent; a team keeps its proof of it per contact. dialbatch keeps the record on the
call (never in ``metadata``, which goes to the agent) and, when ``requireConsent`` is on,
refuses rows without one. It does not judge the basis: any non-empty text is a basis.

``consent_at`` is an ISO 8601 date-time with ``Z`` or an offset (a time without a zone is
refused, as for ``scheduledAt``: a guess could move it by a day), or epoch milliseconds.
A consent given in the future is refused: it is a typo, or a record that does not hold yet.
"""

from __future__ import annotations

from datetime import UTC, datetime

BASIS_COLUMN = "consent_basis"
AT_COLUMN = "consent_at"
MAX_BASIS_CHARS = 500
# Room for clocks that disagree a little (the CSV's author's and ours).
FUTURE_SLACK_MS = 5 * 60 * 1000
MISSING = "no consent: consent_basis and consent_at are required because requireConsent is on"
_EXAMPLE = "an ISO 8601 date-time such as 2025-01-31T09:00:00Z"


class InvalidConsent(ValueError):
    """A consent cell that cannot be kept; the message says what to write."""


def parse_basis(value: str) -> str | None:
    """The basis as kept (trimmed), None when empty."""
    text = value.strip()
    if len(text) > MAX_BASIS_CHARS:
        raise InvalidConsent(f"consent_basis is longer than {MAX_BASIS_CHARS} characters")
    return text or None


def parse_at(value: str, now_ms: int) -> int | None:
    """Epoch milliseconds of a ``consent_at`` cell, None when empty."""
    text = value.strip()
    if not text:
        return None
    if len(text) > 40:
        raise InvalidConsent(f"consent_at must be {_EXAMPLE}")
    if text.isdigit():
        at = int(text)
    else:
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise InvalidConsent(f"consent_at {text!r} is not {_EXAMPLE}") from None
        if parsed.tzinfo is None:
            raise InvalidConsent(
                f"consent_at {text!r} has no time zone; add Z for UTC or an offset like +02:00"
            )
        try:
            at = int(parsed.astimezone(UTC).timestamp() * 1000)
        except (OverflowError, ValueError):
            raise InvalidConsent(f"consent_at {text!r} is out of range") from None
    if at > now_ms + FUTURE_SLACK_MS:
        raise InvalidConsent(f"consent_at {text!r} is in the future")
    return at
