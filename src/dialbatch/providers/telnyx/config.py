"""Telnyx settings (process-wide, from `DIALBATCH_TELNYX_*`) and the per-agent options a
Telnyx dial is placed with.

Process settings say which Telnyx account and Call Control application this deployment
dials through; the agent's providerConfig says how its calls behave (the shared keys of
call_settings, mapped here to Telnyx's dial parameters).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialbatch.providers.call_settings import CallSettings, call_settings

# Telnyx's own limits on dial parameters (documented on POST /calls).
MIN_TIMEOUT_S = 5
MAX_TIMEOUT_S = 600
MAX_TIME_LIMIT_S = 14_400

# providerConfig keys this adapter reads besides the shared ones.
TELNYX_KEYS = {"connectionId", "amdMode"}
AMD_MODES = ("detect", "detect_beep", "detect_words", "greeting_end", "premium")


class TelnyxSettings(BaseSettings):
    """`DIALBATCH_TELNYX_*`. Without api_key, public_key and connection_id this process
    does not dial through Telnyx (build() returns None)."""

    model_config = SettingsConfigDict(env_prefix="DIALBATCH_TELNYX_", extra="ignore")

    api_key: SecretStr | None = None
    # Base64 Ed25519 public key from the Telnyx portal (Keys & Credentials > Public Key):
    # every webhook is checked against it.
    public_key: str | None = None
    # The Call Control application (its id is the dial's connection_id).
    connection_id: str | None = None
    # Caller number used when the agent has no fromNumbers.
    from_number: str | None = None
    # Default https://api.telnyx.com/v2; a local stand-in in tests.
    base_url: str | None = None
    # Webhooks signed longer ago (or further ahead) than this are refused. The SDK's helper
    # enforces 300 s itself, so a larger value would not loosen anything.
    webhook_tolerance_s: int = Field(300, ge=1, le=300)
    # An answered call that ended normally, on an agent with machine detection, is held this
    # long for the detection result in case its webhook arrives after the hangup's; then
    # Telnyx's call-event log decides (completed unless it shows a machine answer).
    amd_grace_s: float = Field(10.0, ge=0, le=300)
    request_timeout_s: float = Field(15.0, gt=0, le=120)
    max_retries: int = Field(2, ge=0, le=5)

    @property
    def configured(self) -> bool:
        return bool(self.api_key and self.public_key and self.connection_id)


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Check an agent's Telnyx providerConfig when the agent is created; raises ValueError."""
    settings = call_settings(config)
    if not MIN_TIMEOUT_S <= settings.ring_timeout_s <= MAX_TIMEOUT_S:
        raise ValueError(
            f"ringTimeoutSeconds must be from {MIN_TIMEOUT_S} to {MAX_TIMEOUT_S} on Telnyx"
        )
    if settings.max_duration_s > MAX_TIME_LIMIT_S:
        raise ValueError(f"maxDurationSeconds must be at most {MAX_TIME_LIMIT_S} on Telnyx")
    connection = config.get("connectionId")
    if connection is not None and (not isinstance(connection, str) or not connection.strip()):
        raise ValueError("connectionId must be a non-empty string (a Call Control app id)")
    mode = config.get("amdMode")
    if mode is not None and mode not in AMD_MODES:
        raise ValueError(f"amdMode must be one of {', '.join(AMD_MODES)}")
    return config


def dial_options(
    config: dict[str, Any], *, job_id: str, dial_key: str
) -> tuple[CallSettings, dict[str, Any]]:
    """The agent settings and the Telnyx dial parameters they map to."""
    settings = call_settings(config)
    options: dict[str, Any] = {
        "timeout_secs": int(min(max(settings.ring_timeout_s, MIN_TIMEOUT_S), MAX_TIMEOUT_S)),
        "time_limit_secs": int(min(max(settings.max_duration_s, 1), MAX_TIME_LIMIT_S)),
    }
    if settings.machine_detection:
        options["answering_machine_detection"] = config.get("amdMode") or "detect"
    if settings.agent_url:
        # Telnyx streams the call's audio to this WebSocket; its `start` message carries
        # the call_control_id and our client_state (the dial key). The job id rides in the
        # URL's query, since Telnyx has no custom stream parameters.
        options["stream_url"] = _with_query(
            settings.agent_url, {"jobId": job_id, "dialKey": dial_key}
        )
        options["stream_track"] = "inbound_track"
        options["stream_bidirectional_mode"] = "rtp"
        options["stream_bidirectional_codec"] = "PCMU"
    return settings, options


def _with_query(url: str, extra: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items())
    return urlunsplit(parts._replace(query=urlencode(query)))
