"""The time zones a recipient may be in: from the CSV's ``timezone`` column or the number.

``phonenumbers`` knows the candidate IANA zones of a number by its prefix (for the North
American plan, by area code and sometimes exchange). Some numbers have several candidates
(area code 208 is split between Mountain and Pacific time; a toll-free number could be
anywhere in the plan); the gate then requires the window to be open in every one of them.
A number the data does not place (``Etc/Unknown``) has no zones and is never called on a
guess. Neither is a number whose candidate zone this host's IANA database does not know:
dropping that candidate would widen the window, so the whole answer becomes "no zones".

Ingest asks this for every row (300k rows in seconds), and ``phonenumbers`` parses a number
in about 20 microseconds, so answers are cached by prefix: for +1 numbers by the first six
national digits (area code and exchange), the longest prefix the data distinguishes in that
plan; tests/domain/test_timezones.py checks the cached answer against the library's over many
numbers. Other numbers are cached whole, in a bounded cache.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import timezone as _pn_timezone

from dialbatch.domain.windows import is_known_zone

__all__ = ["InvalidTimeZone", "parse_timezone_column", "zones_for"]

UNKNOWN = "Etc/Unknown"
_NANP_KEY_LEN = len("+1") + 6  # area code and exchange: phonenumbers' longest +1 prefix
_MAX_OTHER_CACHE = 100_000
_MAX_ZONE_NAME = 64

_nanp_cache: dict[str, tuple[str, ...]] = {}
_other_cache: dict[str, tuple[str, ...]] = {}


class InvalidTimeZone(ValueError):
    """A ``timezone`` value that is not an IANA zone name; the message says what to write."""


def zones_for(e164: str) -> tuple[str, ...]:
    """Candidate IANA zones of a valid E.164 number; empty when unknown (never a guess)."""
    if len(e164) == 12 and e164.startswith("+1"):
        key = e164[:_NANP_KEY_LEN]
        zones = _nanp_cache.get(key)
        if zones is None:
            zones = _nanp_cache[key] = _lookup(e164)
        return zones
    zones = _other_cache.get(e164)
    if zones is None:
        if len(_other_cache) >= _MAX_OTHER_CACHE:
            _other_cache.clear()
        zones = _other_cache[e164] = _lookup(e164)
    return zones


def _lookup(e164: str) -> tuple[str, ...]:
    """The library's answer, uncached, with unknown zones turned into "no zones"."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    zones = tuple(_pn_timezone.time_zones_for_number(number))
    if not zones or UNKNOWN in zones or not all(is_known_zone(z) for z in zones):
        return ()
    return zones


def parse_timezone_column(value: str) -> str | None:
    """Validate one CSV ``timezone`` cell: an IANA zone name, or empty for "from the number".

    Only exact IANA names are accepted (``America/New_York``, not ``EST`` or ``-05:00``):
    an abbreviation or an offset does not say when daylight saving applies.
    """
    text = value.strip()
    if not text:
        return None
    if len(text) > _MAX_ZONE_NAME or not is_known_zone(text):
        shown = text if len(text) <= _MAX_ZONE_NAME else text[:_MAX_ZONE_NAME] + "..."
        raise InvalidTimeZone(
            f"timezone {shown!r} is not an IANA time zone; write a name such as"
            " America/New_York or Europe/London, or leave it empty to infer it from the number"
        )
    return text
