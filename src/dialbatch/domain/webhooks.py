"""Outbound webhooks' pure rules: the events one may subscribe to, which addresses a
delivery may reach, and when a failed delivery is tried again."""

from __future__ import annotations

import ipaddress
import random

# What an endpoint may subscribe to. `batch.paused` is accepted ahead of pause/resume,
# so an endpoint made today receives those events once they exist.
WEBHOOK_EVENTS: tuple[str, ...] = (
    "call.started",
    "call.completed",
    "call.failed",
    "batch.started",
    "batch.completed",
    "batch.cancelled",
    "batch.paused",
)
MAX_URL_LENGTH = 2048


def unknown_events(names: list[str]) -> list[str]:
    return [n for n in names if n not in WEBHOOK_EVENTS]


def is_public_address(address: str) -> bool:
    """A globally routable unicast address: not loopback, private, link-local, shared
    (CGNAT), reserved, multicast or unspecified; IPv4-mapped IPv6 is judged as IPv4."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def retry_delay_ms(
    attempt: int, *, base_ms: float, max_ms: float, rng: random.Random | None = None
) -> int:
    """The wait after failed attempt number `attempt` (1, 2, ...): base * 2^(attempt-1),
    at most max_ms, with +-20 % jitter so a receiver coming back is not hit by every
    retry at once."""
    delay = min(max_ms, base_ms * 2 ** min(attempt - 1, 40))
    return int(delay * (rng or random).uniform(0.8, 1.2))
