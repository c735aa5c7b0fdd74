"""SIP settings: the process's (`DIALBATCH_SIP_*`, where the trunk is and who we are on it)
and the agent's (`providerConfig`: the shared call settings plus `trunk` and `codec`).

Every field is documented in docs/providers.md (SIP section); keep them in step.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialbatch.providers.call_settings import CallSettings, call_settings
from dialbatch.providers.sip.sdp import PAYLOAD_TYPES

DEFAULT_SIP_PORT = 5060


class SipConfigError(ValueError):
    """An agent's SIP providerConfig cannot be used; the message says which key and why."""


def parse_hostport(value: str) -> tuple[str, int]:
    """'host', 'host:port' or '[v6]:port' -> (host, port); raises ValueError."""
    text = value.strip()
    if not text:
        raise ValueError("must be host or host:port")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError("must be host or host:port")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host or any(c.isspace() or c in "@;<>/" for c in host):
        raise ValueError(f"{host!r} is not a host name or address")
    port = DEFAULT_SIP_PORT
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"port {port_text!r} must be a number from 1 to 65535")
        port = int(port_text)
    return host, port


class SipSettings(BaseSettings):
    """The SIP adapter's process settings; SIP is enabled when `trunk` is set."""

    model_config = SettingsConfigDict(env_prefix="DIALBATCH_SIP_", extra="ignore")

    # Where calls go: the SIP trunk, PBX or SBC, as host[:port] (UDP; port 5060 by default).
    trunk: str | None = None
    # The IP address we listen on for SIP and RTP. It is also the address written in our
    # Via/Contact headers and SDP, so it must be one the trunk can reach (no NAT traversal).
    bind_host: str = "127.0.0.1"
    bind_port: int = Field(5060, ge=0, le=65535)  # 0: any free port (tests)
    # UDP ports for RTP (one even port per live call); 0 and 0: any free port.
    rtp_port_min: int = Field(20000, ge=0, le=65535)
    rtp_port_max: int = Field(20999, ge=0, le=65535)
    # The user part of our From when the agent has no fromNumbers, and the display name.
    from_user: str = "dialbatch"
    display_name: str | None = None
    # Digest credentials, answered when the trunk challenges an INVITE with 401/407.
    auth_user: str | None = None
    auth_password: SecretStr | None = None
    codec: str = "PCMU"  # the default codec, PCMU (µ-law) or PCMA (A-law)

    @field_validator("trunk")
    @classmethod
    def _trunk(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            parse_hostport(value)
            return value.strip()
        return None

    @field_validator("bind_host")
    @classmethod
    def _concrete_address(cls, value: str) -> str:
        address = ipaddress.ip_address(value)  # ValueError: not an IP address
        if address.is_unspecified:
            raise ValueError("must be a concrete address the trunk can reach, not 0.0.0.0")
        if address.version != 4:
            raise ValueError("only IPv4 is supported")
        return value

    @field_validator("codec")
    @classmethod
    def _codec(cls, value: str) -> str:
        if value.upper() not in PAYLOAD_TYPES:
            raise ValueError("must be PCMU or PCMA")
        return value.upper()

    @model_validator(mode="after")
    def _rtp_range(self) -> SipSettings:
        if (self.rtp_port_min == 0) != (self.rtp_port_max == 0) or (
            self.rtp_port_min > self.rtp_port_max
        ):
            raise ValueError("rtp_port_min..rtp_port_max must be a range (or both 0)")
        return self

    def trunk_address(self) -> tuple[str, int] | None:
        return parse_hostport(self.trunk) if self.trunk else None


class AgentSipConfig:
    """An agent's SIP options, parsed from its providerConfig."""

    def __init__(self, calls: CallSettings, trunk: tuple[str, int] | None, codec: str | None):
        self.calls = calls
        self.trunk = trunk
        self.codec = codec


def agent_config(config: dict[str, Any]) -> AgentSipConfig:
    """Parse an agent's providerConfig; raises SipConfigError (a ValueError)."""
    try:
        calls = call_settings(config)
    except ValueError as exc:
        raise SipConfigError(str(exc)) from exc
    if calls.machine_detection:
        raise SipConfigError(
            "machineDetection: answering-machine detection is not available over plain SIP"
        )
    trunk_value = config.get("trunk")
    trunk = None
    if trunk_value is not None:
        if not isinstance(trunk_value, str):
            raise SipConfigError("trunk: must be a string, host or host:port")
        try:
            trunk = parse_hostport(trunk_value)
        except ValueError as exc:
            raise SipConfigError(f"trunk: {exc}") from exc
    codec = config.get("codec")
    if codec is not None and (not isinstance(codec, str) or codec.upper() not in PAYLOAD_TYPES):
        raise SipConfigError("codec: must be PCMU or PCMA")
    return AgentSipConfig(calls, trunk, codec.upper() if isinstance(codec, str) else None)


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Check an agent's SIP providerConfig when the agent is saved; returns it unchanged."""
    agent_config(config)
    return config
