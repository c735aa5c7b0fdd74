"""Fixtures for the Telnyx adapter: a stand-in served on 127.0.0.1, settings pointing the
SDK at it, and an adapter whose events are collected."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from dialbatch.providers.base import CallbackRequest, DialRequest, ProviderEvent
from dialbatch.providers.telnyx import TelnyxProvider, TelnyxSettings
from tests.providers.telnyx.serve import serving
from tests.providers.telnyx.standin import Fate, Knobs, TelnyxStandIn

API_KEY = "KEY_test_0123456789"
CONNECTION_ID = "1494404757140276705"
FROM = "+12025550199"


def by_number(fates: dict[str, Fate], default: Fate | None = None) -> Callable[[str], Fate]:
    def fate_of(to: str) -> Fate:
        return fates.get(to, default or Fate("completed"))

    return fate_of


@pytest.fixture
async def standin() -> AsyncIterator[TelnyxStandIn]:
    """A stand-in (every call completes unless the test sets `fate_of`), served."""
    stand = TelnyxStandIn(
        api_key=API_KEY, connection_id=CONNECTION_ID, fate_of=by_number({}), knobs=Knobs()
    )
    async with serving(stand.app) as url:
        stand.base_url = url  # type: ignore[attr-defined]
        yield stand
        await stand.aclose()


def telnyx_settings(stand: TelnyxStandIn, **overrides: Any) -> TelnyxSettings:
    values: dict[str, Any] = {
        "api_key": API_KEY,
        "public_key": stand.public_key,
        "connection_id": CONNECTION_ID,
        "base_url": stand.base_url + "/v2",  # type: ignore[attr-defined]
        "max_retries": 0,
        **overrides,
    }
    return TelnyxSettings(**values)


class Collected:
    def __init__(self) -> None:
        self.events: list[ProviderEvent] = []

    async def __call__(self, event: ProviderEvent) -> None:
        self.events.append(event)


@pytest.fixture
async def adapter(standin: TelnyxStandIn) -> AsyncIterator[tuple[TelnyxProvider, Collected]]:
    sink = Collected()
    provider = TelnyxProvider(telnyx_settings(standin, amd_grace_s=0.3), sink)
    yield provider, sink
    await provider.aclose()


def dial_request(key: str, to: str = "+12025550100", **config: Any) -> DialRequest:
    return DialRequest(
        dial_key=key,
        job_id=f"job_{key}",
        to=to,
        from_=FROM,
        metadata={},
        agent_id="agent_t",
        agent_config=config,
    )


def callback(stand: TelnyxStandIn, raw: bytes, **sign: Any) -> CallbackRequest:
    """An inbound webhook as the callback route hands it to the adapter."""
    headers = stand.sign(raw, **sign)
    return CallbackRequest(
        method="POST",
        url="http://127.0.0.1/v1/providers/telnyx/callbacks",
        path="",
        headers={k.lower(): v for k, v in headers.items()},
        query={},
        body=raw,
    )
