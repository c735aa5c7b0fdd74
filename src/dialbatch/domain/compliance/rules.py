"""The shapes of a compliance rule pack: hours and caps, each with its name and source.

A pack is data: a table of rules, each naming the regulation it comes from, so the audit of
every gate decision can say which rule held a call back and why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dialbatch.domain.caps import Caps
from dialbatch.domain.windows import CallingWindow


@dataclass(frozen=True)
class WindowRule:
    """Calls may start only inside ``window`` (recipient-local unless the window fixes a zone)."""

    name: str  # stable id for the audit record, e.g. "us.federal.hours"
    source: str  # where the rule comes from, e.g. "47 CFR 64.1200(c)(1)"
    window: CallingWindow


@dataclass(frozen=True)
class CapRule:
    """At most ``caps`` dials to one number per rolling period, across every batch."""

    name: str
    source: str
    caps: Caps


@dataclass(frozen=True)
class RegionRules:
    """Rules that apply on top of a pack's own to numbers of one region (a US state)."""

    region: str  # ISO 3166-2, e.g. "US-FL"
    hours: tuple[WindowRule, ...] = ()
    caps: tuple[CapRule, ...] = ()


@dataclass(frozen=True)
class Pack:
    """One jurisdiction's rules.

    ``hours`` apply to every number a batch under this pack calls, whatever its country: a
    pack is a floor, and the stricter reading is the safe one. ``regions`` add rules for the
    numbers ``region_of`` places in a region.
    """

    name: str
    title: str
    hours: tuple[WindowRule, ...] = ()
    caps: tuple[CapRule, ...] = ()
    regions: tuple[RegionRules, ...] = ()
    region_of: Callable[[str], str | None] = field(default=lambda _e164: None, compare=False)

    def region_rules(self, region: str | None) -> RegionRules | None:
        for rules in self.regions:
            if rules.region == region:
                return rules
        return None
