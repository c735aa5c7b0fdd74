"""Phone numbers to E.164: exactly as strict as ``phonenumbers``, several times faster.

Ingest validates every row of an upload and ``phonenumbers`` is its bottleneck. Most of the
time of ``parse`` goes to a regex-heavy front end (RFC 3966 context, extensions, vanity letters,
viability) that plain input such as ``+14155550123`` or ``(415) 555-0123`` never needs: for text
made only of ASCII digits, at most one ``+`` before them and the separators `` ().-``, that front
end reduces to "keep the digits". :class:`PhoneNormalizer` replays the rest of ``parse`` and
``is_valid_number`` on those digits with precompiled per-country checks, calling the library's
own helpers for the rare branches (national prefix stripping), and hands everything else
(letters, extensions, international dialling prefixes, unknown country codes) to ``phonenumbers``
itself. The result is the reference's result for every input; tests/domain/
test_phone_equivalence.py checks that over more than 200k inputs.

Deliberately stricter than the library: empty input and input longer than 64 characters are
invalid. Nothing guesses a missing "+" (Excel strips it): a national number without a default
region is invalid, with a reason that says to add the "+" or to set a default country.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import phonenumbers
from phonenumbers import phonenumberutil as _util
from phonenumbers.phonemetadata import PhoneMetadata, PhoneNumberDesc

__all__ = ["MAX_INPUT_LENGTH", "InvalidPhoneNumber", "PhoneNormalizer", "is_known_region"]

MAX_INPUT_LENGTH = 64

_NON_GEO = "001"
_NO_COUNTRY_CODE = (
    "no country code: write the number with + and its country code (e.g. +14155550123),"
    " or set defaultCountry"
)
_MIN_NSN, _MAX_NSN = 2, 17  # phonenumbers' _MIN_LENGTH_FOR_NSN and _MAX_LENGTH_FOR_NSN
# Results of _test_number_length after which parse keeps the national prefix in the number.
_KEEP_PREFIX = frozenset(
    {
        _util.ValidationResult.TOO_SHORT,
        _util.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
        _util.ValidationResult.INVALID_LENGTH,
    }
)
# Text whose parse front end only strips separators: optional "+" before all digits.
_PLAIN_FORM = re.compile(r"[ ().\-]*\+?[ ().\-]*[0-9][0-9 ().\-]*")
_DROP_SEPARATORS = str.maketrans("", "", " ().-+")
_COUNTRY_CODES = {str(code): code for code in _util.COUNTRY_CODE_TO_REGION_CODE}


class InvalidPhoneNumber(ValueError):
    """The input is not a valid phone number; ``reason`` says why, for a person to read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_known_region(code: str) -> bool:
    """Whether ``code`` is an ISO 3166 alpha-2 region that phonenumbers has metadata for."""
    return code.upper() in _util.SUPPORTED_REGIONS


class PhoneNormalizer:
    """Validates phone numbers and returns them in E.164 form (``+14155550123``).

    ``default_region`` (case-insensitive, upper-cased) is used for numbers written without a
    country code, exactly as ``phonenumbers.parse(raw, default_region)`` uses it.
    """

    def __init__(self, default_region: str | None = None) -> None:
        if default_region is not None:
            if not is_known_region(default_region):
                raise ValueError(
                    f"unknown region {default_region!r}: expected an ISO 3166 alpha-2 code"
                    " such as US or GB"
                )
            default_region = default_region.upper()
        self.default_region = default_region
        self._plan = None if default_region is None else _region_plan(default_region)

    def normalize(self, raw: str) -> str:
        """Return ``raw`` as E.164, or raise :class:`InvalidPhoneNumber` with the reason."""
        text = raw.strip()
        if not text:
            raise InvalidPhoneNumber("empty")
        if len(raw) > MAX_INPUT_LENGTH:
            raise InvalidPhoneNumber(f"too long (over {MAX_INPUT_LENGTH} characters)")
        e164 = _fast_e164(text, self._plan)
        return _reference_e164(raw, self.default_region) if e164 is None else e164


# --- the reference path: phonenumbers itself, which also words every reason -------------------


def _reference_e164(raw: str, region: str | None) -> str:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(_parse_error_reason(exc, raw, region)) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(_invalid_reason(number))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse_error_reason(
    exc: phonenumbers.NumberParseException, raw: str, region: str | None
) -> str:
    kind = exc.error_type
    if kind == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
        start = _util._VALID_START_CHAR_PATTERN.search(raw)
        if region is None and start is not None and start.group() not in _util._PLUS_CHARS:
            return _NO_COUNTRY_CODE
        return "unknown country calling code"
    if kind in (
        phonenumbers.NumberParseException.TOO_SHORT_NSN,
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD,
    ):
        return "too short"
    if kind == phonenumbers.NumberParseException.TOO_LONG:
        return "too long"
    return "not a phone number"


