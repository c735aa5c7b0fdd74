"""Which caller number a dial shows: the agent's pool, local presence, rotation and limits.

An agent's ``fromNumbers`` is a pool. For each dial the rule below picks one, in this order:

1. **A retry keeps its person's number.** The caller number of the call's first dial, if it
   is still in the pool: the person sees the same number calling back.
2. **Local presence.** Else the pool's numbers "local" to the recipient: the same country
   calling code and, for the North American plan (+1), the same area code (the first three
   digits of the national number); elsewhere the same geographic area code where the country
   has them (``phonenumbers``), else the same country.
3. **Rotation.** Else every number of the pool.

Within a step the number free soonest is taken, and among those free now the one whose last
dial is oldest (least recently used), which is rotation: across workers too, because the
dials it counts are the ledger's, not a worker's memory.

**Limits.** A number may have its own ``callsPerSecond`` (starts in any one-second window)
and ``perDay`` (starts in any rolling 24 hours). A step whose best number is busy for at most
:data:`MAX_WAIT_MS` is waited for (the dial is deferred until it frees: a retry keeps its
number, a 212 recipient gets the 212 number); a step whose numbers are busy for longer (a
daily limit reached) is passed over for the next step. When every number is busy for longer,
the dial waits for the one free soonest.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

DAY_MS = 24 * 3600 * 1000
SECOND_MS = 1000
# How long a dial waits for the number its step prefers before the rule falls through to
# the next step: a per-second limit frees within a second; a daily one does not.
MAX_WAIT_MS = 60_000
# A per-second limit is kept at the carrier, which counts a start when the dial's request
# reaches it, whatever the request took to get there (a loaded host, a slow network): each
# start in the ledger is the time the provider *answered* the dial's request (no earlier than
# it reached the carrier), and a dial whose request is still out counts as starting now
# (store/caller_dials.py). A next start is admitted at the intent (before its own request is
# sent) only a full second after those: the carrier sees them at least a second apart.
# The margin covers the database clock's rounding to whole milliseconds.
PACE_MARGIN_MS = 5
# How long a dial's request may be out before its fate is the reconciler's: the longest
# request timeout a provider may be given (Twilio's and Telnyx's are at most 120 s). A dial
# whose worker died with the request out keeps its number busy that long, no longer.
IN_FLIGHT_MS = 125_000
# Limits a number may be given, each at least 1 (0 would mean "never", which is what taking
# the number out of the pool says).
MAX_CALLS_PER_SECOND = 1_000
MAX_PER_DAY = 1_000_000


class InvalidPool(ValueError):
    """A pool setting that cannot be used; the message names the field."""


@dataclass(frozen=True)
class CallerLimit:
    """A caller number's own limits; None: none of that kind."""

    calls_per_second: int | None = None
    per_day: int | None = None

    def to_json(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if self.calls_per_second is not None:
            out["callsPerSecond"] = self.calls_per_second
        if self.per_day is not None:
            out["perDay"] = self.per_day
        return out

    def window_ms(self) -> int:
        """How far back the ledger must be read to apply these limits."""
        return DAY_MS if self.per_day is not None else SECOND_MS


NO_LIMIT = CallerLimit()


@dataclass(frozen=True)
class CallerPool:
    """An agent's caller numbers (E.164, in its order) and the limits some of them have."""

    numbers: tuple[str, ...]
    limits: Mapping[str, CallerLimit] = field(default_factory=dict)

    def limit(self, number: str) -> CallerLimit:
        return self.limits.get(number, NO_LIMIT)

    def needs_ledger(self) -> bool:
        """Whether choosing needs the dials of the pool's numbers: rotation (two numbers
        or more) or a limit. A pool of one unlimited number is that number, always."""
        return len(self.numbers) > 1 or any(self.limit(n) != NO_LIMIT for n in self.numbers)

    def read_back_ms(self) -> int:
        """How far back the ledger's starts are read for the limits: a day with a daily
        limit, else the per-second window (the rotation reads each number's last start
        apart, whenever it was; dials still in flight are read whenever they began)."""
        day = any(self.limit(n).per_day for n in self.numbers)
        return DAY_MS if day else SECOND_MS + PACE_MARGIN_MS


def parse_limits(raw: Any, numbers: Sequence[str], field_name: str) -> dict[str, CallerLimit]:
    """``{"+12125550100": {"callsPerSecond": 1, "perDay": 500}}``, each key one of
    ``numbers`` (already E.164); a malformed value raises :class:`InvalidPool` naming it."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidPool(f"{field_name} must be an object of caller number -> limits")
    out: dict[str, CallerLimit] = {}
    for number, spec in raw.items():
        where = f"{field_name}.{number}"
        if number not in numbers:
            raise InvalidPool(f"{where}: not one of the agent's fromNumbers (write it in E.164)")
        if not isinstance(spec, dict):
            raise InvalidPool(f'{where} must be an object such as {{"callsPerSecond": 1}}')
        unknown = set(spec) - {"callsPerSecond", "perDay"}
        if unknown:
            raise InvalidPool(
                f"{where}: unknown key {sorted(unknown)[0]!r}; known: callsPerSecond, perDay"
            )
        cps = _limit(spec.get("callsPerSecond"), f"{where}.callsPerSecond", MAX_CALLS_PER_SECOND)
        day = _limit(spec.get("perDay"), f"{where}.perDay", MAX_PER_DAY)
        if cps is not None or day is not None:
            out[number] = CallerLimit(cps, day)
    return out


def _limit(value: Any, where: str, most: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise InvalidPool(f"{where} must be a whole number from 1 to {most} (got {value!r})")
    return value


@functools.lru_cache(maxsize=100_000)
def local_key(e164: str) -> str | None:
    """What "local" means for a number: ``+1212`` for New York's 212, ``+44 20`` for London
    (a geographic area code), ``+33`` for a country without one; None if unparsable."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    cc = parsed.country_code
    national = str(parsed.national_number)
    if cc == 1:
        return f"+1{national[:3]}"
    length = phonenumbers.length_of_geographical_area_code(parsed)
    return f"+{cc} {national[:length]}" if length else f"+{cc}"


def free_at(starts: Sequence[int], limit: CallerLimit, now: int) -> int:
    """The earliest time from `now` at which one more start keeps within `limit`, given the
    number's `starts` (epoch ms, oldest first)."""
    at = now
    spans = ((limit.calls_per_second, SECOND_MS + PACE_MARGIN_MS), (limit.per_day, DAY_MS))
    for most, span in spans:
        if most is None:
            continue
        recent = [t for t in starts if t > now - span]
        if len(recent) >= most:
            # The window (at - span, at] must hold fewer than `most` starts.
            at = max(at, recent[-most] + span)
    return at


@dataclass(frozen=True)
class Choice:
    number: str
    at: int  # when the dial may start: now, or later when it must wait for the number
    why: str  # "first" | "local" | "rotation": which step chose it, for the docs and tests


def choose(
    pool: CallerPool,
    recipient: str,
    first_used: str | None,
    starts: Mapping[str, Sequence[int]],
    now: int,
) -> Choice | None:
    """The caller number for one dial to `recipient`; None for an empty pool. `starts` is
    each number's starts so far (oldest first, the ledger's plus this transaction's)."""
    if not pool.numbers:
        return None

    def best(candidates: Sequence[str], why: str) -> Choice | None:
        if not candidates:
            return None
        ranked = sorted(
            candidates,
            key=lambda n: (
                free_at(starts.get(n, ()), pool.limit(n), now),
                (starts.get(n) or [-1])[-1],  # least recently used first
                pool.numbers.index(n),
            ),
        )
        number = ranked[0]
        return Choice(number, free_at(starts.get(number, ()), pool.limit(number), now), why)

    steps: list[tuple[list[str], str]] = []
    if first_used is not None and first_used in pool.numbers:
        steps.append(([first_used], "first"))
    key = local_key(recipient)
    local = [n for n in pool.numbers if key is not None and local_key(n) == key]
    if local:
        steps.append((local, "local"))
    steps.append((list(pool.numbers), "rotation"))
    fallback: Choice | None = None
    for candidates, why in steps:
        found = best(candidates, why)
        if found is None:
            continue
        if found.at - now <= MAX_WAIT_MS:
            return found
        if fallback is None or found.at < fallback.at:
            fallback = found
    return fallback
