"""What a deployment configures (DIALBATCH_TWILIO_*) and what an agent may set.

The same settings serve SignalWire's Compatibility API (and other Twilio-compatible REST
APIs): only `base_url`, the account id and the token differ, because the SDK builds every
request as `<base_url>/2010-04-01/Accounts/<sid>/Calls.json`.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialbatch.providers.call_settings import CallSettings, call_settings

TWILIO_API = "https://api.twilio.com"
# Twilio accepts a ring timeout of 5..600 s and a time limit of at most 24 h.
MIN_RING_S = 5
MAX_RING_S = 600
MAX_TIME_LIMIT_S = 24 * 3600


class TwilioSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALBATCH_TWILIO_", extra="ignore")

    account_sid: str | None = None  # SignalWire: the Project ID
    auth_token: SecretStr | None = None  # SignalWire: the API token
    # The key callbacks are signed with: Twilio signs with the auth token (the default);
    # SignalWire with the project's Signing Key, shown beside its API credentials.
    signing_key: SecretStr | None = None
    # The REST API root the SDK talks to. SignalWire: https://<space>.signalwire.com/api/laml
    base_url: str = TWILIO_API
    # Twilio's own routing options; only meaningful with Twilio's base URL.
    region: str | None = None
    edge: str | None = None
    # The caller ID for agents that list no fromNumbers.
    from_number: str | None = None
    request_timeout_s: float = Field(10.0, gt=0, le=120)
    # What `machineDetection: true` asks for: "Enable" ends detection at the first words or
    # the greeting; "DetectMessageEnd" waits for the beep (longer, for leaving messages).
    machine_detection_mode: Literal["Enable", "DetectMessageEnd"] = "Enable"

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL such as https://api.twilio.com")
        return value.rstrip("/")

    @property
    def configured(self) -> bool:
        return bool(self.account_sid and self.auth_token)

    def token(self) -> str:
        return self.auth_token.get_secret_value() if self.auth_token else ""

    def callback_key(self) -> str:
        return self.signing_key.get_secret_value() if self.signing_key else self.token()


class TwilioConfigError(ValueError):
    """An agent's providerConfig cannot work with Twilio; the message says why."""


def agent_settings(config: dict[str, Any]) -> tuple[CallSettings, str | None]:
    """The shared call settings and the optional `twimlUrl` of an agent."""
    settings = call_settings(config)
    twiml_url = config.get("twimlUrl")
    if twiml_url is not None:
        parts = urlsplit(twiml_url) if isinstance(twiml_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise TwilioConfigError("twimlUrl must be an http(s) URL")
    return settings, twiml_url


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Check an agent's providerConfig when it is created: every call needs something to
    connect to (`agentUrl` for a media stream, or `twimlUrl` for your own TwiML)."""
    settings, twiml_url = agent_settings(config)
    if settings.agent_url is None and twiml_url is None:
        raise TwilioConfigError("set agentUrl (the agent's wss:// URL) or twimlUrl")
    if settings.agent_url is not None and twiml_url is not None:
        raise TwilioConfigError("set only one of agentUrl and twimlUrl")
    if settings.ring_timeout_s < MIN_RING_S or settings.ring_timeout_s > MAX_RING_S:
        raise TwilioConfigError(
            f"ringTimeoutSeconds must be from {MIN_RING_S} to {MAX_RING_S} with Twilio"
        )
    return config
