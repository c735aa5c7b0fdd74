"""The provider protocol every adapter (simulated, Twilio, SIP, ...) implements.

Placing a call returns at once with the provider's id; the outcome arrives later through
the sink given at construction. The dispatcher never holds a task per live call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from dialbatch.domain.outcomes import CallEvent
from dialbatch.domain.progress import CallProgress as CallProgress  # re-exported
from dialbatch.domain.progress import ProviderEvent as ProviderEvent
from dialbatch.domain.progress import Stage as Stage

EventSink = Callable[[ProviderEvent], Awaitable[None]]


@dataclass(frozen=True)
class DialRequest:
    dial_key: str  # idempotency key: the same key never rings a phone twice
    job_id: str
    to: str
    from_: str | None
    metadata: dict[str, Any]
    agent_id: str
    agent_config: dict[str, Any] = field(default_factory=dict)
    workspace_id: str = ""


@dataclass(frozen=True)
class DialLookup:
    """What a provider may be searched by for a dial whose fate we lost: the worker that
    placed it died, maybe before it learned (or recorded) the provider's call id."""

    dial_key: str
    to: str
    from_: str | None
    started_at_ms: int | None  # when the intent was written (the database's clock)
    agent_config: dict[str, Any] = field(default_factory=dict)
    provider_call_id: str | None = None


@dataclass(frozen=True)
class Live:
    """fetch_status's answer for a call the provider still has up or ringing."""

    provider_call_id: str


class ProviderError(Exception):
    """The provider could not be asked (connection refused, 5xx, a refusal): the dial
    certainly did not ring anyone, so it may be retried under the attempt policy."""


class DialMaybePlaced(Exception):
    """The request may have reached the provider (a timeout, a connection lost after
    sending): retrying could ring the person twice, so the dial stays open and is settled
    by asking the provider (fetch_status), like a dial whose worker died."""


class DialNotFound(Exception):
    """The provider provably never received this dial."""


class OutcomeUnknowable(Exception):
    """The provider cannot say what became of this dial."""


class InvalidSignature(Exception):
    """A callback's signature is missing, wrong or stale: it must change nothing (403)."""


@dataclass(frozen=True)
class CallbackRequest:
    """An inbound provider callback, as received: what signatures are computed over.

    `url` is the public URL the provider called (DIALBATCH_PUBLIC_URL + path + query), not
    the one this process saw behind a proxy. Header names are lower-case.
    """

    method: str
    url: str
    path: str  # below /v1/providers/<name>/callbacks, e.g. "status"; "" for the root
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class CallbackReply:
    """What a callback handler decided: the events to apply, and what to answer the
    provider (most want an empty 200; Twilio may fetch TwiML from a callback URL)."""

    events: list[ProviderEvent] = field(default_factory=list)
    body: bytes = b""
    media_type: str = "text/plain"
    status_code: int = 200


@runtime_checkable
class CallbackProvider(Protocol):
    """A provider that reports over HTTP callbacks to POST /v1/providers/<name>/callbacks."""

    name: str

    async def parse_callback(self, request: CallbackRequest) -> CallbackReply:
        """Verify the signature first (raise InvalidSignature), then translate."""
        ...


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

    async def find_dial(self, lookup: DialLookup) -> CallEvent | Live:
        """The last question before a dial is called unknowable (fetch_status could not
        say): search the provider by what it can be searched by.

        Found: its final event, or Live (followed on). Provably absent, after the
        provider's settle time: raises DialNotFound (retried by policy as never placed).
        Cannot be told (no search, several candidates): raises OutcomeUnknowable. Cannot
        be asked now, or too soon to tell: raises ProviderError (asked again later).
        """
        ...

    async def aclose(self) -> None: ...


def follows_in_memory(provider: Provider) -> bool:
    """Whether the provider's live calls live in this process (the simulated carrier, the
    SIP user agent): a stopping process waits for them before it hands them over."""
    return bool(getattr(provider, "follows_in_memory", False))
