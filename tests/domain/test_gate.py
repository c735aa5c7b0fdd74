"""The gate's decision, against issue 10's acceptance, with an injected clock.

Each test sets "now" on a FixedClock as a local time in the zone it is about, builds the facts
the store would pass (zones from the number, region from the area code) and asks the gate.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dialbatch.domain.caps import Caps
from dialbatch.domain.clock import FixedClock
from dialbatch.domain.compliance import Policy, effective_policy, region_for
from dialbatch.domain.gate import (
    Admit,
    CallFacts,
    Defer,
    GateDecision,
    ReasonKind,
    Refuse,
    decide,
    earliest_admission,
)
from dialbatch.domain.timezones import zones_for
from dialbatch.domain.windows import CallingWindow, closes_at, parse_calling_window
from tests.domain._time import DAY, HOUR, LOS_ANGELES, MINUTE, NEW_YORK, local, wall

US = Policy(profile="us")
NYC, LA, MIAMI, BOISE, TORONTO = (
    "+12125550123",
    "+12135550123",
    "+13055550123",
    "+12085550123",
    "+14165550123",
)


def facts(number: str, profile: str = "us", **kw: object) -> CallFacts:
    return CallFacts(zones=zones_for(number), region=region_for(number, profile), **kw)  # type: ignore[arg-type]


def ask(number: str, clock: FixedClock, policy: Policy = US, **kw: object) -> GateDecision:
    lead = int(kw.pop("dial_lead_ms", 0))  # type: ignore[call-overload]
    return decide(facts(number, policy.profile, **kw), policy, clock.now_ms(), dial_lead_ms=lead)


def test_a_batch_at_759_new_york_time_starts_no_new_york_call() -> None:
    clock = FixedClock(local(NEW_YORK, 2026, 6, 10, 7, 59))
    decision = ask(NYC, clock)
    assert isinstance(decision, Defer)
    assert decision.until_ms == local(NEW_YORK, 2026, 6, 10, 8, 0)
    assert decision.reason.kind is ReasonKind.OUTSIDE_WINDOW
    assert decision.reason.to_json() == {
        "kind": "outside_window",
        "message": "outside the calling window of us.federal.hours in America/New_York",
        "rule": "us.federal.hours",
        "source": "47 CFR 64.1200(c)(1)",
        "zone": "America/New_York",
    }
    clock.set(decision.until_ms)
    assert ask(NYC, clock) == Admit(rules=("us.federal.hours",))


def test_new_york_and_los_angeles_open_at_eight_in_their_own_time() -> None:
    clock = FixedClock(local(NEW_YORK, 2026, 6, 10, 7, 59))
    first_admitted = {}
    while len(first_admitted) < 2:
        for number in (NYC, LA):
            if number not in first_admitted and isinstance(ask(number, clock), Admit):
                first_admitted[number] = clock.now_ms()
        clock.advance(MINUTE)
    assert first_admitted[NYC] == local(NEW_YORK, 2026, 6, 10, 8, 0)
    assert first_admitted[LA] == local(LOS_ANGELES, 2026, 6, 10, 8, 0)
    assert first_admitted[LA] - first_admitted[NYC] == 3 * HOUR


def test_florida_is_not_dialed_at_20_local_and_gets_at_most_3_dials_a_day() -> None:
    clock = FixedClock(local(NEW_YORK, 2026, 6, 10, 19, 59))
    assert isinstance(ask(MIAMI, clock), Admit)
    clock.set(local(NEW_YORK, 2026, 6, 10, 20, 0))
    decision = ask(MIAMI, clock)
    assert isinstance(decision, Defer)
    assert decision.reason.rule == "us.fl.hours"
    assert decision.reason.source == "Fla. Stat. 501.616 (2021 amendment)"
    assert decision.until_ms == local(NEW_YORK, 2026, 6, 11, 8, 0)
    assert isinstance(ask(NYC, clock), Admit)  # New York's federal window is still open

    # A dialer that asks every 10 minutes for two days (smart callbacks wanting more).
    dials: list[int] = []
    clock.set(local(NEW_YORK, 2026, 6, 10, 0, 0))
    end = clock.now_ms() + 2 * DAY
    while clock.now_ms() < end:
        decision = ask(MIAMI, clock, recent_dials_ms=tuple(dials))
        if isinstance(decision, Admit):
            dials.append(clock.now_ms())
        else:
            assert isinstance(decision, Defer)
            assert decision.until_ms > clock.now_ms()
        clock.advance(10 * MINUTE)
    assert len(dials) == 6
    for t in dials:
        assert 8 <= wall(NEW_YORK, t).hour < 20
        assert sum(1 for u in dials if t - DAY < u <= t) <= 3


def test_a_capped_call_is_deferred_to_when_the_cap_allows_and_the_window_is_open() -> None:
    clock = FixedClock(local(NEW_YORK, 2026, 6, 11, 9, 0))
    dials = (
        local(NEW_YORK, 2026, 6, 10, 19, 0),
        local(NEW_YORK, 2026, 6, 10, 19, 30),
        local(NEW_YORK, 2026, 6, 11, 8, 30),
    )
    decision = ask(MIAMI, clock, recent_dials_ms=dials)
    assert isinstance(decision, Defer)
    assert decision.reason.kind is ReasonKind.CAPPED
    assert decision.reason.rule == "us.fl.frequency"
    assert decision.until_ms == local(NEW_YORK, 2026, 6, 11, 19, 0)
    # When the cap frees the number too close to the window's end for a dial, it waits for
    # the next opening.
    clock.set(local(NEW_YORK, 2026, 6, 11, 10, 0))
    late = (local(NEW_YORK, 2026, 6, 10, 19, 50), *dials[2:], local(NEW_YORK, 2026, 6, 11, 9, 0))
    decision = ask(MIAMI, clock, recent_dials_ms=late)
    assert isinstance(decision, Defer)
    assert decision.until_ms == local(NEW_YORK, 2026, 6, 11, 19, 50)
    decision = ask(MIAMI, clock, recent_dials_ms=late, dial_lead_ms=15 * MINUTE)
    assert isinstance(decision, Defer)
    assert decision.until_ms == local(NEW_YORK, 2026, 6, 12, 8, 0)
    workspace_capped = effective_policy("us", caps=Caps(per_24h=1))
    decision = ask(NYC, clock, workspace_capped, recent_dials_ms=(clock.now_ms() - HOUR,))
    assert isinstance(decision, Defer)
    assert decision.reason.rule == "workspace.frequencyCaps"
    assert decision.until_ms == clock.now_ms() - HOUR + DAY


def test_a_number_with_several_zones_is_dialed_only_where_every_zone_is_open() -> None:
    assert zones_for(BOISE) == ("America/Boise", "America/Los_Angeles")
    clock = FixedClock(local("America/Boise", 2026, 6, 10, 8, 0))  # 07:00 in Los Angeles
    decision = ask(BOISE, clock)
    assert isinstance(decision, Defer)
    assert decision.reason.zone == "America/Los_Angeles"
    assert decision.until_ms == local(LOS_ANGELES, 2026, 6, 10, 8, 0)
    clock.set(local(LOS_ANGELES, 2026, 6, 10, 20, 30))  # 21:30 in Boise
    decision = ask(BOISE, clock)
    assert isinstance(decision, Defer)
    assert decision.reason.zone == "America/Boise"
    clock.set(local(LOS_ANGELES, 2026, 6, 10, 19, 59))
    assert isinstance(ask(BOISE, clock), Admit)


def test_the_days_daylight_saving_starts_and_ends() -> None:
    for day in ((2026, 3, 8), (2026, 11, 1), (2026, 3, 7), (2026, 10, 31)):
        clock = FixedClock(local(NEW_YORK, *day, 7, 59, 59))
        decision = ask(NYC, clock)
        assert isinstance(decision, Defer)
        assert decision.until_ms == local(NEW_YORK, *day, 8, 0)
        clock.set(local(NEW_YORK, *day, 20, 59, 59))
        assert isinstance(ask(NYC, clock), Admit)
        clock.advance(1000)
        decision = ask(NYC, clock)
        assert isinstance(decision, Defer)
        assert wall(NEW_YORK, decision.until_ms).hour == 8


def test_a_retry_lands_inside_the_window() -> None:
    failed_at = local(NEW_YORK, 2026, 6, 10, 20, 0)
    gap = 2 * HOUR  # the batch's smart-callback gap lands at 22:00, outside the window
    due = earliest_admission(facts(NYC), US, failed_at + gap)
    assert due == local(NEW_YORK, 2026, 6, 11, 8, 0)
    assert isinstance(decide(facts(NYC), US, due), Admit)
    inside = earliest_admission(facts(NYC), US, local(NEW_YORK, 2026, 6, 10, 9, 0) + gap)
    assert inside == local(NEW_YORK, 2026, 6, 10, 11, 0)


def test_a_decision_just_before_21_whose_dial_would_start_after_is_not_admitted() -> None:
    clock = FixedClock(local(NEW_YORK, 2026, 6, 10, 20, 59, 59, 900_000))
    assert isinstance(ask(NYC, clock), Admit)  # the dial itself would start now
    decision = ask(NYC, clock, dial_lead_ms=200)
    assert isinstance(decision, Defer)
    assert decision.until_ms == local(NEW_YORK, 2026, 6, 11, 8, 0)
    assert isinstance(ask(NYC, clock, dial_lead_ms=99), Admit)


def test_canada_profile_weekends() -> None:
    ca = Policy(profile="ca")
    clock = FixedClock(local("America/Toronto", 2026, 6, 13, 9, 30))  # a Saturday
    decision = ask(TORONTO, clock, ca)
    assert isinstance(decision, Defer)
    assert decision.reason.rule == "ca.crtc.hours"
    assert decision.until_ms == local("America/Toronto", 2026, 6, 13, 10, 0)
    clock.set(local("America/Toronto", 2026, 6, 15, 21, 15))  # Monday
    assert isinstance(ask(TORONTO, clock, ca), Admit)


def test_suppressed_numbers_are_refused_first() -> None:
    clock = FixedClock(local(NEW_YORK, 2026, 6, 10, 3, 0))
    decision = ask(NYC, clock, suppressed=True, suppression_reason="asked not to be called")
    assert isinstance(decision, Refuse)
    assert decision.reason.kind is ReasonKind.SUPPRESSED
    assert decision.reason.message == "Suppressed: asked not to be called"


def test_consent_is_required_only_when_the_policy_says_so() -> None:
    clock = FixedClock(local(NEW_YORK, 2026, 6, 10, 12, 0))
    strict = effective_policy("us", require_consent=True)
    decision = ask(NYC, clock, strict)
    assert isinstance(decision, Refuse) and decision.reason.kind is ReasonKind.NO_CONSENT
    assert isinstance(ask(NYC, clock, strict, consent=True), Admit)
    assert isinstance(ask(NYC, clock), Admit)


def test_no_known_zone_is_held_back_not_guessed() -> None:
    clock = FixedClock(local(NEW_YORK, 2026, 6, 10, 12, 0))
    unknown = "+15555550123"
    decision = ask(unknown, clock)
    assert isinstance(decision, Refuse)
    assert decision.reason.kind is ReasonKind.NO_ZONE
    assert decision.reason.rule == "us.federal.hours"
    # With no hours to keep, the zone does not matter; a fixed-zone window needs none.
    assert isinstance(ask(unknown, clock, Policy()), Admit)
    fixed = Policy(window=CallingWindow.every_day("09:00", "17:00", timezone=NEW_YORK))
    assert isinstance(ask(unknown, clock, fixed), Admit)


def test_a_window_that_never_opens_refuses() -> None:
    window = parse_calling_window({"days": {"mon": [["06:00", "07:00"]]}})
    clock = FixedClock(local(NEW_YORK, 2026, 6, 10, 12, 0))
    decision = ask(NYC, clock, effective_policy("us", window=window))
    assert isinstance(decision, Refuse)
    assert decision.reason.kind is ReasonKind.OUTSIDE_WINDOW
    assert "no opening within 366 days" in decision.reason.message


def test_fails_closed_on_what_it_cannot_evaluate() -> None:
    clock = FixedClock(local(NEW_YORK, 2026, 6, 10, 12, 0))
    bogus_zone = CallFacts(zones=("Mars/Olympus_Mons",))
    decision = decide(bogus_zone, US, clock.now_ms())
    assert isinstance(decision, Refuse) and decision.reason.kind is ReasonKind.UNDECIDABLE
    bad_dials = CallFacts(zones=(NEW_YORK,), region="US-FL", recent_dials_ms=("yesterday",))  # type: ignore[arg-type]
    decision = decide(bad_dials, US, clock.now_ms())
    assert isinstance(decision, Refuse) and decision.reason.kind is ReasonKind.UNDECIDABLE


# --- a deferral's due time is admitted: the gate agrees with itself ---------------------------

NUMBERS = (NYC, LA, MIAMI, BOISE, TORONTO, "+14055550123", "+14105550123", "+18085550123")
WINDOWS = (
    None,
    CallingWindow.every_day("09:00", "17:00"),
    parse_calling_window({"days": {"mon": [["22:00", "02:00"]], "sat": [["10:00", "10:05"]]}}),
    parse_calling_window({"timezone": "Europe/London", "days": {"tue": [["07:00", "19:00"]]}}),
)


@settings(max_examples=150, deadline=None)
@given(
    number=st.sampled_from(NUMBERS),
    profile=st.sampled_from(["none", "us", "ca"]),
    window=st.sampled_from(WINDOWS),
    cap=st.sampled_from([None, 1, 2]),
    now=st.integers(local(NEW_YORK, 2026, 1, 1, 0, 0), local(NEW_YORK, 2027, 1, 1, 0, 0)),
    dial_offsets=st.lists(st.integers(0, 30 * DAY), max_size=6),
    lead=st.sampled_from([0, 500, 10 * MINUTE]),
)
def test_a_deferred_call_is_admitted_at_its_due_time(
    number: str,
    profile: str,
    window: CallingWindow | None,
    cap: int | None,
    now: int,
    dial_offsets: list[int],
    lead: int,
) -> None:
    policy = effective_policy(profile, window=window, caps=Caps(per_24h=cap))
    call = facts(number, profile, recent_dials_ms=tuple(now - o for o in dial_offsets))
    decision = decide(call, policy, now, dial_lead_ms=lead)
    assert not isinstance(decision, Refuse) or decision.reason.kind is ReasonKind.OUTSIDE_WINDOW
    if isinstance(decision, Defer):
        assert decision.until_ms > now
        assert isinstance(decide(call, policy, decision.until_ms, dial_lead_ms=lead), Admit)
    if isinstance(decision, Admit):
        end = closes_at(policy.windows(call.region), call.zones, now)
        assert end is not None and end > now + lead
