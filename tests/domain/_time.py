"""Instants written as local wall-clock times, for the gate's tests."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from dialbatch.domain.clock import to_ms

NEW_YORK = "America/New_York"
LOS_ANGELES = "America/Los_Angeles"
CHICAGO = "America/Chicago"
LONDON = "Europe/London"
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def local(zone: str, *parts: int, fold: int = 0) -> int:
    """Epoch ms of the wall-clock time ``parts`` (y, m, d, h, mi, s, us) in ``zone``."""
    return to_ms(datetime(*parts, tzinfo=ZoneInfo(zone), fold=fold))  # type: ignore[misc]


def utc(*parts: int) -> int:
    return local("UTC", *parts)


def wall(zone: str, at_ms: int) -> datetime:
    """The naive wall-clock time of an instant in ``zone``."""
    return datetime.fromtimestamp(at_ms / 1000, ZoneInfo(zone)).replace(tzinfo=None)
