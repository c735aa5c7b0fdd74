"""The fast phone path gives exactly what phonenumbers gives, over a large deterministic sample.

The sample: the example number of every region, non-geographic entity and number type in
phonenumbers' metadata, written as E.164, international, national and "+"-less, each read with
several default regions; seeded random mutations of those (digits changed, dropped or added,
leading 0/00, letters, extensions, junk punctuation, truncation, empty); and random digit strings.
"""

from __future__ import annotations

import functools
import random
import time
from collections import Counter
from collections.abc import Iterator

import phonenumbers
from phonenumbers import PhoneNumberFormat
from phonenumbers.phonemetadata import PhoneMetadata

from dialbatch.domain.phone import (
    MAX_INPUT_LENGTH,
    InvalidPhoneNumber,
    PhoneNormalizer,
    _fast_e164,
    _reference_e164,
)

DEFAULT_REGIONS: tuple[str | None, ...] = (None, "US", "GB", "DE", "IT", "FR", "IN", "BR", "AU")
SEED = 20_240_601
MUTATIONS_PER_EXAMPLE = 110
RANDOM_DIGIT_STRINGS = 40_000
NUMBER_TYPES = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)

Case = tuple[str, str | None]


def reference(raw: str, region: str | None) -> str | None:
    """The definition: parse, is_valid_number, format as E.164; plus the two stricter rules."""
    if not raw.strip() or len(raw) > MAX_INPUT_LENGTH:
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def example_numbers() -> Iterator[tuple[str | None, phonenumbers.PhoneNumber]]:
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in sorted(phonenumbers.supported_types_for_region(region)):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                yield region, number
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        metadata = PhoneMetadata.metadata_for_nongeo_region(code)
        assert metadata is not None
        for attribute in NUMBER_TYPES:
            desc = getattr(metadata, attribute)
            if desc is not None and desc.example_number:
                yield None, phonenumbers.parse(f"+{code}{desc.example_number}")


def written_forms(region: str | None, number: phonenumbers.PhoneNumber) -> list[Case]:
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    international = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    rfc3966 = phonenumbers.format_number(number, PhoneNumberFormat.RFC3966)
    forms: list[Case] = [(e164, None), (international, None), (rfc3966, None)]
    for default in (region, *DEFAULT_REGIONS):
        forms += [(e164, default), (international, default), (national, default)]
        forms.append((e164[1:], default))  # what Excel leaves of it
    return forms


def mutate(rng: random.Random, text: str) -> str:
    digits = [i for i, c in enumerate(text) if c.isdigit()] or [0]
    at = rng.randrange(len(text) + 1)
    i = rng.choice(digits)
    choices = (
        lambda: text[:i] + str(rng.randrange(10)) + text[i + 1 :],
        lambda: text[:i] + text[i + 1 :],
        lambda: text[:at] + str(rng.randrange(10)) + text[at:],
        lambda: text + str(rng.randrange(10**3)),
        lambda: text[:at],
        lambda: text.lstrip("+"),
        lambda: "00" + text.lstrip("+"),
        lambda: "0" + text.lstrip("+"),
        lambda: "+" + text.lstrip("+0"),
        lambda: "+0" + text.lstrip("+"),
        lambda: text[:at] + rng.choice("abcxyzABCEXT") + text[at:],
        lambda: text + rng.choice((" ext 12", " x123", "#", ";ext=5", " ext. 4567", ",,12", "/x2")),
        lambda: text[:at] + rng.choice(" -.()/+#*xX,;~\t\u00a0\uff0b") + text[at:],
        lambda: "(" + text + ")",
        lambda: "Tel: " + text,
        lambda: text.translate(str.maketrans("0123456789", "\uff10\uff11\uff12\uff13\uff14" * 2)),
        lambda: rng.choice(("", " ", "+", "++", "()", "-", "12", "+12", "1-2")),
        lambda: text * 2,
    )
    return rng.choice(choices)()


def corpus(seed: int = SEED) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = []
    for region, number in example_numbers():
        forms = written_forms(region, number)
        cases += forms
        for _ in range(MUTATIONS_PER_EXAMPLE):
            text, default = rng.choice(forms)
            text = mutate(rng, text)
            if rng.random() < 0.3:
                text = mutate(rng, text)
            cases.append((text, rng.choice(DEFAULT_REGIONS) if rng.random() < 0.5 else default))
    for _ in range(RANDOM_DIGIT_STRINGS):
        default = rng.choice(DEFAULT_REGIONS)
        own_code = str(phonenumbers.country_code_for_region(default)) if default else ""
        prefix = rng.choice(("+", "", "00", "0", "+0", "+1", "+44", own_code))
        digits = "".join(str(rng.randrange(10)) for _ in range(rng.randrange(1, 18)))
        cases.append((prefix + digits, default))
    return cases


def normalizer_for(region: str | None, cache: dict[str | None, PhoneNormalizer]) -> PhoneNormalizer:
    if region not in cache:
        cache[region] = PhoneNormalizer(region)
    return cache[region]


def fast_path(raw: str, normalizer: PhoneNormalizer) -> str | InvalidPhoneNumber | None:
    """The fast path's verdict: E.164, the rejection, or None when it defers to phonenumbers."""
    try:
        return _fast_e164(raw.strip(), normalizer._plan)
    except InvalidPhoneNumber as exc:
        return exc


@functools.cache
def shared_corpus() -> list[Case]:
    return corpus()


def test_fast_path_equals_phonenumbers_on_a_large_sample() -> None:
    started = time.process_time()  # CPU time: other processes on the machine do not count
    cases = shared_corpus()
    normalizers: dict[str | None, PhoneNormalizer] = {}
    outcomes: Counter[str] = Counter()
    mismatches: list[tuple[str, str | None, object, str | None]] = []
    for raw, region in cases:
        expected = reference(raw, region)
        if not raw.strip() or len(raw) > MAX_INPUT_LENGTH:
            outcomes["precheck"] += 1
            continue
        got = fast_path(raw, normalizer_for(region, normalizers))
        if got is None:
            outcomes["deferred"] += 1
            continue
        outcomes["fast"] += 1
        if (None if isinstance(got, InvalidPhoneNumber) else got) != expected:
            mismatches.append((raw, region, got, expected))
    elapsed = time.process_time() - started
    assert len(cases) >= 200_000
    assert mismatches[:20] == []
    # The fast path must decide most inputs, or this test would prove nothing.
    assert outcomes["fast"] >= 0.5 * len(cases), outcomes
    assert elapsed < 20, f"{elapsed:.1f}s for {len(cases)} inputs"


def test_normalize_equals_phonenumbers_including_deferred_and_prechecks() -> None:
    normalizers: dict[str | None, PhoneNormalizer] = {}
    for raw, region in shared_corpus()[::7]:
        try:
            got: str | None = normalizer_for(region, normalizers).normalize(raw)
        except InvalidPhoneNumber as exc:
            assert exc.reason
            got = None
        assert got == reference(raw, region), (raw, region)


def test_fast_path_rejects_with_the_reason_of_the_reference_path() -> None:
    normalizers: dict[str | None, PhoneNormalizer] = {}
    checked = 0
    for raw, region in shared_corpus()[::5]:
        if not raw.strip() or len(raw) > MAX_INPUT_LENGTH:
            continue
        got = fast_path(raw, normalizer_for(region, normalizers))
        if isinstance(got, InvalidPhoneNumber):
            try:
                _reference_e164(raw, region)
            except InvalidPhoneNumber as exc:
                assert got.reason == exc.reason, (raw, region)
                checked += 1
    assert checked > 10_000
