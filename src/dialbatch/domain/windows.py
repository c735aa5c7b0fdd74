"""Calling windows: when, in the recipient's own time, a call may start.

The JSON shape (the ``callingWindow`` form field, and a workspace's default)::

    {
      "timezone": "recipient",                  # or a fixed IANA zone, "America/New_York"
      "days": {                                 # mon tue wed thu fri sat sun; a missing day
        "mon": [["09:00", "17:00"]],            #   is closed all day
        "fri": [["09:00", "12:00"], ["13:00", "17:00"]],
        "sat": [["22:00", "02:00"]]             # end <= start: crosses midnight into sunday
      },
      "skipDates": ["2026-12-25"]               # holidays: closed the whole local day
    }

A range is ``[start, end)`` in wall-clock time ``HH:MM`` (24 h; ``"24:00"`` allowed as an end).
``timezone: "recipient"`` (the default) evaluates the window in every candidate zone of the
number (its CSV ``timezone`` column, else phonenumbers' data): a call may start only when the
window is open in *every* zone, and a number with no known zone is never inside the window
(held back, never called on a guess). A fixed zone evaluates it in that zone only.

Daylight saving is read from the IANA database through :mod:`zoneinfo`, never from fixed
offsets. Local times that a clock change skips or repeats are resolved explicitly, always
towards calling less, never more:

* a time that does not exist (the hour skipped when clocks go forward) means the instant of
  the change: the first instant at which the wall clock reads that time or later;
* a range *start* at a time that happens twice (the hour repeated when clocks go back) means
  its second occurrence, and a range *end* its first. A window is therefore never open at an
  instant whose wall-clock time lies outside its ranges; it may stay shut during the second
  pass through the repeated hour.

A skip date closes its whole local day, including the part of an overnight range from the day
before that spills into it.

Every function takes the time as an argument; nothing here reads a clock.
"""

from __future__ import annotations

import functools
import json
import re
import zoneinfo
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime

__all__ = [
    "HORIZON_MS",
    "MAX_RANGES_PER_DAY",
    "MAX_SKIP_DATES",
    "RECIPIENT",
    "WEEKDAYS",
    "CallingWindow",
    "InvalidCallingWindow",
    "TimeRange",
    "closes_at",
    "is_known_zone",
    "is_open",
    "next_opening",
    "open_through",
    "parse_calling_window",
]

RECIPIENT = "recipient"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_RANGES_PER_DAY = 8
MAX_SKIP_DATES = 400
DAY_MS = 24 * 3600 * 1000
# How far ahead next_opening looks before it answers "never": a window whose every day in the
# coming year is a skip date, or whose zones never agree, does not open.
HORIZON_MS = 366 * DAY_MS

_FIELD = "callingWindow"
_KEYS = frozenset({"timezone", "days", "skipDates"})
_HHMM = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Names zoneinfo may know that are not a place's zone: host-dependent ("localtime"), "no zone",
# and the legacy fixed-offset abbreviations EST/MST/HST, which read like "Eastern time" but never
# observe daylight saving (21:00 EST is 22:00 in New York all summer).
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules", "Etc/Unknown", "EST", "MST", "HST"})
_MAX_ZONE_NAME = 64


class InvalidCallingWindow(ValueError):
    """The window is malformed; the message names the field and says how to fix it."""


@dataclass(frozen=True, order=True)
class TimeRange:
    """``[start, end)`` in minutes after local midnight; ``end <= start`` crosses midnight."""

    start: int
    end: int

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def to_json(self) -> list[str]:
        return [_hhmm(self.start), _hhmm(self.end)]