def _invalid_reason(number: phonenumbers.PhoneNumber) -> str:
    code = number.country_code or 0
    region = phonenumbers.region_code_for_number(number)
    possible = phonenumbers.is_possible_number_with_reason(number)
    return _not_valid_reason(code, region, possible)


def _not_valid_reason(code: int, region: str | None, possible: int) -> str:
    """Why a parsed number is not valid; ``possible`` is ``is_possible_number_with_reason``."""
    where = region if region and region != _NON_GEO else f"+{code}"
    if possible == _util.ValidationResult.TOO_SHORT:
        return f"too short for {where}"
    if possible == _util.ValidationResult.TOO_LONG:
        return f"too long for {where}"
    return f"not a valid number for {where}"


# --- the fast path ---------------------------------------------------------------------------


def _fast_e164(text: str, region: _Plan | None) -> str | None:
    """What ``parse`` + ``is_valid_number`` + E.164 formatting give for plain-form ``text``.

    Returns None to leave the number to phonenumbers: not plain form, or a rare branch.
    Raises :class:`InvalidPhoneNumber` with the reason the reference path would give.
    """
    if text[0] == "+" and text[1:].isdigit() and text.isascii():
        plus, digits = True, text[1:]
    elif text.isdigit() and text.isascii():
        plus, digits = False, text
    elif _PLAIN_FORM.fullmatch(text):
        plus, digits = "+" in text, text.translate(_DROP_SEPARATORS)
    else:
        return None
    if len(digits) < 3:  # parse's viability test differs for 2 digits; leave it the library
        return None
    if plus:
        # _extract_country_code: the shortest known code of one to three leading digits
        code = (
            _COUNTRY_CODES.get(digits[:1])
            or _COUNTRY_CODES.get(digits[:2])
            or _COUNTRY_CODES.get(digits[:3])
        )
        if code is None:  # parse retries without the "+": rare, leave it to the library
            return None
        country = _country(code)
        nsn = digits[len(country.text) :]
        plan = country.plan
    elif region is None:
        raise InvalidPhoneNumber(_NO_COUNTRY_CODE)  # parse refuses: no "+", no default region
    elif region.idd is not None and region.idd.match(digits):
        return None
    else:
        country, nsn, extracted = _national_split(digits, region)
        plan = country.plan if extracted else region
    if len(nsn) < _MIN_NSN:
        raise InvalidPhoneNumber("too short")
    if plan.national_prefix is not None and plan.national_prefix.match(nsn):
        nsn = plan.strip_national_prefix(nsn)
        if len(nsn) < _MIN_NSN:  # pragma: no cover - as in parse: stripping keeps 2+ digits
            raise InvalidPhoneNumber("too short")
    if len(nsn) > _MAX_NSN:
        raise InvalidPhoneNumber("too long")
    name, valid = country.classify(nsn)
    if not valid:
        possible = country.plan.length_result(nsn)
        raise InvalidPhoneNumber(_not_valid_reason(country.code, name, possible))
    return f"+{country.text}{nsn}"


def _national_split(digits: str, region: _Plan) -> tuple[_Country, str, bool]:
    """``_maybe_extract_country_code`` for digits without "+" or international prefix.

    A number that starts with the default region's country code loses it when the rest matches
    better (or the whole is too long); the third item says whether that happened.
    """
    country = _country(region.country_code)
    if digits.startswith(country.text):
        rest = region.strip_national_prefix_raw(digits[len(country.text) :])
        if (
            not region.general_matches(digits) and region.general_matches(rest)
        ) or region.length_result(digits) == _util.ValidationResult.TOO_LONG:
            return country, rest, True
    return country, digits, False


_NEVER = re.compile(r"(?!)").fullmatch
_Desc = tuple[frozenset[int], str]  # possible lengths (empty: any) and the pattern


