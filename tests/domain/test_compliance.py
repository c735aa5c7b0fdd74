"""Rule packs: the data, the area-code table, and which profile a batch may choose."""

from __future__ import annotations

import phonenumbers
import pytest
from phonenumbers import geocoder
from phonenumbers.phonenumber import PhoneNumber

from dialbatch.domain.caps import Caps
from dialbatch.domain.compliance import (
    PACKS,
    PROFILES,
    InvalidProfile,
    Policy,
    ProfileNotStricter,
    combined_caps,
    effective_policy,
    is_at_least_as_strict,
    join_profiles,
    packs_of,
    parse_profile,
    region_for,
)
from dialbatch.domain.compliance.us import AREA_CODE_STATE, state_of
from dialbatch.domain.windows import CallingWindow, TimeRange

STATE_NAMES = {"US-FL": "Florida", "US-OK": "Oklahoma", "US-MD": "Maryland"}


def _valid_numbers(area_code: int, count: int = 12) -> list[PhoneNumber]:
    """Valid numbers of an area code, spread over its exchanges."""
    out = []
    for exchange in range(200, 1000, 7):
        number = PhoneNumber(country_code=1, national_number=int(f"{area_code}{exchange}4567"))
        if phonenumbers.is_valid_number(number):
            out.append(number)
            if len(out) == count:
                break
    return out


def _in_state(description: str, state: str) -> bool:
    return description == STATE_NAMES[state] or description.endswith(", " + state[3:])


@pytest.mark.parametrize(("area_code", "state"), sorted(AREA_CODE_STATE.items()))
def test_every_area_code_in_the_table_is_geocoded_to_its_state(area_code: str, state: str) -> None:
    numbers = _valid_numbers(int(area_code))
    assert numbers, f"no valid number in area code {area_code}"
    for number in numbers:
        assert _in_state(geocoder.description_for_number(number, "en"), state), area_code


def test_no_other_area_code_is_geocoded_to_these_states() -> None:
    for area_code in range(200, 1000):
        if str(area_code) in AREA_CODE_STATE:
            continue
        for number in _valid_numbers(area_code, count=3):
            description = geocoder.description_for_number(number, "en")
            assert not any(_in_state(description, s) for s in STATE_NAMES), (area_code, description)


def test_table_covers_the_three_states() -> None:
    assert set(AREA_CODE_STATE.values()) == set(STATE_NAMES)
    assert state_of("+13055550123") == "US-FL"
    assert state_of("+14055550123") == "US-OK"
    assert state_of("+14105550123") == "US-MD"
    assert state_of("+12125550123") is None
    assert state_of("+443055501234") is None


def test_region_depends_on_the_profile() -> None:
    assert region_for("+13055550123", "us") == "US-FL"
    assert region_for("+13055550123", "none") is None
    assert region_for("+13055550123", "ca") is None


def test_packs_are_data_with_sources() -> None:
    for pack in PACKS.values():
        rules = [*pack.hours, *pack.caps]
        for region in pack.regions:
            rules += [*region.hours, *region.caps]
        assert rules
        for rule in rules:
            assert rule.name.startswith(pack.name + ".")
            assert rule.source


def test_us_pack_hours_and_state_rules() -> None:
    policy = Policy(profile="us")
    (federal,) = policy.window_rules(None)
    assert federal.source == "47 CFR 64.1200(c)(1)"
    assert federal.window == CallingWindow.every_day("08:00", "21:00")
    fl = policy.window_rules("US-FL")
    assert [r.name for r in fl] == ["us.federal.hours", "us.fl.hours"]
    assert fl[1].window == CallingWindow.every_day("08:00", "20:00")
    assert [c.caps for c in policy.cap_rules("US-FL")] == [Caps(per_24h=3)]
    assert policy.cap_rules(None) == ()
    for state in ("US-OK", "US-MD"):
        assert combined_caps(policy.cap_rules(state)) == Caps(per_24h=3)


def test_ca_pack_weekdays_and_weekends() -> None:
    (rule,) = Policy(profile="ca").window_rules(None)
    weekday, weekend = TimeRange(9 * 60, 21 * 60 + 30), TimeRange(10 * 60, 18 * 60)
    assert rule.window.days == (((weekday,),) * 5) + (((weekend,),) * 2)
    assert rule.window.timezone is None  # recipient-local


