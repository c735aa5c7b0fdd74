"""Calling windows: the JSON shape, and opening times that are right on every day of the year.

Times are written as local wall-clock times in the zone they are about and compared as
instants, so a test says what a person in that zone would see on their clock.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialbatch.domain.windows import (
    HORIZON_MS,
    WEEKDAYS,
    CallingWindow,
    InvalidCallingWindow,
    TimeRange,
    closes_at,
    is_known_zone,
    is_open,
    next_opening,
    open_through,
    parse_calling_window,
)
from tests.domain._time import CHICAGO, DAY, HOUR, LONDON, LOS_ANGELES, MINUTE, NEW_YORK, local, utc

EIGHT_TO_NINE = CallingWindow.every_day("08:00", "21:00")


# --- the JSON shape --------------------------------------------------------------------------


def test_parses_the_documented_shape_and_round_trips() -> None:
    raw = {
        "timezone": "America/New_York",
        "days": {
            "mon": [["09:00", "17:00"]],
            "Fri": [["13:00", "17:00"], ["09:00", "12:00"]],
            "sat": [["22:00", "02:00"]],
            "sun": [["00:00", "24:00"]],
        },
        "skipDates": ["2026-12-25", "2026-01-01"],
    }
    window = parse_calling_window(raw)
    assert window.timezone == NEW_YORK
    assert window.days[0] == (TimeRange(9 * 60, 17 * 60),)
    assert window.days[4] == (TimeRange(9 * 60, 12 * 60), TimeRange(13 * 60, 17 * 60))
    assert window.days[5][0].crosses_midnight
    assert window.days[1] == ()
    assert window.skip_dates == {date(2026, 12, 25), date(2026, 1, 1)}
    out = window.to_json()
    assert out["days"] == {
        "mon": [["09:00", "17:00"]],
        "fri": [["09:00", "12:00"], ["13:00", "17:00"]],
        "sat": [["22:00", "02:00"]],
        "sun": [["00:00", "24:00"]],
    }
    assert out["skipDates"] == ["2026-01-01", "2026-12-25"]
    assert parse_calling_window(out) == window
    assert parse_calling_window(json.dumps(out)) == window


def test_timezone_defaults_to_the_recipient() -> None:
    window = parse_calling_window({"days": {"mon": [["09:00", "17:00"]]}})
    assert window.timezone is None
    assert window.to_json()["timezone"] == "recipient"
    assert window.zones([NEW_YORK, CHICAGO]) == (NEW_YORK, CHICAGO)
    fixed = parse_calling_window({"timezone": LONDON, "days": {"mon": [["09:00", "17:00"]]}})
    assert fixed.zones([NEW_YORK, CHICAGO]) == (LONDON,)
    assert fixed.zones(None) == (LONDON,)


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ("nope", "callingWindow is not valid JSON"),
        ([], "callingWindow must be a JSON object"),
        ({"days": {"mon": [["09:00", "17:00"]]}, "tz": "UTC"}, "unknown callingWindow fields"),
        ({}, "callingWindow.days is required"),
        ({"days": {}}, "callingWindow.days opens no range"),
        ({"days": {"monday": [["09:00", "17:00"]]}}, "unknown weekday 'monday'"),
        ({"days": {"mon": [["09:00", "17:00"]], "MON": []}}, "callingWindow.days.mon is given"),
        ({"days": {"mon": "09:00-17:00"}}, "callingWindow.days.mon must be a list"),
        ({"days": {"mon": [["09:00"]]}}, "callingWindow.days.mon[0] must be a pair"),
        ({"days": {"mon": [["9:00", "17:00"]]}}, "callingWindow.days.mon[0]: '9:00' is not"),
        ({"days": {"mon": [["09:00", "25:00"]]}}, "callingWindow.days.mon[0]: '25:00' is not"),
        ({"days": {"mon": [["09:60", "17:00"]]}}, "'09:60' is not a time"),
        ({"days": {"mon": [[900, 1700]]}}, "callingWindow.days.mon[0]: 900 is not"),
        ({"days": {"tue": [["09:00", "09:00"]]}}, "callingWindow.days.tue[0] starts and ends"),
        ({"days": {"tue": [["00:00", "00:00"]]}}, "starts and ends at the same time"),
        ({"days": {"tue": [["24:00", "01:00"]]}}, "cannot start at 24:00"),
        ({"days": {"wed": [["09:00", "10:00"]] * 9}}, "callingWindow.days.wed has more than 8"),
        ({"days": {"mon": [["09:00", "17:00"]]}, "timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"days": {"mon": [["09:00", "17:00"]]}, "timezone": "EST"}, "callingWindow.timezone"),
        ({"days": {"mon": [["09:00", "17:00"]]}, "timezone": "localtime"}, "not a known IANA"),
        ({"days": {"mon": [["09:00", "17:00"]]}, "timezone": ""}, "callingWindow.timezone"),
        ({"days": {"mon": [["09:00", "17:00"]]}, "timezone": 5}, "callingWindow.timezone"),
        ({"days": {"mon": [["09:00", "17:00"]]}, "skipDates": "2026-12-25"}, "must be a list"),
        ({"days": {"mon": [["09:00", "17:00"]]}, "skipDates": ["2026-02-30"]}, "skipDates[0]"),
        ({"days": {"mon": [["09:00", "17:00"]]}, "skipDates": ["25/12/2026"]}, "not a date"),
        ({"days": {"mon": [["09:00", "17:00"]]}, "skipDates": [20261225]}, "skipDates[0]"),
        ({"days": {"mon": [["09:00", "17:00"]]}, "skipDates": ["2026-01-01"] * 401}, "more than"),
    ],
)
def test_bad_windows_are_refused_with_a_message_naming_the_field(raw: object, names: str) -> None:
    with pytest.raises(InvalidCallingWindow, match=None) as caught:
        parse_calling_window(raw)
    assert names in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_known_zones_exclude_host_dependent_and_fixed_abbreviations() -> None:
    assert is_known_zone(NEW_YORK)
    assert is_known_zone("UTC")
    for name in ("localtime", "Etc/Unknown", "EST", "Factory", "America/Gotham"):
        assert not is_known_zone(name)


# --- opening times ---------------------------------------------------------------------------


def test_a_window_opens_at_its_local_time_in_each_zone() -> None:
    at = local(NEW_YORK, 2026, 6, 10, 7, 59)
    assert not is_open(EIGHT_TO_NINE, [NEW_YORK], at)
    assert next_opening(EIGHT_TO_NINE, [NEW_YORK], at) == local(NEW_YORK, 2026, 6, 10, 8, 0)
    assert next_opening(EIGHT_TO_NINE, [LOS_ANGELES], at) == local(LOS_ANGELES, 2026, 6, 10, 8, 0)
    assert local(LOS_ANGELES, 2026, 6, 10, 8, 0) - local(NEW_YORK, 2026, 6, 10, 8, 0) == 3 * HOUR
    eight = local(NEW_YORK, 2026, 6, 10, 8, 0)
    assert is_open(EIGHT_TO_NINE, [NEW_YORK], eight)
    assert not is_open(EIGHT_TO_NINE, [NEW_YORK], eight - 1)
    assert closes_at(EIGHT_TO_NINE, [NEW_YORK], eight) == local(NEW_YORK, 2026, 6, 10, 21, 0)
    assert closes_at(EIGHT_TO_NINE, [NEW_YORK], eight - 1) is None
    nine_pm = local(NEW_YORK, 2026, 6, 10, 21, 0)
    assert is_open(EIGHT_TO_NINE, [NEW_YORK], nine_pm - 1)
    assert not is_open(EIGHT_TO_NINE, [NEW_YORK], nine_pm)
    assert next_opening(EIGHT_TO_NINE, [NEW_YORK], nine_pm) == local(NEW_YORK, 2026, 6, 11, 8, 0)


def test_an_instant_already_open_is_its_own_next_opening() -> None:
    at = local(NEW_YORK, 2026, 6, 10, 12, 0)
    assert next_opening(EIGHT_TO_NINE, [NEW_YORK], at) == at


def test_several_zones_open_only_where_all_are_open() -> None:
    zones = [NEW_YORK, LOS_ANGELES]
    ny_eight = local(NEW_YORK, 2026, 6, 10, 8, 0)
    la_eight = local(LOS_ANGELES, 2026, 6, 10, 8, 0)
    assert not is_open(EIGHT_TO_NINE, zones, ny_eight)
    assert next_opening(EIGHT_TO_NINE, zones, ny_eight) == la_eight
    assert closes_at(EIGHT_TO_NINE, zones, la_eight) == local(NEW_YORK, 2026, 6, 10, 21, 0)
    # A window that never overlaps in two zones never opens.
    short = CallingWindow.every_day("08:00", "09:00")
    assert next_opening(short, [NEW_YORK, "Asia/Tokyo"], ny_eight) is None


def test_no_known_zone_is_never_open() -> None:
    at = local(NEW_YORK, 2026, 6, 10, 12, 0)
    for zones in (None, []):
        assert not is_open(EIGHT_TO_NINE, zones, at)
        assert next_opening(EIGHT_TO_NINE, zones, at) is None
        assert closes_at(EIGHT_TO_NINE, zones, at) is None
    # A fixed-zone window needs no recipient zone.
    fixed = CallingWindow.every_day("08:00", "21:00", timezone=NEW_YORK)
    assert is_open(fixed, None, at)


def test_several_windows_must_all_be_open() -> None:
    batch = parse_calling_window({"days": {"mon": [["07:00", "12:00"]]}})  # 2026-06-08 is a Monday
    both = (batch, EIGHT_TO_NINE)
    seven = local(NEW_YORK, 2026, 6, 8, 7, 0)
    assert is_open(batch, [NEW_YORK], seven)
    assert not is_open(both, [NEW_YORK], seven)
    assert next_opening(both, [NEW_YORK], seven) == local(NEW_YORK, 2026, 6, 8, 8, 0)
    assert closes_at(both, [NEW_YORK], seven + 2 * HOUR) == local(NEW_YORK, 2026, 6, 8, 12, 0)
    assert next_opening(both, [NEW_YORK], local(NEW_YORK, 2026, 6, 8, 12, 0)) == local(
        NEW_YORK, 2026, 6, 15, 8, 0
    )
    # No windows at all: no hours imposed.
    assert is_open((), None, seven)


def test_ranges_cross_midnight_into_the_next_day() -> None:
    window = parse_calling_window({"days": {"fri": [["22:00", "02:00"]]}})
    friday = local(NEW_YORK, 2026, 6, 12, 21, 0)  # a Friday
    assert next_opening(window, [NEW_YORK], friday) == local(NEW_YORK, 2026, 6, 12, 22, 0)
    assert is_open(window, [NEW_YORK], local(NEW_YORK, 2026, 6, 13, 1, 59))
    assert closes_at(window, [NEW_YORK], friday + HOUR) == local(NEW_YORK, 2026, 6, 13, 2, 0)
    assert not is_open(window, [NEW_YORK], local(NEW_YORK, 2026, 6, 13, 22, 30))  # Saturday


def test_adjacent_days_join_into_one_opening() -> None:
    window = parse_calling_window({"days": {d: [["00:00", "24:00"]] for d in ("mon", "tue")}})
    monday = local(NEW_YORK, 2026, 6, 8, 10, 0)
    assert closes_at(window, [NEW_YORK], monday) == local(NEW_YORK, 2026, 6, 10, 0, 0)
    always = CallingWindow.every_day("00:00", "24:00")
    assert closes_at(always, [NEW_YORK], monday) == monday + HORIZON_MS


def test_skip_dates_close_the_whole_local_day() -> None:
    window = parse_calling_window(
        {"days": {d: [["20:00", "02:00"]] for d in WEEKDAYS}, "skipDates": ["2026-12-25"]}
    )
    eve = local(NEW_YORK, 2026, 12, 24, 21, 0)
    assert closes_at(window, [NEW_YORK], eve) == local(NEW_YORK, 2026, 12, 25, 0, 0)
    assert not is_open(window, [NEW_YORK], local(NEW_YORK, 2026, 12, 25, 1, 0))
    midnight = local(NEW_YORK, 2026, 12, 25, 0, 0)
    assert next_opening(window, [NEW_YORK], midnight) == local(NEW_YORK, 2026, 12, 26, 20, 0)
    # The date is the recipient's: still the 24th in Los Angeles when New York is on the 25th.
    la_eve = local(LOS_ANGELES, 2026, 12, 24, 21, 30)
    assert is_open(window, [LOS_ANGELES], la_eve)


def test_a_window_of_only_skipped_days_never_opens() -> None:
    days = [date(2026, 6, 1) + timedelta(days=7 * i) for i in range(50)]  # Mondays
    window = parse_calling_window(
        {"days": {"mon": [["09:00", "17:00"]]}, "skipDates": [d.isoformat() for d in days]}
    )
    at = local(NEW_YORK, 2026, 6, 1, 0, 0)
    assert next_opening(window, [NEW_YORK], at) == local(NEW_YORK, 2027, 5, 17, 9, 0)
    every_monday = [date(2026, 6, 1) + timedelta(days=7 * i) for i in range(54)]
    never = parse_calling_window(
        {"days": {"mon": [["09:00", "17:00"]]}, "skipDates": [d.isoformat() for d in every_monday]}
    )
    assert next_opening(never, [NEW_YORK], at) is None
    assert not is_open(never, [NEW_YORK], local(NEW_YORK, 2026, 6, 8, 10, 0))


def test_min_open_skips_openings_too_short_for_a_dial() -> None:
    window = parse_calling_window({"days": {"mon": [["09:00", "09:01"], ["10:00", "11:00"]]}})
    at = local(NEW_YORK, 2026, 6, 8, 8, 0)
    assert next_opening(window, [NEW_YORK], at) == local(NEW_YORK, 2026, 6, 8, 9, 0)
    assert next_opening(window, [NEW_YORK], at, min_open_ms=2 * MINUTE) == local(
        NEW_YORK, 2026, 6, 8, 10, 0
    )
    late = local(NEW_YORK, 2026, 6, 8, 10, 59, 59)
    assert next_opening(window, [NEW_YORK], late, min_open_ms=5_000) == local(
        NEW_YORK, 2026, 6, 15, 9, 0
    )


# --- daylight saving ---------------------------------------------------------------------------
# 2026: New York springs forward on 8 March at 02:00 (to 03:00) and falls back on 1 November
# at 02:00 (to 01:00); London springs forward on 29 March at 01:00 (to 02:00) and falls back on
# 25 October at 02:00 (to 01:00).


@pytest.mark.parametrize(
    ("zone", "day", "offset_before", "offset_on"),
    [
        (NEW_YORK, (2026, 3, 8), -5, -4),
        (NEW_YORK, (2026, 11, 1), -4, -5),
        (LONDON, (2026, 3, 29), 0, 1),
        (LONDON, (2026, 10, 25), 1, 0),
    ],
)
def test_daytime_windows_follow_the_clock_change(
    zone: str, day: tuple[int, int, int], offset_before: int, offset_on: int
) -> None:
    y, m, d = day
    midnight = local(zone, y, m, d, 0, 0)
    on = next_opening(EIGHT_TO_NINE, [zone], midnight - DAY + HOUR)
    assert on == utc(y, m, d, 8) - DAY - offset_before * HOUR  # the day before
    on = next_opening(EIGHT_TO_NINE, [zone], midnight + 3 * HOUR)
    assert on == utc(y, m, d, 8) - offset_on * HOUR
    assert on == local(zone, y, m, d, 8, 0)
    assert closes_at(EIGHT_TO_NINE, [zone], on) == utc(y, m, d, 21) - offset_on * HOUR


def test_new_york_spring_forward_night() -> None:
    spring = (2026, 3, 8)
    change = utc(2026, 3, 8, 7, 0)  # 02:00 EST becomes 03:00 EDT
    # A night window loses the skipped hour: 00:00-06:00 lasts five hours.
    night = parse_calling_window({"days": {"sun": [["00:00", "06:00"]]}})
    start = next_opening(night, [NEW_YORK], utc(2026, 3, 7, 12))
    assert start == utc(2026, 3, 8, 5)
    assert closes_at(night, [NEW_YORK], start) == utc(2026, 3, 8, 10)
    # A start inside the skipped hour opens at the change: 02:30 never shows on the clock.
    late_start = parse_calling_window({"days": {"sun": [["02:30", "04:00"]]}})
    assert next_opening(late_start, [NEW_YORK], utc(2026, 3, 7, 12)) == change
    assert not is_open(late_start, [NEW_YORK], change - 1)
    assert closes_at(late_start, [NEW_YORK], change) == local(NEW_YORK, *spring, 4, 0)
    # An end inside the skipped hour closes at the change.
    early_end = parse_calling_window({"days": {"sun": [["01:00", "02:30"]]}})
    opened = next_opening(early_end, [NEW_YORK], utc(2026, 3, 7, 12))
    assert opened == local(NEW_YORK, *spring, 1, 0)
    assert closes_at(early_end, [NEW_YORK], opened) == change
    # A range wholly inside the skipped hour does not open that day.
    gone = parse_calling_window({"days": {"sun": [["02:10", "02:50"]]}})
    assert next_opening(gone, [NEW_YORK], utc(2026, 3, 7, 12)) == local(
        NEW_YORK, 2026, 3, 15, 2, 10
    )


def test_new_york_fall_back_night() -> None:
    change = utc(2026, 11, 1, 6, 0)  # 02:00 EDT becomes 01:00 EST
    # A night window gains the repeated hour: 00:00-06:00 lasts seven hours.
    night = parse_calling_window({"days": {"sun": [["00:00", "06:00"]]}})
    start = next_opening(night, [NEW_YORK], utc(2026, 10, 31, 12))
    assert start == utc(2026, 11, 1, 4)
    assert closes_at(night, [NEW_YORK], start) == utc(2026, 11, 1, 11)
    # A start in the repeated hour waits for its second occurrence (01:30 EST).
    late_start = parse_calling_window({"days": {"sun": [["01:30", "03:00"]]}})
    opened = next_opening(late_start, [NEW_YORK], utc(2026, 10, 31, 12))
    assert opened == local(NEW_YORK, 2026, 11, 1, 1, 30, fold=1) == change + 30 * MINUTE
    assert not is_open(late_start, [NEW_YORK], local(NEW_YORK, 2026, 11, 1, 1, 45, fold=0))
    # An end in the repeated hour closes at its first occurrence (01:30 EDT) and stays shut
    # when the clock reads 01:00-01:30 again.
    early_end = parse_calling_window({"days": {"sun": [["00:00", "01:30"]]}})
    opened = next_opening(early_end, [NEW_YORK], utc(2026, 10, 31, 12))
    assert closes_at(early_end, [NEW_YORK], opened) == local(NEW_YORK, 2026, 11, 1, 1, 30, fold=0)
    assert not is_open(early_end, [NEW_YORK], local(NEW_YORK, 2026, 11, 1, 1, 15, fold=1))


def test_london_spring_forward_and_fall_back_nights() -> None:
    window = parse_calling_window({"days": {"sun": [["01:30", "02:30"]]}})
    # 29 March: 01:00 GMT becomes 02:00 BST; 01:30 does not exist, so it opens at the change
    # (01:00 UTC) and closes at 02:30 BST (01:30 UTC).
    opened = next_opening(window, [LONDON], utc(2026, 3, 28, 12))
    assert opened == utc(2026, 3, 29, 1, 0)
    assert closes_at(window, [LONDON], opened) == utc(2026, 3, 29, 1, 30)
    # 25 October: 02:00 BST becomes 01:00 GMT; 01:30 happens twice, the window opens at the
    # second (01:30 GMT) and closes at 02:30 GMT.
    opened = next_opening(window, [LONDON], utc(2026, 10, 24, 12))
    assert opened == utc(2026, 10, 25, 1, 30)
    assert closes_at(window, [LONDON], opened) == utc(2026, 10, 25, 2, 30)
    assert not is_open(window, [LONDON], utc(2026, 10, 25, 0, 45))  # 01:45 BST, first pass


# --- properties over random windows, zones and instants --------------------------------------

ZONES = [NEW_YORK, LOS_ANGELES, LONDON, "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kolkata"]


@st.composite
def windows(draw: st.DrawFn) -> CallingWindow:
    minutes = st.integers(0, 24 * 60 - 1).map(lambda m: m - m % 15)
    days: dict[str, list[list[str]]] = {}
    for name in draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True)):
        ranges = []
        for _ in range(draw(st.integers(1, 3))):
            start, end = draw(minutes), draw(minutes)
            if start == end:
                end = (start + 60) % (24 * 60)
            ranges.append([_hhmm(start), _hhmm(end)])
        days[name] = ranges
    skip = draw(st.lists(st.dates(date(2026, 1, 1), date(2026, 12, 31)), max_size=20))
    return parse_calling_window({"days": days, "skipDates": [d.isoformat() for d in skip]})


def _hhmm(m: int) -> str:
    return f"{m // 60:02d}:{m % 60:02d}"


def _wall_inside(window: CallingWindow, zone: str, at_ms: int) -> bool:
    """The plain reading of a window: the recipient's wall clock is inside one of its ranges."""
    now = datetime.fromtimestamp(at_ms / 1000, ZoneInfo(zone))
    minute = now.hour * 60 + now.minute
    today, yesterday = now.date(), now.date() - timedelta(days=1)
    if today in window.skip_dates:
        return False
    for r in window.days[today.weekday()]:
        if r.start <= minute < (r.end if not r.crosses_midnight else 24 * 60):
            return True
    if yesterday in window.skip_dates:
        return False
    return any(r.crosses_midnight and minute < r.end for r in window.days[yesterday.weekday()])


