"""Parsing `scheduledAt`: UTC ISO 8601 as the contract says, with "Z" or an offset.

A time without a zone is refused rather than guessed: a wrong guess calls people at the
wrong hour.
"""

from __future__ import annotations

from datetime import UTC, datetime

MAX_SCHEDULE_AHEAD_MS = 366 * 24 * 3600 * 1000


class InvalidSchedule(ValueError):
    pass


def parse_scheduled_at(
    raw: str,
    now_ms: int,
    *,
    name: str = "scheduledAt",
    max_ahead_ms: int | None = MAX_SCHEDULE_AHEAD_MS,
) -> int:
    """Milliseconds since the epoch; a past time means "start now". `name` is the field the
    errors name (the same rules read a suppression's `expiresAt`)."""
    text = raw.strip()
    example = "an ISO 8601 time such as 2025-01-31T09:00:00Z"
    if not text or len(text) > 40:
        raise InvalidSchedule(f"{name} must be {example}")
    if text.isdigit():
        value = int(text)  # extension: epoch milliseconds, the API's own unit
    else:
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError as exc:
            raise InvalidSchedule(f"{name} {raw!r} is not {example}") from exc
        if parsed.tzinfo is None:
            raise InvalidSchedule(
                f"{name} {raw!r} has no time zone; add Z for UTC or an offset like +02:00"
            )
        try:
            value = int(parsed.astimezone(UTC).timestamp() * 1000)
        except (OverflowError, ValueError) as exc:  # the ends of the calendar
            raise InvalidSchedule(f"{name} {raw!r} is out of range") from exc
    if max_ahead_ms is not None and value > now_ms + max_ahead_ms:
        raise InvalidSchedule(f"{name} is more than a year ahead")
    return max(value, 0)
