"""The agent settings every real provider maps to its own options.

They live in the agent's `providerConfig` (beside provider-specific keys) so that one agent
definition says how its calls behave whatever carries them: how long to let a phone ring,
how long a call may last, whether to detect answering machines (a machine answer is the
outcome `voicemail`), and where the voice agent listens.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class CallSettingsError(ValueError):
    """An agent's providerConfig cannot be used; the message says which key and why."""


class CallSettings(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    ring_timeout_s: float = Field(30.0, alias="ringTimeoutSeconds", gt=0, le=600)
    max_duration_s: float = Field(3600.0, alias="maxDurationSeconds", gt=0, le=4 * 3600)
    machine_detection: bool = Field(False, alias="machineDetection")
    # The voice agent's media-stream WebSocket. Twilio and SIP speak the Twilio Media
    # Streams messages to it; Telnyx streams in its own, similar format.
    agent_url: str | None = Field(None, alias="agentUrl", max_length=2048)

    @field_validator("agent_url")
    @classmethod
    def _websocket_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("ws://", "wss://")):
            raise ValueError("must be a ws:// or wss:// URL")
        return value


def call_settings(config: dict[str, Any]) -> CallSettings:
    """Parse the shared keys of an agent's providerConfig; raises CallSettingsError."""
    try:
        return CallSettings.model_validate(config)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "providerConfig"
        raise CallSettingsError(f"{where}: {first['msg']}") from exc