def _near_a_clock_change(zone: str, at_ms: int) -> bool:
    z = ZoneInfo(zone)
    offsets = {datetime.fromtimestamp(at_ms / 1000 + d, z).utcoffset() for d in (-93600, 0, 93600)}
    return len(offsets) > 1


instants = st.integers(utc(2025, 12, 1), utc(2027, 1, 31))
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(windows(), st.sampled_from(ZONES), instants)
def test_open_only_when_the_wall_clock_is_inside_a_range(
    window: CallingWindow, zone: str, at: int
) -> None:
    opened = is_open(window, [zone], at)
    if opened:
        assert _wall_inside(window, zone, at)
    elif not _near_a_clock_change(zone, at):
        assert not _wall_inside(window, zone, at)


@PROPERTY
@given(windows(), st.sampled_from(ZONES), instants)
def test_next_opening_is_open_and_nothing_earlier_is(
    window: CallingWindow, zone: str, at: int
) -> None:
    opening = next_opening(window, [zone], at)
    assert opening is not None  # every generated window opens within a year
    assert opening >= at
    assert is_open(window, [zone], opening)
    if opening > at:
        assert not is_open(window, [zone], at)
        assert not is_open(window, [zone], opening - 1)
        assert not is_open(window, [zone], (at + opening) // 2) or _wall_inside(
            window, zone, (at + opening) // 2
        )
    end = closes_at(window, [zone], opening)
    assert end is not None and end > opening
    assert is_open(window, [zone], end - 1)
    assert end == opening + HORIZON_MS or not is_open(window, [zone], end)


