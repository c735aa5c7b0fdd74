"""Telnyx webhooks: the Ed25519 signature is checked before anything is read, and each
documented event maps to the right dial event, whatever order the webhooks come in."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from nacl.signing import SigningKey

from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.providers.base import CallProgress, InvalidSignature, Stage
from dialbatch.providers.telnyx import TelnyxProvider
from dialbatch.providers.telnyx.events import ClientState, hangup_outcome
from tests.providers.telnyx.conftest import Collected, callback
from tests.providers.telnyx.standin import TelnyxStandIn, iso

PCID = "v3:abc123"
KEY = "batch_1:0:1"


def hook(event_type: str, state: ClientState | None = None, **payload: Any) -> bytes:
    """A webhook shaped as Telnyx documents it."""
    now = time.time()
    body = {
        "data": {
            "event_type": event_type,
            "id": "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
            "occurred_at": iso(payload.pop("at", now)),
            "payload": {
                "call_control_id": PCID,
                "call_leg_id": "428c31b6-7af4-4bcb-b7f5-5013ef9657c1",
                "call_session_id": "428c31b6-abf3-3bc1-b7f4-5013ef9657c1",
                "client_state": (state or ClientState(KEY)).encode(),
                "connection_id": "7267xxxxxxxxxxxxxx",
                "from": "+35319605860",
                "to": "+13129457420",
                "start_time": iso(now - 30),
                **payload,
            },
            "record_type": "event",
        },
        "meta": {"attempt": 1, "delivered_to": "http://example.com/webhooks"},
    }
    return json.dumps(body).encode()


async def parse(provider: TelnyxProvider, stand: TelnyxStandIn, raw: bytes) -> list[Any]:
    return (await provider.parse_callback(callback(stand, raw))).events


# --- signature ----------------------------------------------------------------------------


async def test_a_signed_webhook_is_accepted(adapter: Any, standin: TelnyxStandIn) -> None:
    provider, _ = adapter
    events = await parse(provider, standin, hook("call.answered"))
    assert events == [CallProgress(Stage.ANSWERED, KEY, PCID, events[0].at_ms)]


@pytest.mark.parametrize(
    "tamper",
    ["other_key", "changed_body", "expired", "future", "no_signature", "no_timestamp", "garbage"],
)
async def test_a_bad_signature_is_refused_before_reading(
    adapter: Any, standin: TelnyxStandIn, tamper: str
) -> None:
    provider, _ = adapter
    raw = hook("call.hangup", hangup_cause="normal_clearing")
    sign: dict[str, Any] = {}
    if tamper == "other_key":
        sign["key"] = SigningKey.generate()
    elif tamper == "expired":
        sign["timestamp"] = int(time.time()) - 360
    elif tamper == "future":
        sign["timestamp"] = int(time.time()) + 360
    request = callback(standin, raw, **sign)
    headers = dict(request.headers)
    if tamper == "changed_body":
        request = callback(standin, raw)
        object.__setattr__(request, "body", raw.replace(b"normal_clearing", b"user_busy"))
    elif tamper == "no_signature":
        headers.pop("telnyx-signature-ed25519")
        object.__setattr__(request, "headers", headers)
    elif tamper == "no_timestamp":
        headers.pop("telnyx-timestamp")
        object.__setattr__(request, "headers", headers)
    elif tamper == "garbage":
        headers["telnyx-signature-ed25519"] = "not base64!"
        object.__setattr__(request, "headers", headers)
    with pytest.raises(InvalidSignature):
        await provider.parse_callback(request)


async def test_a_tighter_window_is_applied(standin: TelnyxStandIn) -> None:
    from tests.providers.telnyx.conftest import telnyx_settings

    provider = TelnyxProvider(telnyx_settings(standin, webhook_tolerance_s=10), Collected())
    try:
        raw = hook("call.answered")
        with pytest.raises(InvalidSignature):
            await provider.parse_callback(callback(standin, raw, timestamp=int(time.time()) - 60))
    finally:
        await provider.aclose()


async def test_a_non_utf8_body_is_refused(adapter: Any, standin: TelnyxStandIn) -> None:
    provider, _ = adapter
    with pytest.raises(InvalidSignature):
        await provider.parse_callback(callback(standin, b"\xff\xfe{}"))


async def test_signed_webhooks_not_ours_change_nothing(
    adapter: Any, standin: TelnyxStandIn
) -> None:
    provider, _ = adapter
    raw = json.loads(hook("call.hangup", hangup_cause="normal_clearing"))
    raw["data"]["payload"]["client_state"] = None  # e.g. an inbound call on the same app
    assert await parse(provider, standin, json.dumps(raw).encode()) == []
    assert await parse(provider, standin, b'{"data": "nonsense"}') == []
    assert await parse(provider, standin, b"not json") == []


# --- mapping ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cause", "sip", "expected"),
    [
        ("normal_clearing", "200", Outcome.COMPLETED),
        ("time_limit", "200", Outcome.COMPLETED),
        ("user_busy", "486", Outcome.BUSY),
        ("call_rejected", "603", Outcome.BUSY),
        ("timeout", "487", Outcome.NO_ANSWER),
        ("no_answer", "480", Outcome.NO_ANSWER),
        ("originator_cancel", "487", Outcome.CANCELED),
        ("not_found", "404", Outcome.FAILED),
        ("unspecified", "486", Outcome.BUSY),
        ("unspecified", "480", Outcome.NO_ANSWER),
        ("unspecified", "503", Outcome.FAILED),
        ("unspecified", "unspecified", Outcome.FAILED),
        (None, None, Outcome.FAILED),
        ("a_cause_added_later", "487", Outcome.CANCELED),
    ],
)
async def test_each_hangup_cause(
    adapter: Any, standin: TelnyxStandIn, cause: str | None, sip: str | None, expected: Outcome
) -> None:
    provider, _ = adapter
    [event] = await parse(
        provider, standin, hook("call.hangup", hangup_cause=cause, sip_hangup_cause=sip)
    )
    assert isinstance(event, CallEvent)
    assert (event.outcome, event.dial_key, event.provider_call_id) == (expected, KEY, PCID)
    if expected is Outcome.FAILED:
        assert event.detail and "Telnyx" in event.detail


def test_unknown_causes_without_a_sip_code_fail() -> None:
    assert hangup_outcome("something_new", None) is Outcome.FAILED


async def test_completed_duration_counts_from_the_answer(
    adapter: Any, standin: TelnyxStandIn
) -> None:
    provider, _ = adapter
    now = time.time()
    await parse(provider, standin, hook("call.answered", at=now - 42))
    [event] = await parse(
        provider, standin, hook("call.hangup", at=now, hangup_cause="normal_clearing")
    )
    assert event.outcome is Outcome.COMPLETED
    assert event.duration_s == pytest.approx(42, abs=0.5)


async def test_without_the_answer_duration_comes_from_the_payload(
    adapter: Any, standin: TelnyxStandIn
) -> None:
    provider, _ = adapter
    now = time.time()
    raw = hook("call.hangup", hangup_cause="time_limit", end_time=iso(now))
    [event] = await parse(provider, standin, raw)  # start_time is 30 s before now
    assert event.duration_s == pytest.approx(30, abs=0.5)


async def test_initiated_and_other_events_are_word_of_a_live_call(
    adapter: Any, standin: TelnyxStandIn
) -> None:
    provider, _ = adapter
    for event_type in ("call.initiated", "streaming.started", "call.bridged"):
        [event] = await parse(provider, standin, hook(event_type))
        assert isinstance(event, CallProgress) and event.stage is Stage.DIALING


AMD = ClientState(KEY, amd=True)


async def test_a_machine_answer_is_voicemail_and_is_hung_up(
    adapter: Any, standin: TelnyxStandIn
) -> None:
    provider, _ = adapter
    [event] = await parse(
        provider, standin, hook("call.machine.detection.ended", AMD, result="machine")
    )
    assert isinstance(event, CallEvent) and event.outcome is Outcome.VOICEMAIL
    # ... and our hangup's webhook, marked by its client_state, means voicemail too.
    marked = ClientState(KEY, amd=True, machine=True)
    fresh = TelnyxProvider(provider.settings, Collected())  # another process
    try:
        [end] = await parse(
            fresh, standin, hook("call.hangup", marked, hangup_cause="normal_clearing")
        )
        assert end.outcome is Outcome.VOICEMAIL
    finally:
        await fresh.aclose()


async def test_premium_machine_results(adapter: Any, standin: TelnyxStandIn) -> None:
    provider, _ = adapter
    event_type = "call.machine.premium.detection.ended"
    [human] = await parse(provider, standin, hook(event_type, AMD, result="human_residence"))
    assert isinstance(human, CallProgress)
    [machine] = await parse(provider, standin, hook(event_type, AMD, result="machine"))
    assert isinstance(machine, CallEvent) and machine.outcome is Outcome.VOICEMAIL


async def test_hangup_before_a_machine_result_still_ends_as_voicemail(
    adapter: Any, standin: TelnyxStandIn
) -> None:
    """Reordered: the hangup is held (machine detection was on) until the result comes."""
    provider, sink = adapter
    held = await parse(provider, standin, hook("call.hangup", AMD, hangup_cause="normal_clearing"))
    assert [type(e) for e in held] == [CallProgress]
    [event] = await parse(
        provider, standin, hook("call.machine.detection.ended", AMD, result="machine")
    )
    assert event.outcome is Outcome.VOICEMAIL and event.duration_s is not None
    await asyncio.sleep(0.5)  # past the grace: nothing more is delivered
    assert sink.events == []


async def test_hangup_before_a_human_result_completes(adapter: Any, standin: TelnyxStandIn) -> None:
    provider, sink = adapter
    await parse(provider, standin, hook("call.hangup", AMD, hangup_cause="normal_clearing"))
    [event] = await parse(
        provider, standin, hook("call.machine.detection.ended", AMD, result="human")
    )
    assert event.outcome is Outcome.COMPLETED
    await asyncio.sleep(0.5)
    assert sink.events == []


async def test_a_held_hangup_is_delivered_when_no_result_comes(
    adapter: Any, standin: TelnyxStandIn
) -> None:
    provider, sink = adapter
    await parse(provider, standin, hook("call.hangup", AMD, hangup_cause="normal_clearing"))
    await parse(provider, standin, hook("call.hangup", AMD, hangup_cause="normal_clearing"))
    deadline = time.monotonic() + 5
    while not sink.events and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    [event] = sink.events
    assert event.outcome is Outcome.COMPLETED and event.dial_key == KEY


async def test_unanswered_hangups_are_never_held(adapter: Any, standin: TelnyxStandIn) -> None:
    provider, _ = adapter
    [event] = await parse(provider, standin, hook("call.hangup", AMD, hangup_cause="user_busy"))
    assert event.outcome is Outcome.BUSY


def test_client_state_round_trip_and_foreign_values() -> None:
    state = ClientState("b:1:2", amd=True, machine=True)
    assert ClientState.decode(state.encode()) == state
    for foreign in (None, "", "%%%", "aGVsbG8=", "eyJrIjogMX0="):  # hello / {"k": 1}
        assert ClientState.decode(foreign) is None
