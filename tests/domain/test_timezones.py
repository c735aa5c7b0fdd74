"""Candidate zones of a number: the library's answer, cached, never a guess."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import timezone as pn_timezone
from phonenumbers.phonenumber import PhoneNumber

from dialbatch.domain import timezones
from dialbatch.domain.timezones import (
    InvalidTimeZone,
    parse_timezone_column,
    recipient_zones,
    zones_for,
)


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


def test_an_invalid_number_does_not_decide_for_its_area_code() -> None:
    timezones.clear_caches()
    assert zones_for("+12121234567") == ()  # exchanges do not start with 1: invalid
    assert zones_for("+12125550123") == ("America/New_York",)


def test_a_candidate_the_zone_database_lacks_drops_the_whole_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timezones, "is_known_zone", lambda name: name != "America/Boise")
    assert timezones._lookup("+12085550123") == ((), True)


def _library(number: PhoneNumber) -> tuple[str, ...]:
    zones = tuple(pn_timezone.time_zones_for_number(number))
    return () if zones == ("Etc/Unknown",) else zones


def _check_against_library(digits_list: list[str]) -> int:
    """Compare cached answers with the library's, warming each key with another number first."""
    checked = 0
    for digits in digits_list:
        number = PhoneNumber(country_code=1, national_number=int(digits))
        if not phonenumbers.is_valid_number(number):
            continue
        assert zones_for(f"+1{digits}") == _library(number), digits
        checked += 1
    return checked


def test_cached_answers_equal_the_librarys_for_many_nanp_numbers() -> None:
    """Random numbers of the whole plan, in an order that shares cache keys between them.

    (A full sweep of every valid area code + exchange, two numbers each, found no difference:
    723k numbers. This test repeats a random sample of it.)
    """
    rng = random.Random(10)
    timezones.clear_caches()
    digits = [
        f"{rng.randrange(200, 1000)}{rng.randrange(200, 1000)}{rng.randrange(10000):04d}"
        for _ in range(8000)
    ]
    assert _check_against_library(digits) > 4000


@pytest.mark.parametrize("area", ["242", "876", "809", "829", "849", "268", "208", "523", "800"])
def test_areas_whose_answer_varies_by_exchange_or_type(area: str) -> None:
    """Caribbean mobiles (not geographic), Idaho's split, personal and toll-free numbers."""
    rng = random.Random(int(area))
    timezones.clear_caches()
    digits = [f"{area}{x}{rng.randrange(10000):04d}" for x in range(200, 1000) for _ in range(2)]
    assert _check_against_library(digits) > 0


def test_caribbean_keys_include_the_exchange_and_us_keys_do_not() -> None:
    assert timezones._nanp_key("+12425550123") == "+1242555"
    assert timezones._nanp_key("+12125550123") == "+1212"
    assert timezones._nanp_key("+12082010123") == "+1208201"


def test_timezone_column_values() -> None:
    assert parse_timezone_column(" America/New_York ") == "America/New_York"
    assert parse_timezone_column("") is None
    assert parse_timezone_column("   ") is None
    for bad in ("EST", "Eastern", "-05:00", "America/Gotham", "localtime", "x" * 500):
        with pytest.raises(InvalidTimeZone, match="is not an IANA time zone"):
            parse_timezone_column(bad)


def test_the_rows_timezone_column_wins_over_the_number() -> None:
    assert recipient_zones("+12085550123", "America/Boise") == ("America/Boise",)
    assert recipient_zones("+12085550123", " ") == ("America/Boise", "America/Los_Angeles")
    assert recipient_zones("+12085550123") == ("America/Boise", "America/Los_Angeles")
    assert recipient_zones("+15555550123", "America/Chicago") == ("America/Chicago",)
    with pytest.raises(InvalidTimeZone):
        recipient_zones("+12125550123", "EST")