@PROPERTY
@given(windows(), st.lists(st.sampled_from(ZONES), min_size=2, max_size=3, unique=True), instants)
def test_several_zones_are_the_intersection(
    window: CallingWindow, zones: list[str], at: int
) -> None:
    assert is_open(window, zones, at) == all(is_open(window, [z], at) for z in zones)


@PROPERTY
@given(
    windows(),
    st.lists(st.sampled_from(ZONES), min_size=1, max_size=2, unique=True),
    instants,
    st.sampled_from([0, 1, 2_000, HOUR, 3 * DAY]),
)
def test_open_through_agrees_with_closes_at(
    window: CallingWindow, zones: list[str], at: int, lead: int
) -> None:
    # The gate's cheap question must answer as the year-long walk of closes_at would.
    end = closes_at(window, zones, at)
    assert open_through(window, zones, at, at + lead) == (end is not None and end > at + lead)


def test_open_through_a_window_that_never_closes_and_one_without_zones() -> None:
    always = CallingWindow.every_day("00:00", "24:00")
    at = utc(2026, 6, 10, 12, 0)
    assert open_through(always, [NEW_YORK, LONDON], at, at + 2_000)
    assert not open_through(always, [], at, at + 2_000)
    nine = local(NEW_YORK, 2026, 6, 10, 21, 0)
    assert open_through(EIGHT_TO_NINE, [NEW_YORK], nine - 2_001, nine - 1)
    assert not open_through(EIGHT_TO_NINE, [NEW_YORK], nine - 2_000, nine)
