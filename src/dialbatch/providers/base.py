"""The provider protocol every adapter (simulated, Twilio, SIP, ...) implements.

Placing a call returns at once with the provider's id; the outcome arrives later through
the sink given at construction. The dispatcher never holds a task per live call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dialbatch.domain.outcomes import CallEvent

EventSink = Callable[[CallEvent], Awaitable[None]]


@dataclass(frozen=True)
class DialRequest:
    dial_key: str  # idempotency key: the same key never rings a phone twice
    job_id: str
    to: str
    from_: str | None
    metadata: dict[str, Any]
    agent_id: str
    agent_config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Live:
    """fetch_status's answer for a call the provider still has up or ringing."""

    provider_call_id: str


class ProviderError(Exception):
    """The provider could not be asked (network, 5xx): a connection-level failure."""


class DialNotFound(Exception):
    """The provider provably never received this dial."""


class OutcomeUnknowable(Exception):
    """The provider cannot say what became of this dial."""


class Provider(Protocol):
    name: str

    async def start_call(self, request: DialRequest) -> str:
        """Place the call; returns the provider's call id. Idempotent on dial_key."""
        ...

    async def hangup(self, provider_call_id: str) -> None:
        """Cancel while ringing, hang up when answered."""
        ...

    async def fetch_status(self, dial_key: str, provider_call_id: str | None) -> CallEvent | Live:
        """The authority for reconciliation: a final event, Live, or raises DialNotFound /
        OutcomeUnknowable."""
        ...

    async def aclose(self) -> None: ...
