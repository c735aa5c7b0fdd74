"""Phone normalisation: E.164 out, clear reasons for what is refused."""

from __future__ import annotations

import pytest

from dialbatch.domain.phone import InvalidPhoneNumber, PhoneNormalizer, is_known_region


def reason(raw: str, region: str | None = None) -> str:
    with pytest.raises(InvalidPhoneNumber) as caught:
        PhoneNormalizer(region).normalize(raw)
    return caught.value.reason


@pytest.mark.parametrize(
    "raw",
    [
        "+14155550123",
        "+1 415 555 0123",
        "+1 (415) 555-0123",
        "+1.415.555.0123",
        "  +14155550123  ",
        "tel:+1-415-555-0123",
    ],
)
def test_international_input_becomes_e164(raw: str) -> None:
    assert PhoneNormalizer().normalize(raw) == "+14155550123"


@pytest.mark.parametrize(
    ("region", "raw", "e164"),
    [
        ("US", "(415) 555-0123", "+14155550123"),
        ("US", "1 415 555 0123", "+14155550123"),
        ("GB", "07400 123456", "+447400123456"),
        ("DE", "030 123456", "+4930123456"),
        ("IT", "06 1234 5678", "+390612345678"),  # Italian leading zero kept
        ("IN", "98765 43210", "+919876543210"),
        ("AU", "0412 345 678", "+61412345678"),
        ("DE", "0049 30 123456", "+4930123456"),  # international dialling prefix
    ],
)
def test_national_input_uses_the_default_region(region: str, raw: str, e164: str) -> None:
    assert PhoneNormalizer(region).normalize(raw) == e164


def test_a_number_with_a_country_code_ignores_the_default_region() -> None:
    assert PhoneNormalizer("DE").normalize("+44 (0)7400 123456") == "+447400123456"


def test_number_without_plus_and_without_default_region_says_what_to_do() -> None:
    # What Excel leaves of "+14155550123": nothing is guessed.
    text = reason("14155550123")
    assert "+" in text
    assert "defaultCountry" in text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc", "not a phone number"),
        ("+1 415 555 012", "too short for +1"),
        ("+1 415 555 01234", "too long for +1"),
        ("+1 099 555 0123", "not a valid number for +1"),
        ("+44 7400 12345", "not a valid number for +44"),  # no region of +44 claims it
        ("+49 30 12", "not a valid number for DE"),
        ("+33 9 00 00 00 0", "too short for FR"),
        ("+999 1234567", "unknown country calling code"),
        ("+800 1234 567", "too short for +800"),
        ("+" + "1" * 70, "too long (over 64 characters)"),
    ],
)
def test_invalid_numbers_have_readable_reasons(raw: str, expected: str) -> None:
    assert reason(raw) == expected


def test_invalid_for_the_default_region() -> None:
    assert reason("(415) 555-012", "US") == "too short for +1"
    assert reason("01 23 45 67", "FR") == "too short for FR"


def test_extension_is_dropped_as_phonenumbers_e164_does() -> None:
    assert PhoneNormalizer().normalize("+1 415 555 0123 ext 12") == "+14155550123"


def test_invalid_phone_number_is_a_value_error_with_the_reason_as_message() -> None:
    error = InvalidPhoneNumber("too short")
    assert isinstance(error, ValueError)
    assert str(error) == "too short"


def test_default_region_is_checked_and_upper_cased() -> None:
    assert PhoneNormalizer("us").default_region == "US"
    assert PhoneNormalizer().default_region is None
    for bad in ("XX", "USA", "", "001"):
        with pytest.raises(ValueError, match="unknown region"):
            PhoneNormalizer(bad)


def test_is_known_region() -> None:
    assert is_known_region("GB")
    assert is_known_region("gb")
    assert not is_known_region("ZZ")
    assert not is_known_region("001")
    assert not is_known_region("")