@dataclass(frozen=True)
class CallingWindow:
    """A validated window. ``timezone`` is None for "recipient" or a fixed IANA zone name."""

    days: tuple[tuple[TimeRange, ...], ...]  # 7 entries, Monday first
    skip_dates: frozenset[date] = frozenset()
    timezone: str | None = None

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ValueError("a calling window has exactly 7 days, Monday first")

    def __hash__(self) -> int:
        """Hashed once: windows key the per-day caches that every gate decision reads."""
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.days, self.skip_dates, self.timezone))
            object.__setattr__(self, "_hash", cached)
        return cached

    def zones(self, recipient_zones: Sequence[str] | None) -> tuple[str, ...]:
        """The zones this window is evaluated in for a number with these candidate zones."""
        if self.timezone is not None:
            return (self.timezone,)
        return tuple(recipient_zones or ())

    def to_json(self) -> dict[str, object]:
        days = {
            WEEKDAYS[i]: [r.to_json() for r in ranges]
            for i, ranges in enumerate(self.days)
            if ranges
        }
        return {
            "timezone": self.timezone or RECIPIENT,
            "days": days,
            "skipDates": [d.isoformat() for d in sorted(self.skip_dates)],
        }

    @classmethod
    def every_day(cls, start: str, end: str, *, timezone: str | None = None) -> CallingWindow:
        """The same range on all seven days (rule packs use it)."""
        return parse_calling_window(
            {"timezone": timezone or RECIPIENT, "days": {d: [[start, end]] for d in WEEKDAYS}}
        )


def is_known_zone(name: str) -> bool:
    """Whether ``name`` is an IANA zone this host's zoneinfo can load (not "localtime")."""
    return name in _available_zones()


@functools.cache
def _available_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() - _NOT_ZONES)


def parse_calling_window(raw: object) -> CallingWindow:
    """Validate the JSON form (a dict, or its JSON text) into a :class:`CallingWindow`."""
    if isinstance(raw, str):
        if len(raw) > 20_000:
            raise InvalidCallingWindow(f"{_FIELD} is too long")
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise InvalidCallingWindow(f"{_FIELD} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidCallingWindow(
            f'{_FIELD} must be a JSON object such as {{"days": {{"mon": [["09:00", "17:00"]]}}}}'
        )
    unknown = set(raw) - _KEYS
    if unknown:
        raise InvalidCallingWindow(
            f"unknown {_FIELD} fields: {sorted(map(str, unknown))}; allowed: {sorted(_KEYS)}"
        )
    timezone = _parse_timezone(raw.get("timezone", RECIPIENT))
    days = _parse_days(raw.get("days"))
    skip = _parse_skip_dates(raw.get("skipDates", []))
    return CallingWindow(days=days, skip_dates=skip, timezone=timezone)


def _parse_timezone(value: object) -> str | None:
    field = f"{_FIELD}.timezone"
    if not isinstance(value, str) or not value or len(value) > _MAX_ZONE_NAME:
        raise InvalidCallingWindow(f'{field} must be "recipient" or an IANA zone name')
    if value == RECIPIENT:
        return None
    if not is_known_zone(value):
        raise InvalidCallingWindow(
            f'{field} {value!r} is not a known IANA time zone (e.g. "America/New_York"),'
            ' nor "recipient"'
        )
    return value


def _parse_days(value: object) -> tuple[tuple[TimeRange, ...], ...]:
    field = f"{_FIELD}.days"
    if not isinstance(value, dict):
        raise InvalidCallingWindow(
            f'{field} is required: an object such as {{"mon": [["09:00", "17:00"]]}}'
        )
    days: list[tuple[TimeRange, ...]] = [() for _ in WEEKDAYS]
    for key, ranges_raw in value.items():
        name = key.lower() if isinstance(key, str) else key
        if name not in WEEKDAYS:
            raise InvalidCallingWindow(
                f"{field} has an unknown weekday {key!r}; use {', '.join(WEEKDAYS)}"
            )
        index = WEEKDAYS.index(name)
        if days[index]:
            raise InvalidCallingWindow(f"{field}.{name} is given twice")
        days[index] = _parse_ranges(f"{field}.{name}", ranges_raw)
    if not any(days):
        raise InvalidCallingWindow(f"{field} opens no range: the window would never open")
    return tuple(days)


def _parse_ranges(field: str, value: object) -> tuple[TimeRange, ...]:
    if not isinstance(value, list):
        raise InvalidCallingWindow(f'{field} must be a list of ranges such as [["09:00", "17:00"]]')
    if len(value) > MAX_RANGES_PER_DAY:
        raise InvalidCallingWindow(f"{field} has more than {MAX_RANGES_PER_DAY} ranges")
    ranges = []
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(item, list) or len(item) != 2:
            raise InvalidCallingWindow(f'{where} must be a pair ["HH:MM", "HH:MM"]')
        start, end = (_parse_hhmm(where, v) for v in item)
        if start == 24 * 60:
            raise InvalidCallingWindow(f"{where} cannot start at 24:00; start at 00:00")
        if start == end % (24 * 60) and not (start == 0 and end == 24 * 60):
            raise InvalidCallingWindow(
                f'{where} starts and ends at the same time; for a whole day use ["00:00", "24:00"]'
            )
        ranges.append(TimeRange(start, end))
    return tuple(sorted(ranges))


