"""What an operator and an agent author may write for SIP, and the errors they get."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from dialbatch.providers import sip
from dialbatch.providers.sip.config import SipSettings, parse_hostport
from dialbatch.providers.sip.outcome_map import for_failure
from dialbatch.providers.sip.sdp import offer, parse_answer
from dialbatch.settings import Settings


async def _sink(event: Any) -> None:
    return None


def test_sip_is_off_until_a_trunk_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIALBATCH_SIP_TRUNK", raising=False)
    assert sip.build(Settings(), _sink) is None
    monkeypatch.setenv("DIALBATCH_SIP_TRUNK", "pbx.example.net:5080")
    monkeypatch.setenv("DIALBATCH_SIP_CODEC", "pcma")
    provider = sip.build(Settings(), _sink)
    assert provider is not None and provider.name == "sip"
    assert provider.settings.trunk_address() == ("pbx.example.net", 5080)
    assert provider.settings.codec == "PCMA"


@pytest.mark.parametrize(
    "env",
    [
        {"DIALBATCH_SIP_BIND_HOST": "0.0.0.0"},
        {"DIALBATCH_SIP_BIND_HOST": "pbx.example.net"},
        {"DIALBATCH_SIP_TRUNK": "pbx:99999"},
        {"DIALBATCH_SIP_CODEC": "opus"},
        {"DIALBATCH_SIP_RTP_PORT_MIN": "30000", "DIALBATCH_SIP_RTP_PORT_MAX": "20000"},
    ],
)
def test_bad_process_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError):
        SipSettings()


def test_agent_config_accepts_the_shared_and_sip_keys() -> None:
    config = {
        "trunk": "10.0.0.5",
        "codec": "PCMA",
        "ringTimeoutSeconds": 20,
        "agentUrl": "wss://a/b",
    }
    assert sip.validate_config(config) == config


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"trunk": 5060}, "trunk"),
        ({"trunk": "pbx:abc"}, "trunk"),
        ({"codec": "G729"}, "codec"),
        ({"ringTimeoutSeconds": -1}, "ringTimeoutSeconds"),
        ({"agentUrl": "http://agent"}, "agentUrl"),
        ({"machineDetection": True}, "not available over plain SIP"),
    ],
)
def test_agent_config_errors_name_the_key(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sip.validate_config(config)


def test_hostport_forms() -> None:
    assert parse_hostport("pbx") == ("pbx", 5060)
    assert parse_hostport("[::1]:5070") == ("::1", 5070)
    with pytest.raises(ValueError):
        parse_hostport("sip:pbx@x")


@pytest.mark.parametrize(
    ("code", "heard", "outcome"),
    [
        (486, True, "busy"),
        (600, True, "busy"),
        (480, True, "no-answer"),
        (408, True, "no-answer"),
        (408, False, "failed"),  # sippy's own transaction timeout: the trunk never answered
        (404, True, "failed"),
        (302, True, "failed"),
        (603, True, "failed"),
    ],
)
def test_final_responses_map_to_outcomes(code: int, heard: bool, outcome: str) -> None:
    assert for_failure(code, "Reason", heard_from_peer=heard).outcome.value == outcome


def test_sdp_offer_and_answer() -> None:
    ours = offer("192.0.2.1", 20002, "PCMA")
    assert "m=audio 20002 RTP/AVP 8\r\n" in ours and "c=IN IP4 192.0.2.1" in ours
    answer = "v=0\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 101\r\n"
    media = parse_answer(answer)
    assert media is not None and (media.host, media.port, media.payload_types) == (
        "198.51.100.7",
        4000,
        (8, 101),
    )
    assert parse_answer("v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 0\r\n") is None
