"""The adapter against the stand-in, through the official SDK over HTTP: dialing is
idempotent, agent settings become Telnyx's dial options, hang-up cancels or ends, and
fetch_status answers from Telnyx's record of the call."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from dialbatch.domain.ids import now_ms
from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.providers.base import (
    DialLookup,
    DialMaybePlaced,
    DialNotFound,
    Live,
    OutcomeUnknowable,
    ProviderError,
)
from dialbatch.providers.telnyx import TelnyxProvider, validate_config
from tests.providers.telnyx.conftest import (
    CONNECTION_ID,
    FROM,
    Collected,
    by_number,
    dial_request,
    telnyx_settings,
)
from tests.providers.telnyx.standin import Fate, TelnyxStandIn

RINGS_LONG = Fate("completed", ring_s=10_000)


async def until(predicate: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition never held")
        await asyncio.sleep(0.01)


async def test_the_same_dial_key_never_dials_twice(adapter: Any, standin: TelnyxStandIn) -> None:
    provider, _ = adapter
    standin.fate_of = by_number({}, RINGS_LONG)
    request = dial_request("b:0:1")
    ids = await asyncio.gather(*(provider.start_call(request) for _ in range(5)))
    again = await provider.start_call(request)
    assert len(set(ids)) == 1 and again == ids[0]
    assert standin.dial_requests == 1 and len(standin.calls) == 1
    # Another process (no memory of it) is deduplicated by Telnyx through command_id.
    other = TelnyxProvider(provider.settings, Collected())
    try:
        assert await other.start_call(request) == ids[0]
    finally:
        await other.aclose()
    assert len(standin.calls) == 1


async def test_agent_settings_become_dial_options(adapter: Any, standin: TelnyxStandIn) -> None:
    provider, _ = adapter
    standin.fate_of = by_number({}, RINGS_LONG)
    config: dict[str, Any] = {
        "ringTimeoutSeconds": 25,
        "maxDurationSeconds": 600,
        "machineDetection": True,
        "agentUrl": "wss://agent.example/media?x=1",
    }
    pcid = await provider.start_call(dial_request("b:0:1", **config))
    params = standin.calls[pcid].params
    assert params["connection_id"] == CONNECTION_ID
    assert params["command_id"] == "b:0:1"
    assert (params["timeout_secs"], params["time_limit_secs"]) == (25, 600)
    assert params["answering_machine_detection"] == "detect"
    assert (
        params["stream_url"]
        == "wss://agent.example/media?x=1&jobId=job_b%3A0%3A1&dialKey=b%3A0%3A1"
    )
    assert params["stream_track"] == "inbound_track"
    state = json.loads(base64.b64decode(params["client_state"]))
    assert state == {"dialbatch": 1, "k": "b:0:1", "a": 1}
    assert "webhook_url" not in params  # no public URL given: the app's own URL is used


def test_agent_config_is_validated() -> None:
    assert validate_config({"ringTimeoutSeconds": 20}) == {"ringTimeoutSeconds": 20}
    bad: list[dict[str, Any]] = [
        {"ringTimeoutSeconds": 2},
        {"ringTimeoutSeconds": 601},
        {"maxDurationSeconds": 0},
        {"agentUrl": "http://not-a-websocket"},
        {"amdMode": "guess"},
        {"connectionId": ""},
    ]
    for config in bad:
        with pytest.raises(ValueError):
            validate_config(config)


async def test_hangup_cancels_a_ringing_call(adapter: Any, standin: TelnyxStandIn) -> None:
    provider, _ = adapter
    standin.fate_of = by_number({}, RINGS_LONG)
    pcid = await provider.start_call(dial_request("b:0:1"))
    assert await provider.fetch_status("b:0:1", pcid) == Live(pcid)
    await provider.hangup(pcid)
    await provider.hangup(pcid)  # already ended: fine
    event = await provider.fetch_status("b:0:1", pcid)
    assert isinstance(event, CallEvent)
    assert (event.outcome, event.dial_key, event.provider_code) == (
        Outcome.CANCELED,
        "b:0:1",
        "originator_cancel",
    )


async def test_hangup_ends_an_answered_call(adapter: Any, standin: TelnyxStandIn) -> None:
    provider, _ = adapter
    standin.fate_of = by_number({}, Fate("completed", ring_s=0.5, talk_s=10_000))
    pcid = await provider.start_call(dial_request("b:0:1"))
    await until(lambda: standin.calls[pcid].answered_at is not None)
    await provider.hangup(pcid)
    event = await provider.fetch_status("b:0:1", pcid)
    assert isinstance(event, CallEvent) and event.outcome is Outcome.COMPLETED
    assert event.duration_s is not None


@pytest.mark.parametrize(
    ("fate", "expected"),
    [
        (Fate("completed", ring_s=1, talk_s=3), Outcome.COMPLETED),
        (Fate("busy", ring_s=1), Outcome.BUSY),
        (Fate("no-answer"), Outcome.NO_ANSWER),
        (Fate("failed", ring_s=1), Outcome.FAILED),
        (Fate("voicemail", ring_s=1, talk_s=5), Outcome.VOICEMAIL),
    ],
)
async def test_fetch_status_reads_the_outcome_from_telnyx_s_log(
    adapter: Any, standin: TelnyxStandIn, fate: Fate, expected: Outcome
) -> None:
    """No webhook reaches us here (no URL): the outcome comes from GET /call_events."""
    provider, _ = adapter
    standin.fate_of = by_number({}, fate)
    pcid = await provider.start_call(
        dial_request("b:0:1", ringTimeoutSeconds=5, machineDetection=True)
    )
    await until(lambda: not standin.calls[pcid].alive)
    event = await provider.fetch_status("b:0:1", pcid)
    assert isinstance(event, CallEvent) and event.outcome is expected
    assert event.provider_call_id == pcid


async def test_fetch_status_cannot_always_know(adapter: Any, standin: TelnyxStandIn) -> None:
    provider, _ = adapter
    with pytest.raises(OutcomeUnknowable):
        await provider.fetch_status("b:0:1", None)
    with pytest.raises(OutcomeUnknowable):
        await provider.fetch_status("b:0:1", "v3:never-seen")  # or expired at Telnyx


def lookup(
    key: str, started_at_ms: int, to: str = "+12025550100", pcid: str | None = None
) -> DialLookup:
    return DialLookup(
        dial_key=key, to=to, from_=FROM, started_at_ms=started_at_ms, provider_call_id=pcid
    )


async def test_a_dial_whose_id_was_lost_is_found_in_telnyx_s_log(
    adapter: Any, standin: TelnyxStandIn
) -> None:
    """Another process placed these and died before recording Telnyx's call ids: the
    call-event log, searched by number and time, finds each by the dial key in its
    client_state, however many other calls went to the same number."""
    provider, _ = adapter
    standin.fate_of = by_number({"+12025550101": RINGS_LONG}, Fate("busy", ring_s=1))
    started = now_ms()
    placer = TelnyxProvider(provider.settings, Collected())
    try:
        ended = await placer.start_call(dial_request("b:0:1"))
        await placer.start_call(dial_request("b:7:1"))  # another dial to the same number
        live = await placer.start_call(dial_request("b:1:1", to="+12025550101"))
    finally:
        await placer.aclose()
    await until(lambda: not standin.calls[ended].alive)
    event = await provider.find_dial(lookup("b:0:1", started))
    assert isinstance(event, CallEvent)
    assert (event.outcome, event.dial_key, event.provider_call_id) == (
        Outcome.BUSY,
        "b:0:1",
        ended,
    )
    assert await provider.find_dial(lookup("b:1:1", started, to="+12025550101")) == Live(live)
    # Found once, its id is remembered: the same dial key is never dialed again here.
    assert await provider.start_call(dial_request("b:1:1", to="+12025550101")) == live
    assert len(standin.calls) == 3


async def test_a_dial_telnyx_never_logged_was_never_placed_once_it_had_time_to(
    adapter: Any, standin: TelnyxStandIn
) -> None:
    provider, _ = adapter
    standin.fate_of = by_number({}, RINGS_LONG)
    await provider.start_call(dial_request("b:9:1"))  # the same number, another dial
    with pytest.raises(ProviderError, match="too soon"):
        await provider.find_dial(lookup("b:0:1", now_ms()))
    a_minute_ago = now_ms() - 60_000
    with pytest.raises(DialNotFound):
        await provider.find_dial(lookup("b:0:1", a_minute_ago))
    # Heard accepted, yet not in the log: placed, so never "never placed".
    with pytest.raises(OutcomeUnknowable):
        await provider.find_dial(lookup("b:0:1", a_minute_ago, pcid="v3:heard"))
    with pytest.raises(OutcomeUnknowable, match="24 hours"):
        await provider.find_dial(lookup("b:0:1", now_ms() - 25 * 3600 * 1000))


async def test_a_refused_dial_is_a_provider_error(standin: TelnyxStandIn) -> None:
    provider = TelnyxProvider(telnyx_settings(standin, connection_id="wrong"), Collected())
    try:
        with pytest.raises(ProviderError, match="422"):
            await provider.start_call(dial_request("b:0:1"))
    finally:
        await provider.aclose()


async def test_an_unreachable_telnyx_is_a_provider_error(standin: TelnyxStandIn) -> None:
    settings = telnyx_settings(standin, base_url="http://127.0.0.1:9/v2", request_timeout_s=2)
    provider = TelnyxProvider(settings, Collected())
    try:
        with pytest.raises(ProviderError):
            await provider.start_call(dial_request("b:0:1"))
        with pytest.raises(ProviderError):
            await provider.fetch_status("b:0:1", "v3:x")
    finally:
        await provider.aclose()


async def test_a_dial_without_an_answer_may_have_been_placed(standin: TelnyxStandIn) -> None:
    """A timed-out dial may be ringing someone: the engine looks it up, never re-dials."""
    settings = telnyx_settings(standin, request_timeout_s=1e-6, max_retries=0)
    provider = TelnyxProvider(settings, Collected())
    try:
        with pytest.raises(DialMaybePlaced):
            await provider.start_call(dial_request("b:0:1"))
    finally:
        await provider.aclose()