@dataclass(frozen=True, eq=False)
class _Plan:
    """The checks ``parse`` and ``is_valid_number`` make with one region's metadata."""

    metadata: PhoneMetadata
    country_code: int
    general_pattern: Callable[[str], object] | None
    general: _Desc | None
    types: tuple[_Desc, ...]
    national_prefix: re.Pattern[str] | None
    idd: re.Pattern[str] | None
    lengths: tuple[int, ...]  # _test_number_length by length, for lengths below len(lengths)
    leading_digits: re.Pattern[str] | None
    _valid: dict[int, Callable[[str], object]] = field(default_factory=dict)

    def general_matches(self, nsn: str) -> bool:
        """``_match_national_number(nsn, general_desc)``: the pattern only, not the lengths."""
        return self.general_pattern is not None and self.general_pattern(nsn) is not None

    def length_result(self, nsn: str) -> int:
        if len(nsn) < len(self.lengths):
            return self.lengths[len(nsn)]
        return _util._test_number_length(nsn, self.metadata)

    def strip_national_prefix_raw(self, nsn: str) -> str:
        """``_maybe_strip_national_prefix_carrier_code``, skipped when its prefix cannot match."""
        if self.national_prefix is None or not self.national_prefix.match(nsn):
            return nsn
        return _util._maybe_strip_national_prefix_carrier_code(nsn, self.metadata)[1]

    def strip_national_prefix(self, nsn: str) -> str:
        """What parse keeps: the stripped number unless that makes its length impossible."""
        stripped = self.strip_national_prefix_raw(nsn)
        if stripped == nsn or self.length_result(stripped) in _KEEP_PREFIX:
            return nsn
        return stripped

    def is_valid(self, nsn: str) -> bool:
        """``_number_type_helper(nsn, metadata) != UNKNOWN``, with one regex per length."""
        check = self._valid.get(len(nsn))
        if check is None:
            check = self._valid[len(nsn)] = self._validity_check(len(nsn))
        return check(nsn) is not None

    def _validity_check(self, length: int) -> Callable[[str], object]:
        """A full match for "the general pattern and any type pattern" at this length.

        ``_is_number_matching_desc`` tests a description's possible lengths, then its pattern;
        the lengths are settled here, so one alternation of the patterns does the rest.
        """
        if self.general is None or (self.general[0] and length not in self.general[0]):
            return _NEVER
        alternatives = [p for lengths, p in self.types if not lengths or length in lengths]
        if not alternatives:
            return _NEVER
        pattern = re.compile(
            f"(?=(?:{self.general[1]})\\Z)(?:{'|'.join(f'(?:{p})' for p in alternatives)})"
        )
        if pattern.groups:  # pragma: no cover - metadata patterns have no groups to clash
            return lambda nsn: self._valid_slowly(nsn) or None
        return pattern.fullmatch

    def _valid_slowly(self, nsn: str) -> bool:  # pragma: no cover - see _validity_check
        return _util._number_type_helper(nsn, self.metadata) != _util.PhoneNumberType.UNKNOWN


def _desc(desc: PhoneNumberDesc | None) -> _Desc | None:
    if desc is None or not desc.national_number_pattern:
        return None  # such a description matches nothing
    return frozenset(desc.possible_length), desc.national_number_pattern


def _build_plan(metadata: PhoneMetadata) -> _Plan:
    type_descs = [metadata.fixed_line]
    if not metadata.same_mobile_and_fixed_line_pattern:
        type_descs.append(metadata.mobile)  # _number_type_helper skips it otherwise
    type_descs += [
        metadata.premium_rate,
        metadata.toll_free,
        metadata.shared_cost,
        metadata.voip,
        metadata.personal_number,
        metadata.pager,
        metadata.uan,
        metadata.voicemail,
    ]
    general = _desc(metadata.general_desc)
    npfp = metadata.national_prefix_for_parsing
    idd, leading = metadata.international_prefix, metadata.leading_digits
    code = metadata.country_code
    assert code is not None
    return _Plan(
        metadata=metadata,
        country_code=code,
        general_pattern=None if general is None else re.compile(general[1]).fullmatch,
        general=general,
        types=tuple(d for d in map(_desc, type_descs) if d is not None),
        national_prefix=re.compile(npfp) if npfp else None,
        idd=None if idd is None else re.compile(idd),
        lengths=tuple(
            _util._test_number_length("0" * n, metadata) for n in range(MAX_INPUT_LENGTH + 8)
        ),
        leading_digits=None if leading is None else re.compile(leading),
    )


@functools.cache
def _region_plan(region: str) -> _Plan:
    metadata = PhoneMetadata.metadata_for_region(region)
    assert metadata is not None, region
    return _build_plan(metadata)


@functools.cache
def _non_geo_plan(code: int) -> _Plan:
    metadata = PhoneMetadata.metadata_for_nongeo_region(code)
    assert metadata is not None, code
    return _build_plan(metadata)


@dataclass(frozen=True, eq=False)
class _Country:
    """One country calling code: its main region's plan and every region sharing the code."""

    code: int
    text: str
    plan: _Plan
    regions: tuple[tuple[str, _Plan], ...]

    def classify(self, nsn: str) -> tuple[str | None, bool]:
        """``region_code_for_number`` and ``is_valid_number`` for this code and ``nsn``."""
        if len(self.regions) == 1:
            name, plan = self.regions[0]
            return name, plan.is_valid(nsn)
        for name, plan in self.regions:
            if plan.leading_digits is None:
                if plan.is_valid(nsn):
                    return name, True
            elif plan.leading_digits.match(nsn):
                return name, plan.is_valid(nsn)
        return None, False


@functools.cache
def _country(code: int) -> _Country:
    names = _util.COUNTRY_CODE_TO_REGION_CODE[code]
    if names[0] == _NON_GEO:
        plan = _non_geo_plan(code)
        return _Country(code, str(code), plan, ((_NON_GEO, plan),))
    regions = tuple((name, _region_plan(name)) for name in names)
    return _Country(code, str(code), regions[0][1], regions)
