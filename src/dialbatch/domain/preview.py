"""What a batch would be, before it is created: where its recipients are (time zones) and
how long it would take to run (an estimate), for `POST /v1/api/batch-calls/validate`.

The estimate is a pipeline's: calls start at most `calls_per_second` apart, and at most
`max_active` are in flight, each holding its slot for a typical dial (start to end: ringing
and talking). The run goes at the slower of the two rates, and ends one typical dial after
the last call starts. It assumes the batch runs alone in its workspace, every number is
dialed once (retries add dials), and no calling window or cap holds a call back; the
calls a window holds back at the start are counted apart (:func:`window_counts`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dialbatch.domain.compliance import Policy
from dialbatch.domain.gate import CallFacts, Defer, Refuse, decide
from dialbatch.domain.timezones import zones_for
from dialbatch.domain.windows import CallingWindow

# A dial's typical length (start to end) when the agent has no history to learn it from.
DEFAULT_SLOT_S = 60.0


@dataclass(frozen=True)
class RunEstimate:
    seconds: float  # from the first start to the last call's end
    calls_per_second: float  # the pace the run goes at
    limited_by: str  # "rate" (calls_per_second) or "concurrency" (max_active)


def estimate_run(
    calls: int, max_active: int, calls_per_second: float, slot_s: float
) -> RunEstimate:
    """How long `calls` dials take under the workspace's limits, each holding a slot for
    `slot_s` seconds (see the module docstring)."""
    by_concurrency = max_active / slot_s if slot_s > 0 else float("inf")
    pace = min(calls_per_second, by_concurrency)
    limited_by = "rate" if calls_per_second <= by_concurrency else "concurrency"
    if calls <= 0 or pace <= 0:
        return RunEstimate(0.0, pace, limited_by)
    # The first call starts at 0, the last at (calls - 1) / pace, and lasts slot_s.
    return RunEstimate((calls - 1) / pace + slot_s, pace, limited_by)


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