def _parse_hhmm(where: str, value: object) -> int:
    if not isinstance(value, str) or not _HHMM.fullmatch(value):
        raise InvalidCallingWindow(f"{where}: {value!r} is not a time HH:MM (00:00 to 24:00)")
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _parse_skip_dates(value: object) -> frozenset[date]:
    field = f"{_FIELD}.skipDates"
    if not isinstance(value, list):
        raise InvalidCallingWindow(f'{field} must be a list of dates such as ["2026-12-25"]')
    if len(value) > MAX_SKIP_DATES:
        raise InvalidCallingWindow(f"{field} has more than {MAX_SKIP_DATES} dates")
    out = set()
    for i, item in enumerate(value):
        if not isinstance(item, str) or not _ISO_DATE.fullmatch(item):
            raise InvalidCallingWindow(f"{field}[{i}]: {item!r} is not a date YYYY-MM-DD")
        try:
            out.add(date.fromisoformat(item))
        except ValueError as exc:
            raise InvalidCallingWindow(f"{field}[{i}]: {item!r} is not a date ({exc})") from exc
    return frozenset(out)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# --- evaluation ----------------------------------------------------------------------------

Windows = CallingWindow | Sequence[CallingWindow]


def is_open(window: Windows, zones: Sequence[str] | None, at_ms: int) -> bool:
    """Whether a call may start at ``at_ms``: every window open in every one of its zones.

    ``window`` may be one window or several (a batch's own and its profile's): all must be
    open. A recipient window with no candidate zone is never open (fail closed); an empty
    sequence of windows imposes no hours.
    """
    first = next(_openings(window, zones, at_ms), None)
    return first is not None and first[0] <= at_ms


def closes_at(window: Windows, zones: Sequence[str] | None, at_ms: int) -> int | None:
    """When the opening that contains ``at_ms`` ends (exclusive); None if closed at ``at_ms``.

    A claim whose dial would start at or after this instant must not dial. A window that
    stays open for the whole horizon answers ``at_ms + HORIZON_MS``.
    """
    first = next(_openings(window, zones, at_ms), None)
    if first is None or first[0] > at_ms:
        return None
    return first[1]


def open_through(window: Windows, zones: Sequence[str] | None, from_ms: int, to_ms: int) -> bool:
    """Whether a call may start at every instant of ``[from_ms, to_ms]``.

    The same answer as ``closes_at(window, zones, from_ms)`` being past ``to_ms``, but it
    looks only at ``[from_ms, to_ms]``: the gate asks this for every call it admits, and
    ``closes_at`` of a window that never closes walks a whole year (measured:
    bench/claim_windows.py, the 24 h window at 285 calls/s before this).
    """
    windows = (window,) if isinstance(window, CallingWindow) else tuple(window)
    if any(not w.zones(zones) for w in windows):
        return False  # a recipient window and no known zone: never open
    end = to_ms + 1
    for w in windows:
        for z in w.zones(zones):
            # Merged openings are separated by real gaps, so the span is covered by one.
            if not any(s <= from_ms and e >= end for s, e in _zone_openings(w, z, from_ms, end)):
                return False
    return True


def next_opening(
    window: Windows, zones: Sequence[str] | None, after_ms: int, *, min_open_ms: int = 0
) -> int | None:
    """The earliest instant >= ``after_ms`` at which a call may start, or None within a year.

    With ``min_open_ms`` the opening must also last that long from the instant returned (the
    time a dial needs between the decision and the provider's request), so a retry scheduled
    there lands inside the window rather than on its last millisecond.
    """
    need = max(min_open_ms, 1)
    for start, end in _openings(window, zones, after_ms):
        begin = max(start, after_ms)
        if end - begin >= need:
            return begin
    return None


