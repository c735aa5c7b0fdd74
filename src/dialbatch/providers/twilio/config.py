"""What a deployment configures (DIALBATCH_TWILIO_*) and what an agent may set.

The same settings serve SignalWire's Compatibility API (and other Twilio-compatible REST
APIs): only `base_url`, the account id and the token differ, because the SDK builds every
request as `<base_url>/2010-04-01/Accounts/<sid>/Calls.json`.

Telnyx's TeXML API is close but not the same (other paths, a JSON create body, a Bearer
API key, Ed25519-signed callbacks): `dialect = "telnyx-texml"` selects it (texml.py).
"""

from __future__ import annotations

import math
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialbatch.providers.call_settings import CallSettings, call_settings

TWILIO_API = "https://api.twilio.com"
TELNYX_TEXML_API = "https://api.telnyx.com/v2/texml"
TWILIO: Final = "twilio"
TELNYX_TEXML: Final = "telnyx-texml"
Dialect = Literal["twilio", "telnyx-texml"]
# Twilio accepts a ring timeout of 5..600 s and a time limit of at most 24 h.
MIN_RING_S = 5
MAX_RING_S = 600
MAX_TIME_LIMIT_S = 24 * 3600
# Telnyx TeXML: Timeout 5..120 s, TimeLimit 30..14400 s.
TEXML_MAX_RING_S = 120
TEXML_MIN_TIME_LIMIT_S = 30
TEXML_MAX_TIME_LIMIT_S = 4 * 3600


class TwilioSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALBATCH_TWILIO_", extra="ignore")

    # Which REST dialect `base_url` speaks: Twilio's (Twilio, SignalWire) or Telnyx TeXML's.
    dialect: Dialect = TWILIO
    account_sid: str | None = None  # SignalWire: the Project ID; Telnyx: the account id
    auth_token: SecretStr | None = None  # SignalWire: the API token; Telnyx: the API key
    # Telnyx TeXML only: the TeXML Application's id (sent as ApplicationSid) and the
    # account's Ed25519 public key (base64) its callbacks are verified with.
    application_sid: str | None = None
    telnyx_public_key: str | None = None
    # The key callbacks are signed with: Twilio signs with the auth token (the default);
    # SignalWire with the project's Signing Key, shown beside its API credentials.
    signing_key: SecretStr | None = None
    # The REST API root the SDK talks to. SignalWire: https://<space>.signalwire.com/api/laml
    # Telnyx TeXML: https://api.telnyx.com/v2/texml (the default with that dialect).
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

    @model_validator(mode="after")
    def _dialect_defaults(self) -> TwilioSettings:
        if self.dialect != TELNYX_TEXML:
            return self
        if "base_url" not in self.model_fields_set:
            self.base_url = TELNYX_TEXML_API
        if self.account_sid and self.auth_token:
            missing = [
                f"DIALBATCH_TWILIO_{name.upper()}"
                for name in ("application_sid", "telnyx_public_key")
                if not getattr(self, name)
            ]
            if missing:
                raise ValueError(f"the telnyx-texml dialect also needs {', '.join(missing)}")
        return self

    @property
    def configured(self) -> bool:
        return bool(self.account_sid and self.auth_token)

    @property
    def texml(self) -> bool:
        return self.dialect == TELNYX_TEXML

    def ring_timeout_s(self, wanted: float) -> int:
        """The ring timeout to send, within what the dialect accepts."""
        top = TEXML_MAX_RING_S if self.texml else MAX_RING_S
        return min(top, max(MIN_RING_S, math.ceil(wanted)))

    def time_limit_s(self, wanted: float) -> int:
        if self.texml:
            return min(TEXML_MAX_TIME_LIMIT_S, max(TEXML_MIN_TIME_LIMIT_S, math.ceil(wanted)))
        return min(MAX_TIME_LIMIT_S, math.ceil(wanted))

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
