"""Compliance profiles: which rule packs a batch obeys, and what that means for one number.

A profile names a set of packs (``none``: no pack; ``us``; ``ca``). The workspace has one; a
batch may name its own only if it is *at least as strict*: if it contains every pack of the
workspace's profile. So ``us`` and ``ca`` may tighten ``none``, ``none`` may not loosen ``us``,
and ``us`` and ``ca`` are not comparable (neither contains the other's rules) and a batch
cannot switch from one to the other.

The effective rules for a number are the batch's own window (if any), every hours rule of the
profile's packs, and the rules of the number's region (a US state by area code); a call may
start only when all of them are open. Caps are the workspace's caps plus the region's; all
must allow the dial. A pack is a floor: no batch setting widens it.

Not legal advice: see docs/compliance.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dialbatch.domain.caps import NO_CAPS, Caps
from dialbatch.domain.compliance.ca import CA
from dialbatch.domain.compliance.rules import CapRule, Pack, RegionRules, WindowRule
from dialbatch.domain.compliance.us import US
from dialbatch.domain.windows import CallingWindow

__all__ = [
    "DEFAULT_PROFILE",
    "PACKS",
    "PROFILES",
    "CapRule",
    "InvalidProfile",
    "Pack",
    "Policy",
    "ProfileNotStricter",
    "RegionRules",
    "WindowRule",
    "combined_caps",
    "effective_policy",
    "is_at_least_as_strict",
    "join_profiles",
    "packs_of",
    "parse_profile",
    "region_for",
]

PACKS: dict[str, Pack] = {"us": US, "ca": CA}
PROFILES: dict[str, tuple[Pack, ...]] = {"none": (), "us": (US,), "ca": (CA,)}
DEFAULT_PROFILE = "none"  # a client of today's API sees no change

BATCH_WINDOW_RULE = "batch.callingWindow"
WORKSPACE_WINDOW_RULE = "workspace.callingWindow"  # the default of a batch with none
WORKSPACE_CAPS_RULE = "workspace.frequencyCaps"


class InvalidProfile(ValueError):
    """An unknown compliance profile name; the message lists the known ones."""


class ProfileNotStricter(ValueError):
    """A batch asked for a profile that would loosen its workspace's."""


def parse_profile(raw: object, field: str = "complianceProfile") -> str:
    if not isinstance(raw, str) or raw not in PROFILES:
        shown = raw if isinstance(raw, str) and len(raw) <= 40 else type(raw).__name__
        raise InvalidProfile(
            f"{field} {shown!r} is not a compliance profile; use one of {', '.join(PROFILES)}"
        )
    return raw


def _packs(profile: str) -> frozenset[str]:
    return frozenset(p.name for p in PROFILES[parse_profile(profile)])


def packs_of(profile: str) -> tuple[Pack, ...]:
    """The packs of a profile name, or of a joined name such as "ca+us" (see below)."""
    known = PROFILES.get(profile)
    if known is not None:
        return known
    try:
        return tuple(PACKS[name] for name in profile.split("+"))
    except KeyError:
        raise InvalidProfile(f"{profile!r} is not a compliance profile") from None


def join_profiles(*profiles: str) -> str:
    """The least strict profile at least as strict as each of ``profiles``.

    Used at dial time: a batch keeps the profile it was created with, and its workspace's
    profile may have been raised since; the batch obeys both. When neither contains the
    other ("us" and "ca") the answer names every pack, joined with "+" ("ca+us"): a name
    no client may send, only the gate uses.
    """
    names = sorted({pack.name for profile in profiles for pack in packs_of(profile)})
    return "+".join(names) if names else DEFAULT_PROFILE


def is_at_least_as_strict(batch_profile: str, workspace_profile: str) -> bool:
    """Whether a batch may use ``batch_profile`` in a workspace whose profile is the other.

    True when the batch's profile contains every pack of the workspace's (a partial order:
    ``none`` < ``us``, ``none`` < ``ca``, ``us`` and ``ca`` incomparable).
    """
    return _packs(batch_profile) >= _packs(workspace_profile)


def region_for(e164: str, profile: str) -> str | None:
    """The region whose rules apply to a number under a profile (e.g. "US-FL"), if any."""
    for pack in packs_of(profile):
        region = pack.region_of(e164)
        if region is not None:
            return region
    return None


@dataclass(frozen=True)
class Policy:
    """A batch's effective policy: its profile, its own window, the workspace's caps."""

    profile: str = DEFAULT_PROFILE
    window: CallingWindow | None = None
    caps: Caps = NO_CAPS
    require_consent: bool = False
    # Whose window ``window`` is, for the audit: the batch's own or its workspace's default.
    window_rule: str = BATCH_WINDOW_RULE

    @property
    def packs(self) -> tuple[Pack, ...]:
        return packs_of(self.profile)

    def window_rules(self, region: str | None) -> tuple[WindowRule, ...]:
        """Every window a call to a number of ``region`` must be inside: all must be open."""
        rules: list[WindowRule] = []
        if self.window is not None:
            whose = (
                "workspace's default" if self.window_rule == WORKSPACE_WINDOW_RULE else "batch's"
            )
            rules.append(WindowRule(self.window_rule, f"the {whose} callingWindow", self.window))
        for pack in self.packs:
            rules.extend(pack.hours)
            regional = pack.region_rules(region)
            if regional is not None:
                rules.extend(regional.hours)
        return tuple(rules)

    def windows(self, region: str | None) -> tuple[CallingWindow, ...]:
        """The same, as windows for :func:`dialbatch.domain.windows.is_open` and friends."""
        return tuple(rule.window for rule in self.window_rules(region))

    def cap_rules(self, region: str | None) -> tuple[CapRule, ...]:
        """Every cap a dial to a number of ``region`` must stay within."""
        rules: list[CapRule] = []
        if self.caps.periods():
            rules.append(CapRule(WORKSPACE_CAPS_RULE, "the workspace's frequencyCaps", self.caps))
        for pack in self.packs:
            rules.extend(pack.caps)
            regional = pack.region_rules(region)
            if regional is not None:
                rules.extend(regional.caps)
        return tuple(rules)


def effective_policy(
    workspace_profile: str,
    *,
    batch_profile: str | None = None,
    window: CallingWindow | None = None,
    caps: Caps = NO_CAPS,
    require_consent: bool = False,
) -> Policy:
    """The policy a batch runs under; refuses a batch profile that loosens the workspace's.

    ``window`` is the batch's own ``callingWindow`` (or the workspace's default window when
    the batch has none); ``caps`` are the workspace's frequency caps.
    """
    profile = parse_profile(workspace_profile, "workspace complianceProfile")
    if batch_profile is not None:
        wanted = parse_profile(batch_profile)
        if not is_at_least_as_strict(wanted, profile):
            raise ProfileNotStricter(
                f"complianceProfile {wanted!r} is not at least as strict as the workspace's"
                f" {profile!r}; a batch may only add rules to its workspace's profile"
            )
        profile = wanted
    return Policy(profile=profile, window=window, caps=caps, require_consent=require_consent)


def combined_caps(rules: Sequence[CapRule]) -> Caps:
    """One set of caps equivalent to all of ``rules``: the smallest cap of each period."""

    def smallest(values: Sequence[int | None]) -> int | None:
        present = [v for v in values if v is not None]
        return min(present) if present else None

    return Caps(
        per_24h=smallest([r.caps.per_24h for r in rules]),
        per_30d=smallest([r.caps.per_30d for r in rules]),
    )