def _openings(
    window: Windows, zones: Sequence[str] | None, from_ms: int
) -> Iterator[tuple[int, int]]:
    """Maximal common openings ``[start, end)`` that end after ``from_ms``, in order.

    Computed a chunk at a time (a short first chunk, since most questions are about now), and
    openings that run across a chunk boundary are joined, so each end is the real end.
    """
    windows = (window,) if isinstance(window, CallingWindow) else tuple(window)
    constraints = [(w, z) for w in windows for z in w.zones(zones)]
    if any(not w.zones(zones) for w in windows):
        return  # a recipient window and no known zone: never open
    horizon = from_ms + HORIZON_MS
    if not constraints:
        yield (from_ms, horizon)
        return
    pending: tuple[int, int] | None = None
    chunk_start, size = from_ms, 2 * DAY_MS
    while chunk_start < horizon:
        chunk_end = min(chunk_start + size, horizon)
        common = _zone_openings(*constraints[0], chunk_start, chunk_end)
        for w, z in constraints[1:]:
            if not common:
                break
            common = _intersect(common, _zone_openings(w, z, chunk_start, chunk_end))
        for start, end in common:
            if pending is not None and pending[1] >= start:
                pending = (pending[0], max(pending[1], end))
                continue
            if pending is not None:
                yield pending
            pending = (start, end)
        if pending is not None and pending[1] < chunk_end:
            yield pending
            pending = None
        chunk_start, size = chunk_end, 14 * DAY_MS
    if pending is not None:
        yield pending


def _zone_openings(
    window: CallingWindow, zone: str, from_ms: int, to_ms: int
) -> list[tuple[int, int]]:
    """The window's openings in one zone, clipped to ``[from_ms, to_ms)``, sorted and merged."""
    first = _local_ordinal(zone, from_ms) - 1  # an overnight range of the day before
    last = _local_ordinal(zone, to_ms)
    merged: list[tuple[int, int]] = []
    for ordinal in range(first, last + 1):
        for start, end in _day_openings(window, zone, ordinal):
            if end <= from_ms or start >= to_ms:
                continue
            start, end = max(start, from_ms), min(end, to_ms)
            if merged and merged[-1][1] >= start:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
    return merged


@functools.lru_cache(maxsize=1 << 14)
def _day_openings(window: CallingWindow, zone: str, ordinal: int) -> tuple[tuple[int, int], ...]:
    """The openings of the ranges that start on one local day, as instants, in start order.

    Local times map to instants in order (the rules for skipped and repeated times keep that
    true of starts), so consecutive days' lists concatenate in start order.
    """
    day = date.fromordinal(ordinal)
    skip = window.skip_dates
    if day in skip:
        return ()
    out = []
    for r in window.days[day.weekday()]:
        start = _wall_to_ms(zone, ordinal, r.start, False)
        if not r.crosses_midnight:
            end = _wall_to_ms(zone, ordinal, r.end, True)
        elif date.fromordinal(ordinal + 1) in skip:
            end = _wall_to_ms(zone, ordinal + 1, 0, True)
        else:
            end = _wall_to_ms(zone, ordinal + 1, r.end, True)
        if start < end:
            out.append((start, end))
    return tuple(out)


def _intersect(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


@functools.cache
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def _local_ordinal(zone: str, at_ms: int) -> int:
    return datetime.fromtimestamp(at_ms / 1000, _zone(zone)).date().toordinal()


def _offset_s(zone: str, at_s: int) -> float:
    offset = datetime.fromtimestamp(at_s, _zone(zone)).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset.total_seconds()


@functools.lru_cache(maxsize=1 << 16)
def _wall_to_ms(zone: str, ordinal: int, minute: int, is_end: bool) -> int:
    """The instant at which local wall time ``minute`` of local day ``ordinal`` begins.

    Resolves skipped and repeated local times as the module docstring says.
    """
    ordinal += minute // (24 * 60)
    minute %= 24 * 60
    day = date.fromordinal(ordinal)
    wall = datetime(day.year, day.month, day.day, minute // 60, minute % 60)
    zi = _zone(zone)
    first = int(wall.replace(tzinfo=zi, fold=0).timestamp())
    second = int(wall.replace(tzinfo=zi, fold=1).timestamp())
    if first == second:
        return first * 1000
    if first < second:  # happens twice (clocks went back): start late, end early
        return (first if is_end else second) * 1000
    # Never happens (clocks went forward): the change itself lies in (second, first].
    lo, hi = second, first
    before = _offset_s(zone, lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset_s(zone, mid) == before:
            lo = mid
        else:
            hi = mid
    return hi * 1000
