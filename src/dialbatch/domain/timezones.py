"""The time zones a recipient may be in: from the CSV's ``timezone`` column or the number.

``phonenumbers`` knows the candidate IANA zones of a number by its prefix (for the North
American plan, by area code and sometimes exchange). Some numbers have several candidates
(area code 208 is split between Mountain and Pacific time; a toll-free number could be
anywhere in the plan); the gate then requires the window to be open in every one of them.
A number the data does not place (``Etc/Unknown``) has no zones and is never called on a
guess. Neither is a number whose candidate zone this host's IANA database does not know:
dropping that candidate would widen the window, so the whole answer becomes "no zones".

Ingest asks this for every row (300k rows in seconds), and ``phonenumbers`` takes about 0.2 ms
a number (its number-type check is the slow part), so answers are cached by the prefix that
decides them. For +1 numbers the library's answer is its zone table's entry for the longest
matching prefix (the area code, sometimes area code and exchange), unless the number is not of
a geographic type; within the US, Canada and the other +1 regions whose mobile and fixed-line
numbers share one pattern, the type does not vary inside such a prefix, so the cache key is that
prefix (about 2,000 keys cover the whole plan). In the +1 regions whose mobile numbers differ
from their fixed lines (most of the Caribbean), mobiles are not geographic and the type varies
by exchange, so the key is area code and exchange. A sweep of every valid area code and
exchange of the plan (phonenumbers 9.0) found the cached answer equal to the library's
everywhere; tests/domain/test_timezones.py repeats it on samples. Other numbers are cached
whole, in a bounded cache.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import phonenumberutil as _util
from phonenumbers import timezone as _pn_timezone
from phonenumbers.phonemetadata import PhoneMetadata
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from dialbatch.domain.windows import is_known_zone

__all__ = [
    "InvalidTimeZone",
    "call_zones",
    "clear_caches",
    "parse_timezone_column",
    "recipient_zones",
    "zones_for",
]

UNKNOWN = "Etc/Unknown"
_EXCHANGE_KEY_LEN = len("+1") + 6  # area code and exchange
_MIN_TABLE_PREFIX = 4  # "1" + area code: never key on less than the area code
_MAX_OTHER_CACHE = 100_000
_MAX_ZONE_NAME = 64

_nanp_cache: dict[str, tuple[str, ...]] = {}
_by_exchange: dict[str, bool] = {}  # area code -> whether its key must include the exchange
# Area codes with longer entries in the zone table (split by exchange, like Idaho's 208).
_SPLIT_AREAS = frozenset(k[1:4] for k in TIMEZONE_DATA if k.startswith("1") and len(k) > 4)
# The fast path: area codes whose every valid number has the same zones.
_area_zones: dict[str, tuple[str, ...]] = {}
_other_cache: dict[str, tuple[str, ...]] = {}


class InvalidTimeZone(ValueError):
    """A ``timezone`` value that is not an IANA zone name; the message says what to write."""


def zones_for(e164: str) -> tuple[str, ...]:
    """Candidate IANA zones of a valid E.164 number; empty when unknown (never a guess)."""
    if len(e164) == 12 and e164.startswith("+1"):
        zones = _area_zones.get(e164[2:5])
        if zones is not None:
            return zones
        key = _nanp_key(e164)
        zones = _nanp_cache.get(key)
        if zones is None:
            zones, valid = _lookup(e164)
            if not valid:
                return zones  # an invalid number says nothing about its neighbours
            _nanp_cache[key] = zones
            if len(key) == _MIN_TABLE_PREFIX + 1 and key[2:] not in _SPLIT_AREAS:
                _area_zones[key[2:]] = zones  # the area code alone decides
        return zones
    zones = _other_cache.get(e164)
    if zones is None:
        if len(_other_cache) >= _MAX_OTHER_CACHE:
            _other_cache.clear()
        zones = _other_cache[e164] = _lookup(e164)[0]
    return zones


def recipient_zones(e164: str, timezone_cell: str | None = None) -> tuple[str, ...]:
    """The zones a recipient-local window is evaluated in for one CSV row.

    The row's ``timezone`` column wins (validated with :func:`parse_timezone_column`, so an
    unknown name raises :class:`InvalidTimeZone` for ingest to report as a row error); without
    one, the number's candidate zones.
    """
    if timezone_cell is not None:
        zone = parse_timezone_column(timezone_cell)
        if zone is not None:
            return (zone,)
    return zones_for(e164)


def call_zones(e164: str, timezone: str | None) -> tuple[str, ...]:
    """The zones of a stored call: its own ``timezone`` (validated at ingest) when it has
    one, else the number's candidate zones."""
    return (timezone,) if timezone else zones_for(e164)


def clear_caches() -> None:
    """Forget every cached answer (for tests and benchmarks)."""
    for cache in (_nanp_cache, _by_exchange, _area_zones, _other_cache):
        cache.clear()


def _nanp_key(e164: str) -> str:
    """The prefix of a +1 number that decides its zones (see the module docstring)."""
    area = e164[2:5]
    by_exchange = _by_exchange.get(area)
    if by_exchange is None:
        by_exchange = _by_exchange[area] = _types_vary_by_exchange(area)
    if by_exchange:
        return e164[:_EXCHANGE_KEY_LEN]
    if area not in _SPLIT_AREAS:
        return e164[: _MIN_TABLE_PREFIX + 1]
    digits = e164[1:]
    for length in range(TIMEZONE_LONGEST_PREFIX, _MIN_TABLE_PREFIX - 1, -1):
        if digits[:length] in TIMEZONE_DATA:
            return e164[: length + 1]
    return e164[: _MIN_TABLE_PREFIX + 1]


def _types_vary_by_exchange(area: str) -> bool:
    """Whether the +1 region of this area code tells mobiles from fixed lines.

    A region is chosen by its leading digits (at most four in the metadata: "8001" for the
    Dominican Republic); the US and Canada have none and share one mobile/fixed pattern.
    """
    candidates = [area + d for d in "0123456789"]
    for region in _util.COUNTRY_CODE_TO_REGION_CODE[1]:
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is None or not metadata.leading_digits:
            continue
        if metadata.same_mobile_and_fixed_line_pattern:
            continue
        pattern = re.compile(metadata.leading_digits)
        if any(pattern.match(c) for c in candidates):
            return True
    return False


def _lookup(e164: str) -> tuple[tuple[str, ...], bool]:
    """The library's answer, uncached, with unknown zones turned into "no zones".

    Also whether the number is valid: only a valid number's answer holds for its prefix.
    """
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return (), False
    zones = tuple(_pn_timezone.time_zones_for_number(number))
    if not zones or UNKNOWN in zones:
        # The library answers "unknown" for every invalid number; ask only then.
        return (), bool(phonenumbers.is_valid_number(number))
    if not all(is_known_zone(z) for z in zones):
        return (), True
    return zones, True


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
