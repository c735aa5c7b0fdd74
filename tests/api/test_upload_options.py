"""The upload's options as a newcomer meets them: boolean form fields take the usual
spellings, and a refused CSV says which option (`skipInvalid`, `dedupe`,
`defaultCountry`) would accept it."""

from __future__ import annotations

import pytest

from tests.api.conftest import Harness, assert_error_shape, numbers, people, start_batch


@pytest.mark.parametrize(
    ("spelling", "kept"),
    [("true", 2), ("1", 2), ("on", 2), ("YES", 2), ("false", 0), ("0", 0), ("off", 0), ("no", 0)],
)
async def test_boolean_fields_take_every_usual_spelling(
    api: Harness, spelling: str, kept: int
) -> None:
    rows = [*people(numbers(2)), "not-a-number,A,B,c@example.com"]
    r = await start_batch(api, rows, skipInvalid=spelling)
    if kept:
        assert r.status_code == 200, r.text
        assert r.json()["totalCalls"] == kept
    else:
        assert_error_shape(r, 400)


async def test_a_boolean_field_with_another_word_says_what_it_takes(api: Harness) -> None:
    r = await start_batch(api, people(numbers(2)), dedupe="maybe")
    body = assert_error_shape(r, 400)
    assert "dedupe must be true or false" in body["message"] and "on/off" in body["message"]


async def test_repeated_numbers_point_to_dedupe(api: Harness) -> None:
    phone = numbers(1)[0]
    r = await start_batch(api, people([phone, phone]))
    body = assert_error_shape(r, 400)
    assert body["acceptWith"] == ["dedupe"]
    assert "dedupe=true" in body["message"]
    assert (await start_batch(api, people([phone, phone]), dedupe="on")).status_code == 200


async def test_invalid_numbers_point_to_skip_invalid(api: Harness) -> None:
    r = await start_batch(api, [*people(numbers(1)), "+1 555,A,B,c@example.com"])
    body = assert_error_shape(r, 400)
    assert body["acceptWith"] == ["skipInvalid"]
    assert "skipInvalid=true" in body["message"]


async def test_national_numbers_point_to_default_country(api: Harness) -> None:
    r = await start_batch(api, ["(202) 555-0101,Ada,L,a@example.com"])
    body = assert_error_shape(r, 400)
    assert body["acceptWith"] == ["defaultCountry", "skipInvalid"]
    assert "defaultCountry=" in body["message"]
    r = await start_batch(api, ["(202) 555-0101,Ada,L,a@example.com"], defaultCountry="US")
    assert r.status_code == 200, r.text
