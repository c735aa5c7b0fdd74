"""The adapter's pure parts: status mapping, signature checking, TwiML, agent settings."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.providers.base import (
    CallbackRequest,
    CallProgress,
    DialMaybePlaced,
    DialRequest,
    InvalidSignature,
    OutcomeUnknowable,
    ProviderError,
    Stage,
)
from dialbatch.providers.twilio import TwilioProvider, TwilioSettings, validate_config
from dialbatch.providers.twilio.statuses import from_callback
from dialbatch.providers.twilio.twiml import MAX_TWIML_CHARS, stream_twiml
from tests.providers.twilio.standin import TwilioStandIn, mixed_plans

TOKEN = "unit-test-auth-token"
URL = "https://dialbatch.example.com/v1/providers/twilio/callbacks/status?dk=call_b_1%3A1"
KEY = "call_b_1:1"


def callback(status: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": "AC" + "1" * 32,
        "ApiVersion": "2010-04-01",
        "CallSid": "CA" + "2" * 32,
        "CallStatus": status,
        "Direction": "outbound-api",
        "From": "+12025559999",
        "To": "+12025550001",
        "SequenceNumber": "3",
        "Timestamp": "Wed, 18 Mar 2015 20:30:00 +0000",
        **extra,
    }


def signed(
    params: dict[str, str], *, url: str = URL, key: str = TOKEN, header: str = "x-twilio-signature"
) -> CallbackRequest:
    signature = RequestValidator(key).compute_signature(url, params)
    return request(params, url=url, headers={header: signature})


def request(
    params: dict[str, str], *, url: str = URL, headers: dict[str, str] | None = None
) -> CallbackRequest:
    query = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&")) if "?" in url else {}
    return CallbackRequest(
        method="POST",
        url=url,
        path="status",
        headers={"content-type": "application/x-www-form-urlencoded", **(headers or {})},
        query={k: v.replace("%3A", ":") for k, v in query.items()},
        body=urlencode(params).encode(),
    )


async def sink(_: Any) -> None:
    return None


@pytest.fixture
def provider() -> TwilioProvider:
    settings = TwilioSettings(account_sid="AC" + "1" * 32, auth_token=TOKEN)
    return TwilioProvider(settings, "https://dialbatch.example.com", sink)


# --- status mapping ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "extra", "outcome"),
    [
        ("completed", {"CallDuration": "37", "AnsweredBy": "human"}, Outcome.COMPLETED),
        ("completed", {"CallDuration": "12"}, Outcome.COMPLETED),
        ("completed", {"CallDuration": "21", "AnsweredBy": "machine_start"}, Outcome.VOICEMAIL),
        ("completed", {"CallDuration": "9", "AnsweredBy": "machine_end_beep"}, Outcome.VOICEMAIL),
        ("completed", {"CallDuration": "3", "AnsweredBy": "fax"}, Outcome.VOICEMAIL),
        ("completed", {"CallDuration": "5", "AnsweredBy": "unknown"}, Outcome.COMPLETED),
        ("busy", {"SipResponseCode": "486"}, Outcome.BUSY),
        ("no-answer", {"SipResponseCode": "487"}, Outcome.NO_ANSWER),
        ("failed", {"SipResponseCode": "404"}, Outcome.FAILED),
        ("canceled", {"SipResponseCode": "487"}, Outcome.CANCELED),
    ],
)
def test_final_statuses_map_to_outcomes(
    status: str, extra: dict[str, str], outcome: Outcome
) -> None:
    event = from_callback(callback(status, **extra), KEY)
    assert isinstance(event, CallEvent)
    assert event.outcome is outcome
    assert event.dial_key == KEY and event.provider_call_id == "CA" + "2" * 32
    assert event.ended_at == 1426710600000
    if outcome in (Outcome.COMPLETED, Outcome.VOICEMAIL):
        assert event.duration_s == float(extra["CallDuration"])
    else:
        assert event.duration_s is None
        assert event.provider_code == extra["SipResponseCode"]


def test_a_failure_keeps_twilios_error_code() -> None:
    event = from_callback(callback("failed", ErrorCode="32009", SipResponseCode="503"), KEY)
    assert isinstance(event, CallEvent)
    assert event.provider_code == "503"
    assert event.detail == "Call failed - Twilio error 32009"


@pytest.mark.parametrize(
    ("status", "stage"),
    [("ringing", Stage.RINGING), ("in-progress", Stage.ANSWERED), ("answered", Stage.ANSWERED)],
)
def test_progress_statuses_move_the_dial_forward(status: str, stage: Stage) -> None:
    event = from_callback(callback(status), KEY)
    assert event == CallProgress(
        stage=stage, dial_key=KEY, provider_call_id="CA" + "2" * 32, at_ms=1426710600000
    )


@pytest.mark.parametrize("status", ["queued", "initiated", "", "something-new"])
def test_statuses_that_say_nothing_new_are_ignored(status: str) -> None:
    assert from_callback(callback(status), KEY) is None


# --- signatures -------------------------------------------------------------------------


async def test_a_correctly_signed_callback_is_translated(provider: TwilioProvider) -> None:
    reply = await provider.parse_callback(signed(callback("busy", SipResponseCode="486")))
    assert reply.status_code == 200
    [event] = reply.events
    assert isinstance(event, CallEvent) and event.outcome is Outcome.BUSY
    assert event.dial_key == KEY


async def test_a_signalwire_header_is_accepted(provider: TwilioProvider) -> None:
    req = signed(callback("ringing"), header="x-signalwire-signature")
    assert (await provider.parse_callback(req)).events


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda p: request(p), id="missing"),
        pytest.param(lambda p: request(p, headers={"x-twilio-signature": ""}), id="empty"),
        pytest.param(lambda p: signed(p, key="some-other-token"), id="wrong-key"),
        pytest.param(
            lambda p: request(
                {**p, "CallStatus": "completed"},
                headers={"x-twilio-signature": signed(p).headers["x-twilio-signature"]},
            ),
            id="tampered-params",
        ),
        pytest.param(
            lambda p: request(
                p,
                url=URL.replace("call_b_1", "call_b_2"),
                headers={"x-twilio-signature": signed(p).headers["x-twilio-signature"]},
            ),
            id="other-dial-key",
        ),
        pytest.param(
            lambda p: request(
                p,
                url=URL.replace("dialbatch.example.com", "evil.example.com"),
                headers={"x-twilio-signature": signed(p).headers["x-twilio-signature"]},
            ),
            id="other-host",
        ),
        pytest.param(
            lambda p: request(
                {**p, "Extra": "1"},
                headers={"x-twilio-signature": signed(p).headers["x-twilio-signature"]},
            ),
            id="added-param",
        ),
    ],
)
async def test_a_bad_signature_is_refused_before_anything_is_read(
    provider: TwilioProvider, forge: Any
) -> None:
    with pytest.raises(InvalidSignature):
        await provider.parse_callback(forge(callback("busy", SipResponseCode="486")))


async def test_a_non_utf8_body_is_refused(provider: TwilioProvider) -> None:
    req = request({}, headers={"x-twilio-signature": "abc"})
    bad = CallbackRequest(req.method, req.url, req.path, req.headers, req.query, b"\xff\xfe")
    with pytest.raises(InvalidSignature):
        await provider.parse_callback(bad)


async def test_the_signing_key_can_differ_from_the_api_token() -> None:
    settings = TwilioSettings(account_sid="PJ", auth_token="api-token", signing_key="sign-key")
    provider = TwilioProvider(settings, "https://dialbatch.example.com", sink)
    with pytest.raises(InvalidSignature):
        await provider.parse_callback(signed(callback("ringing"), key="api-token"))
    assert (await provider.parse_callback(signed(callback("ringing"), key="sign-key"))).events


# --- TwiML and agent settings -------------------------------------------------------------


def test_the_stream_carries_the_job_and_the_rows_metadata() -> None:
    xml = stream_twiml(
        "wss://agent.example/media",
        "call_b_7",
        {"first_name": "Ada", "jobId": "spoofed", "tags": ["a", "b"], "n": 3},
    )
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Connect>')
    assert '<Stream url="wss://agent.example/media">' in xml
    assert '<Parameter name="jobId" value="call_b_7" />' in xml
    assert '<Parameter name="first_name" value="Ada" />' in xml
    assert '<Parameter name="tags" value="[&quot;a&quot;,&quot;b&quot;]" />' in xml
    assert "spoofed" not in xml


def test_the_twiml_stays_within_twilios_limit() -> None:
    metadata = {f"field{i}": "x" * 400 for i in range(30)}
    xml = stream_twiml("wss://agent.example/media", "call_b_7", metadata)
    assert len(xml) <= MAX_TWIML_CHARS
    assert 'name="jobId"' in xml and 'name="field0"' in xml and 'name="field29"' not in xml


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "agentUrl"),
        ({"agentUrl": "https://not-a-websocket"}, "ws://"),
        ({"agentUrl": "wss://a/b", "twimlUrl": "https://c/d"}, "only one"),
        ({"twimlUrl": "ftp://x"}, "twimlUrl"),
        ({"agentUrl": "wss://a/b", "ringTimeoutSeconds": 2}, "ringTimeoutSeconds"),
    ],
)
def test_agent_settings_are_checked_when_the_agent_is_created(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        validate_config(config)


def test_a_usable_agent_config_is_accepted() -> None:
    config = {"agentUrl": "wss://a/b", "machineDetection": True, "maxDurationSeconds": 600}
    assert validate_config(config) == config
    assert validate_config({"twimlUrl": "https://example.com/twiml"})


# --- the REST side, against the stand-in -------------------------------------------------


async def test_start_call_is_idempotent_on_the_dial_key() -> None:
    standin = TwilioStandIn("AC" + "1" * 32, TOKEN, plan_for=mixed_plans(weights={"busy": 1}))
    async with standin.running():
        settings = TwilioSettings(
            account_sid="AC" + "1" * 32, auth_token=TOKEN, base_url=standin.base_url
        )
        provider = TwilioProvider(settings, "http://127.0.0.1:9", sink)
        dial = DialRequest(
            dial_key="call_b_0:1",
            job_id="call_b_0",
            to="+12025550001",
            from_="+12025559999",
            metadata={},
            agent_id="agent",
            agent_config={"agentUrl": "wss://a/b"},
        )
        try:
            first, twin = await asyncio.gather(provider.start_call(dial), provider.start_call(dial))
            again = await provider.start_call(dial)
            assert first == twin == again
            assert standin.stats["created"] == 1
            await asyncio.sleep(0.2)
            ended = await provider.fetch_status(dial.dial_key, None)  # the sid it remembers
            assert isinstance(ended, CallEvent) and ended.outcome is Outcome.BUSY
            with pytest.raises(OutcomeUnknowable):
                await provider.fetch_status("call_b_1:1", None)
            with pytest.raises(OutcomeUnknowable):
                await provider.fetch_status("call_b_1:1", "CA" + "0" * 32)
            await provider.hangup(first)  # already over: nothing to do, no error
        finally:
            await provider.aclose()


async def test_a_refused_request_is_a_provider_error() -> None:
    standin = TwilioStandIn("AC" + "1" * 32, TOKEN)
    async with standin.running():
        settings = TwilioSettings(
            account_sid="AC" + "1" * 32, auth_token="wrong", base_url=standin.base_url
        )
        provider = TwilioProvider(settings, "http://127.0.0.1:9", sink)
        dial = DialRequest(
            "k:1", "k", "+12025550001", "+12025559999", {}, "a", {"agentUrl": "wss://a"}
        )
        try:
            with pytest.raises(ProviderError, match="HTTP 401"):
                await provider.start_call(dial)
        finally:
            await provider.aclose()
        assert standin.stats["created"] == 0


def _dial() -> DialRequest:
    return DialRequest("k:1", "k", "+12025550001", "+12025559999", {}, "a", {"agentUrl": "wss://a"})


async def test_an_unreachable_twilio_is_a_provider_error_nothing_was_sent() -> None:
    settings = TwilioSettings(
        account_sid="AC" + "1" * 32, auth_token=TOKEN, base_url="http://127.0.0.1:9"
    )
    provider = TwilioProvider(settings, "http://127.0.0.1:9", sink)
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.start_call(_dial())
        assert not isinstance(caught.value, DialMaybePlaced)
    finally:
        await provider.aclose()


async def test_a_create_without_an_answer_may_have_been_placed() -> None:
    """No idempotency key at Twilio: a timed-out create must be looked up, not retried."""
    standin = TwilioStandIn("AC" + "1" * 32, TOKEN)
    async with standin.running():
        settings = TwilioSettings(
            account_sid="AC" + "1" * 32,
            auth_token=TOKEN,
            base_url=standin.base_url,
            request_timeout_s=1e-6,
        )
        provider = TwilioProvider(settings, "http://127.0.0.1:9", sink)
        try:
            with pytest.raises(DialMaybePlaced):
                await provider.start_call(_dial())
        finally:
            await provider.aclose()


async def test_a_dial_whose_callsid_was_lost_is_found_in_the_calls_list() -> None:
    """The worker died before it recorded the CallSid: a new process finds the dial in
    Twilio's Calls list by To, From and the start-time window around its intent; a dial
    Twilio never received is shown absent once the list has settled; two candidates in the
    window cannot be told apart."""
    from dialbatch.domain.ids import now_ms
    from dialbatch.providers.base import DialLookup, DialNotFound

    standin = TwilioStandIn("AC" + "1" * 32, TOKEN, plan_for=mixed_plans(weights={"busy": 1}))
    async with standin.running():
        settings = TwilioSettings(
            account_sid="AC" + "1" * 32, auth_token=TOKEN, base_url=standin.base_url
        )
        placing = TwilioProvider(settings, "http://127.0.0.1:9", sink)
        later = TwilioProvider(settings, "http://127.0.0.1:9", sink)  # a new process
        intent = now_ms()
        try:
            sid = await placing.start_call(_dial())
            await asyncio.sleep(0.3)
            with pytest.raises(OutcomeUnknowable):
                await later.fetch_status("k:1", None)
            lookup = DialLookup("k:1", "+12025550001", "+12025559999", intent)
            found = await later.find_dial(lookup)
            assert isinstance(found, CallEvent)
            assert (found.provider_call_id, found.outcome) == (sid, Outcome.BUSY)
            assert standin.stats["listed"] >= 1

            never = DialLookup("k2:1", "+12025550002", "+12025559999", now_ms() - 120_000)
            with pytest.raises(DialNotFound):
                await later.find_dial(never)
            just_now = DialLookup("k2:1", "+12025550002", "+12025559999", now_ms())
            with pytest.raises(ProviderError):  # too soon to call it absent: asked again
                await later.find_dial(just_now)

            twin = DialRequest(
                "k:2", "k", "+12025550001", "+12025559999", {}, "a", {"agentUrl": "wss://a"}
            )
            await placing.start_call(twin)
            with pytest.raises(OutcomeUnknowable, match="cannot be told"):
                await later.find_dial(DialLookup("k:2", "+12025550001", "+12025559999", intent))
        finally:
            await placing.aclose()
            await later.aclose()
