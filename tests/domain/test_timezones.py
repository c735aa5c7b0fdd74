"""Candidate zones of a number: the library's answer, cached, never a guess."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import timezone as pn_timezone
from phonenumbers.phonenumber import PhoneNumber

from dialbatch.domain import timezones
from dialbatch.domain.timezones import InvalidTimeZone, parse_timezone_column, zones_for


@pytest.mark.parametrize(
    ("number", "zones"),
    [
        ("+12125550123", ("America/New_York",)),
        ("+12135550123", ("America/Los_Angeles",)),
        ("+13055550123", ("America/New_York",)),
        ("+14055550123", ("America/Chicago",)),
        ("+12085550123", ("America/Boise", "America/Los_Angeles")),  # Idaho: two zones
        (
            "+447911123456",
            ("Europe/Guernsey", "Europe/Isle_of_Man", "Europe/Jersey", "Europe/London"),
        ),
        ("+4930123456", ("Europe/Berlin",)),
    ],
)
def test_zones_of_numbers(number: str, zones: tuple[str, ...]) -> None:
    assert zones_for(number) == zones
    assert zones_for(number) == zones  # cached answer is the same


def test_unknown_is_no_zone_not_a_guess() -> None:
    assert pn_timezone.time_zones_for_number(phonenumbers.parse("+15555550123")) == ("Etc/Unknown",)
    assert zones_for("+15555550123") == ()
    assert zones_for("+1") == ()
    assert zones_for("not a number") == ()


def test_a_candidate_the_zone_database_lacks_drops_the_whole_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timezones, "is_known_zone", lambda name: name != "America/Boise")
    assert timezones._lookup("+12085550123") == ()


def test_cached_answers_equal_the_librarys_for_many_nanp_numbers() -> None:
    """The cache key for +1 numbers is area code + exchange; the library agrees everywhere.

    (A full sweep of every valid area code + exchange, four numbers each, found no difference:
    361,495 prefixes. This test repeats a random sample of it.)
    """
    rng = random.Random(10)
    timezones._nanp_cache.clear()
    checked = 0
    while checked < 5000:
        digits = f"{rng.randrange(200, 1000)}{rng.randrange(200, 1000)}{rng.randrange(10000):04d}"
        number = PhoneNumber(country_code=1, national_number=int(digits))
        if not phonenumbers.is_valid_number(number):
            continue
        expected = pn_timezone.time_zones_for_number(number)
        expected = () if expected == ("Etc/Unknown",) else tuple(expected)
        # Warm the cache with a neighbour of the same prefix, then ask for this number.
        neighbour = f"+1{digits[:6]}{(int(digits[6:]) + 1) % 10000:04d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(neighbour)):
            zones_for(neighbour)
        assert zones_for(f"+1{digits}") == expected, digits
        checked += 1


def test_timezone_column_values() -> None:
    assert parse_timezone_column(" America/New_York ") == "America/New_York"
    assert parse_timezone_column("") is None
    assert parse_timezone_column("   ") is None
    for bad in ("EST", "Eastern", "-05:00", "America/Gotham", "localtime", "x" * 500):
        with pytest.raises(InvalidTimeZone, match="is not an IANA time zone"):
            parse_timezone_column(bad)
