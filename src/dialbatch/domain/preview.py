"""What a batch would be, before it is created: where its recipients are (time zones) and
how long it would take to run (an estimate), for `POST /v1/api/batch-calls/validate`.

The estimate is a pipeline's: calls start at most `calls_per_second` apart, and at most
`max_active` are in flight (or the batch's own `maxConcurrency`, when lower), each holding
its slot for a typical dial (start to end: ringing and talking), or longer when the agent's
latest batch showed that ending a call and filling its slot again took time too
(:func:`slot_seconds`). The run goes at the slower of the two rates, and ends one typical
dial (not one slot: nothing waits for the refill) after the last call starts.

With a calling window the run goes at that pace only while the window is open for some of
its numbers: the numbers are grouped by the zones the window is read in (the recipient's
candidate zones, or the window's fixed zone), and the open groups share the pace in
proportion to what each has left (the claim takes due calls in CSV order, so the groups are
mixed). While every group with calls left is closed, the run waits for the next opening. A
number the window never opens for (no known zone, under a recipient window) is never
called; it is counted apart and left out of the time.

It assumes the batch runs alone in its workspace and every number is dialed once (retries
add dials). The calls a window holds back at the start are counted apart
(:func:`window_counts`).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dialbatch.domain.compliance import Policy
from dialbatch.domain.gate import CallFacts, Defer, Refuse, decide
from dialbatch.domain.timezones import zones_for
from dialbatch.domain.windows import CallingWindow, closes_at, next_opening

# A dial's typical length (start to end) when the agent has no history to learn it from.
DEFAULT_SLOT_S = 60.0


@dataclass(frozen=True)
class RunEstimate:
    seconds: float  # from the first start to the last call's end
    calls_per_second: float  # the pace the run goes at while it may dial
    limited_by: str  # "rate", "concurrency" (the workspace's cap) or "batchConcurrency"
    waiting_s: float = 0.0  # of `seconds`, spent with the window closed for every call left
    never_in_window: int = 0  # calls the window never opens for, left out of `seconds`


def pace(
    max_active: int, calls_per_second: float, slot_s: float, max_concurrency: int | None = None
) -> tuple[float, str]:
    """The calls per second a run goes at, and which limit sets it."""
    cap, cap_name = max_active, "concurrency"
    if max_concurrency is not None and max_concurrency < max_active:
        cap, cap_name = max_concurrency, "batchConcurrency"
    by_concurrency = cap / slot_s if slot_s > 0 else float("inf")
    if calls_per_second <= by_concurrency:
        return calls_per_second, "rate"
    return by_concurrency, cap_name


def estimate_run(
    calls: int,
    max_active: int,
    calls_per_second: float,
    slot_s: float,
    *,
    max_concurrency: int | None = None,
    dial_s: float | None = None,
) -> RunEstimate:
    """How long `calls` dials take under the limits with no calling window, each holding
    a slot for `slot_s` seconds and lasting `dial_s` (default `slot_s`; see the module
    docstring)."""
    rate, limited_by = pace(max_active, calls_per_second, slot_s, max_concurrency)
    if calls <= 0 or rate <= 0:
        return RunEstimate(0.0, rate, limited_by)
    # The first call starts at 0, the last at (calls - 1) / rate, and lasts dial_s.
    last = slot_s if dial_s is None else dial_s
    return RunEstimate((calls - 1) / rate + last, rate, limited_by)


def estimate_windowed_run(
    groups: Sequence[tuple[Sequence[str], int]],
    unknown_zone: int,
    window: CallingWindow,
    start_ms: int,
    max_active: int,
    calls_per_second: float,
    slot_s: float,
    *,
    max_concurrency: int | None = None,
    dial_s: float | None = None,
) -> RunEstimate:
    """`estimate_run` under a calling window: `groups` are (candidate zones, calls) as
    `zone_counts` gives them, `unknown_zone` the calls with no known zone, and the run
    starts at `start_ms` (see the module docstring)."""
    rate, limited_by = pace(max_active, calls_per_second, slot_s, max_concurrency)
    left: dict[tuple[str, ...], float] = {}
    for zones, n in [*groups, ((), unknown_zone)]:
        key = window.zones(zones)
        left[key] = left.get(key, 0.0) + n
    never = round(left.pop((), 0.0))  # a recipient window and no zone: never open
    t = float(start_ms)
    last_start: float | None = None
    waiting_ms = 0.0
    while left and rate > 0:
        at = int(t)
        open_until: dict[tuple[str, ...], int] = {}
        next_change: int | None = None
        for zones in list(left):
            end = closes_at(window, zones, at)
            if end is None:
                begin = next_opening(window, zones, at + 1)
                if begin is None:  # not within a year: never
                    never += round(left.pop(zones))
                    continue
                next_change = begin if next_change is None else min(next_change, begin)
            else:
                open_until[zones] = end
                next_change = end if next_change is None else min(next_change, end)
        if next_change is None:
            break
        if not open_until:
            waiting_ms += next_change - t
            t = float(next_change)
            continue
        calls = sum(left[z] for z in open_until)
        need_ms = calls / rate * 1000.0
        if t + need_ms <= next_change:
            t += need_ms
            last_start = t
            for zones in open_until:
                del left[zones]
            continue
        done = rate * (next_change - t) / 1000.0 / calls  # the share of each group dialed
        for zones in open_until:
            left[zones] *= 1.0 - done
        t = float(next_change)
        last_start = t
    if last_start is None:
        return RunEstimate(0.0, rate, limited_by, never_in_window=never)
    # As without a window: the last call starts one interval before the work is done.
    last = slot_s if dial_s is None else dial_s
    seconds = max(0.0, (last_start - start_ms) / 1000.0 - 1.0 / rate) + last
    return RunEstimate(seconds, rate, limited_by, waiting_ms / 1000.0, never)


# A gap between starts this many times the mean is a pause (a closed window, a pause, a
# retry gap), not the pace: it is left out.
PAUSE_GAP_FACTOR = 20
MIN_STARTS = 20


def achieved_pace(starts: Sequence[int], ramp_up: int = 0) -> float | None:
    """Dials started per second over `starts` (ms), leaving out the pauses and the first
    `ramp_up` starts; None with fewer than MIN_STARTS starts left.

    Pass the batch's cap as `ramp_up`: when `starts` reach back to the batch's beginning,
    its first cap calls started on the rate's schedule alone, with every slot free, and
    would make a batch that the cap held back look faster than it went (the steady part
    is what a slot's time is learned from). When they do not, a cap's worth of starts is
    dropped from hundreds, which changes the pace by noise only."""
    ordered = sorted(starts)[max(0, ramp_up) :]
    if len(ordered) < MIN_STARTS:
        return None
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    mean = (ordered[-1] - ordered[0]) / len(gaps)
    kept = [g for g in gaps if g <= PAUSE_GAP_FACTOR * mean]
    total_ms = sum(kept)
    return len(kept) / total_ms * 1000.0 if total_ms > 0 else None


def slot_seconds(
    dial_s: float, pace_then: float | None, cap_then: int, calls_per_second: float
) -> float:
    """How long a call holds a slot: the dial itself, or longer when the agent's latest
    batch went slower than its rate. Then the cap, not the rate, held it back, and by
    Little's law each slot was held cap / pace seconds: the dial plus what ending it and
    filling the slot again took (on a loaded host, or with calls of a fraction of a
    second, that is not small). The latest batch is assumed to have run alone, under the
    same limits."""
    if pace_then is None or pace_then >= SLOWER_THAN_RATE * calls_per_second:
        return dial_s
    return max(dial_s, cap_then / pace_then)


# A batch that went below this share of its rate was held back by the cap. Close to 1: the
# shared schedule keeps a rate-bound batch within a fraction of a percent of its rate, and a
# lower threshold would take a batch that the cap held back to 0.9 of its rate for one
# that kept it, an estimate up to 11 % short (0.9 gave that).
SLOWER_THAN_RATE = 0.97


def zone_counts(
    phones: Sequence[str | None], own: Sequence[str | None] = ()
) -> tuple[list[tuple[tuple[str, ...], int]], int]:
    """The time zones of the calls (None entries skipped), most calls first, and how many
    numbers no zone could be found for: a row's own zone (``own``, the upload's ``timezone``
    column, one entry per phone when the column is present), else the number's candidate
    zones. A number with several candidate zones (a split area code) is counted once, under
    its set of candidates."""
    found: Counter[tuple[str, ...]] = Counter()
    if own:
        for e164, zone in zip(phones, own, strict=True):
            if e164 is not None:
                found[(zone,) if zone else zones_for(e164)] += 1
    else:
        for e164 in phones:
            if e164 is not None:
                found[zones_for(e164)] += 1
    unknown = found.pop((), 0)
    return sorted(found.items(), key=lambda kv: (-kv[1], kv[0])), unknown


@dataclass(frozen=True)
class WindowCounts:
    outside: int  # calls whose window is closed at the start: they wait for its opening
    refused: int  # calls the window cannot place (no known zone): the gate would end them


def window_counts(
    zone_groups: Iterable[tuple[tuple[str, ...], int]],
    unknown: int,
    window: CallingWindow | None,
    at_ms: int,
) -> WindowCounts:
    """How the gate would answer the batch's calls at ``at_ms`` under its calling window,
    asked once per set of candidate zones (the groups of :func:`zone_counts`)."""
    if window is None:
        return WindowCounts(0, 0)
    policy = Policy(window=window)
    outside = refused = 0
    for zones, n in [*zone_groups, ((), unknown)]:
        if not n:
            continue
        answer = decide(CallFacts(zones=zones), policy, at_ms)
        if isinstance(answer, Defer):
            outside += n
        elif isinstance(answer, Refuse):
            refused += n
    return WindowCounts(outside, refused)
