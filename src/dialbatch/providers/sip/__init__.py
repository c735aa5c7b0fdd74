"""Direct SIP: calls placed on the team's own SIP trunk or PBX (UDP, G.711), the call audio
bridged to the voice agent's WebSocket in the Twilio Media Streams format.

sippy (and its process-wide event loop) is imported only when SIP is configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dialbatch.providers.sip.config import SipConfigError, SipSettings, validate_config

if TYPE_CHECKING:
    from dialbatch.providers.base import EventSink
    from dialbatch.providers.sip.adapter import SipProvider
    from dialbatch.settings import Settings

__all__ = ["SipConfigError", "SipSettings", "build", "validate_config"]


def build(
    settings: Settings, sink: EventSink, sip_settings: SipSettings | None = None
) -> SipProvider | None:
    """The SIP provider, or None when no trunk is configured (DIALBATCH_SIP_TRUNK)."""
    sip = sip_settings if sip_settings is not None else SipSettings()
    if sip.trunk is None:
        return None
    from dialbatch.providers.sip.adapter import SipProvider

    return SipProvider(sink, sip)
