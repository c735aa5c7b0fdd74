"""How far a live dial has got, as providers report it between its start and its end.

Progress and outcomes are the two kinds of word a provider sends about a dial; both are
plain data, so the store applies them without knowing any provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from dialbatch.domain.outcomes import CallEvent


class Stage(IntEnum):
    """How far a live dial has got. Ordered: a stage never moves backwards, so a late
    `ringing` after `answered` changes nothing."""

    DIALING = 0
    RINGING = 1
    ANSWERED = 2


@dataclass(frozen=True)
class CallProgress:
    """A live dial moved forward (provider callbacks: initiated, ringing, answered).

    Matched like CallEvent: by dial_key, else by provider_call_id. Hearing one also tells
    the engine the provider is still following the call, and the provider_call_id it
    carries is recorded at once (the worker that placed the dial may die before it does).
    """

    stage: Stage
    dial_key: str | None = None
    provider_call_id: str | None = None
    at_ms: int | None = None


ProviderEvent = CallEvent | CallProgress