def test_none_profile_has_no_rules_but_keeps_the_batch_window_and_workspace_caps() -> None:
    window = CallingWindow.every_day("10:00", "12:00")
    policy = effective_policy("none", window=window, caps=Caps(per_24h=5, per_30d=20))
    assert [r.name for r in policy.window_rules("US-FL")] == ["batch.callingWindow"]
    assert [r.name for r in policy.cap_rules("US-FL")] == ["workspace.frequencyCaps"]
    assert Policy().window_rules(None) == () and Policy().cap_rules(None) == ()


def test_batch_window_is_intersected_with_the_profile_never_widening_it() -> None:
    wide = CallingWindow.every_day("06:00", "23:00")
    policy = effective_policy("us", window=wide, caps=Caps(per_24h=5, per_30d=20))
    assert policy.windows("US-FL") == (
        wide,
        CallingWindow.every_day("08:00", "21:00"),
        CallingWindow.every_day("08:00", "20:00"),
    )
    assert combined_caps(policy.cap_rules("US-FL")) == Caps(per_24h=3, per_30d=20)
    assert combined_caps(policy.cap_rules(None)) == Caps(per_24h=5, per_30d=20)


@pytest.mark.parametrize(
    ("batch", "workspace", "ok"),
    [
        ("none", "none", True),
        ("us", "none", True),
        ("ca", "none", True),
        ("us", "us", True),
        ("none", "us", False),
        ("ca", "us", False),
        ("us", "ca", False),
        ("none", "ca", False),
    ],
)
def test_batches_may_only_tighten_the_workspace_profile(
    batch: str, workspace: str, ok: bool
) -> None:
    assert is_at_least_as_strict(batch, workspace) is ok
    if ok:
        assert effective_policy(workspace, batch_profile=batch).profile == batch
    else:
        with pytest.raises(ProfileNotStricter, match="at least as strict"):
            effective_policy(workspace, batch_profile=batch)


def test_unknown_profiles_are_refused() -> None:
    assert set(PROFILES) == {"none", "us", "ca"}
    assert parse_profile("us") == "us"
    for bad in ("US", "eu", "", None, 3):
        with pytest.raises(InvalidProfile, match="complianceProfile"):
            parse_profile(bad)
    with pytest.raises(InvalidProfile):
        effective_policy("us", batch_profile="strict")
    with pytest.raises(InvalidProfile):
        is_at_least_as_strict("us", "eu")


@pytest.mark.parametrize(
    ("profiles", "joined"),
    [
        (("none", "none"), "none"),
        (("none", "us"), "us"),
        (("us", "none"), "us"),
        (("us", "us"), "us"),
        (("us", "ca"), "ca+us"),
        (("ca+us", "us"), "ca+us"),
    ],
)
def test_the_profile_at_dial_time_is_the_join_of_the_batchs_and_the_workspaces(
    profiles: tuple[str, str], joined: str
) -> None:
    assert join_profiles(*profiles) == joined


def test_a_joined_profile_obeys_every_pack() -> None:
    both = Policy(profile=join_profiles("us", "ca"))
    names = {rule.name for rule in both.window_rules("US-FL")}
    assert names == {"us.federal.hours", "us.fl.hours", "ca.crtc.hours"}
    assert region_for("+13055550123", "ca+us") == "US-FL"
    assert [p.name for p in packs_of("ca+us")] == ["ca", "us"]
    with pytest.raises(InvalidProfile):
        packs_of("us+eu")
    with pytest.raises(InvalidProfile):
        parse_profile("ca+us")  # a name only the gate uses, never a client


def test_a_workspace_default_window_is_named_as_such_in_the_audit() -> None:
    window = CallingWindow.every_day("09:00", "17:00")
    assert [r.name for r in Policy(window=window).window_rules(None)] == ["batch.callingWindow"]
    default = Policy(window=window, window_rule="workspace.callingWindow")
    assert [r.name for r in default.window_rules(None)] == ["workspace.callingWindow"]
