"""Speed of the compliance gate's pure rules (issue 10), before they are wired in.

    python bench/gate_domain.py [--numbers 300000]

1. ``zones_for`` on realistic US numbers (random area code + exchange over the whole plan, so
   the prefix cache is as cold as a real 300k-row list makes it), first pass and second pass,
   against calling phonenumbers per number; and ``parse_timezone_column`` per cell.
2. ``is_open`` / ``closes_at`` for one number (the intent step's re-check), ``next_opening``
   from a closed instant, and the whole ``gate.decide`` under the ``us`` profile for a mix of
   numbers and times of day.

Prints figures; nothing is asserted. Timing varies with machine load: run it on a quiet box.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import phonenumbers
from phonenumbers import timezone as pn_timezone

from dialbatch.domain import timezones
from dialbatch.domain.compliance import Policy, region_for
from dialbatch.domain.gate import CallFacts, decide
from dialbatch.domain.phone import PhoneNormalizer
from dialbatch.domain.timezones import parse_timezone_column, zones_for
from dialbatch.domain.windows import CallingWindow, closes_at, is_open, next_opening

SEED = 10
NY_NOON_2026_06_10 = 1_781_107_200_000  # 2026-06-10 16:00 UTC


def us_numbers(n: int) -> list[str]:
    rng = random.Random(SEED)
    normalizer = PhoneNormalizer()
    out: list[str] = []
    while len(out) < n:
        raw = f"+1{rng.randrange(200, 1000)}{rng.randrange(200, 1000)}{rng.randrange(10000):04d}"
        try:
            out.append(normalizer.normalize(raw))
        except ValueError:
            continue
    return out


def rate(label: str, count: int, fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"  {label:<64} {count / seconds:>12,.0f} /s   ({seconds:.3f} s for {count:,})")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--numbers", type=int, default=300_000)
    parser.add_argument("--reference", type=int, default=30_000, help="numbers for the baseline")
    args = parser.parse_args()

    numbers = us_numbers(args.numbers)
    prefixes = len({n[:8] for n in numbers})
    keys = len({timezones._nanp_key(n) for n in numbers})
    print(
        f"1. time zones of {len(numbers):,} valid +1 numbers"
        f" ({prefixes:,} area+exchange prefixes, {keys:,} cache keys)"
    )
    timezones.clear_caches()
    rate(
        "zones_for, cold cache (first pass)", len(numbers), lambda: [zones_for(n) for n in numbers]
    )
    rate(
        "zones_for, warm cache (second pass)", len(numbers), lambda: [zones_for(n) for n in numbers]
    )
    sample = numbers[: args.reference]
    rate(
        "phonenumbers parse + time_zones_for_number (baseline)",
        len(sample),
        lambda: [pn_timezone.time_zones_for_number(phonenumbers.parse(n)) for n in sample],
    )
    cells = ["America/New_York", "Europe/London", "", "America/Los_Angeles"] * (len(numbers) // 4)
    rate("parse_timezone_column", len(cells), lambda: [parse_timezone_column(c) for c in cells])

    print("2. windows and the gate decision (us profile)")
    window = CallingWindow.every_day("08:00", "21:00")
    ny = ["America/New_York"]
    noon, night = NY_NOON_2026_06_10, NY_NOON_2026_06_10 + 11 * 3_600_000
    reps = 20_000
    rate(
        "is_open, one zone, open (same instant)",
        reps,
        lambda: [is_open(window, ny, noon) for _ in range(reps)],
    )
    instants = [noon + i * 61_000 for i in range(reps)]
    rate(
        "is_open, one zone, instants a minute apart",
        reps,
        lambda: [is_open(window, ny, t) for t in instants],
    )
    rate("closes_at, one zone", reps, lambda: [closes_at(window, ny, t) for t in instants])
    rate(
        "next_opening from 23:00",
        reps,
        lambda: [next_opening(window, ny, night) for _ in range(reps)],
    )
    policy = Policy(profile="us")
    mix = numbers[:reps]
    facts = [CallFacts(zones=zones_for(n), region=region_for(n, "us")) for n in mix]
    times = [noon + (i % 48) * 1_800_000 for i in range(reps)]  # every half hour of two days
    rate(
        "gate.decide, us profile, numbers of the whole plan, mixed times",
        reps,
        lambda: [decide(f, policy, t, dial_lead_ms=500) for f, t in zip(facts, times, strict=True)],
    )
    rng = random.Random(SEED)
    areas = ("212", "213", "312", "415", "512", "617", "646", "702", "305", "206", "404", "718")
    us_facts = [
        CallFacts(zones=zones_for(n), region=region_for(n, "us"))
        for n in (f"+1{rng.choice(areas)}555{rng.randrange(10000):04d}" for _ in range(reps))
    ]
    rate(
        "gate.decide, us profile, 12 big US area codes, mixed times",
        reps,
        lambda: [
            decide(f, policy, t, dial_lead_ms=500) for f, t in zip(us_facts, times, strict=True)
        ],
    )
    fl = CallFacts(
        zones=("America/New_York",), region="US-FL", recent_dials_ms=(noon - 3_600_000,) * 2
    )
    rate(
        "gate.decide, Florida number with 2 recent dials, admitted",
        reps,
        lambda: [decide(fl, policy, noon) for _ in range(reps)],
    )


if __name__ == "__main__":
    main()
