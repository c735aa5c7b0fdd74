"""Twilio (and Twilio-compatible APIs: SignalWire, ...) as a dialbatch provider.

Configured by DIALBATCH_TWILIO_* (see config.py); absent credentials mean the provider is
not offered by this process. Documented in docs/providers.md.
"""

from __future__ import annotations

from dialbatch.providers.base import EventSink
from dialbatch.providers.twilio.adapter import TwilioProvider
from dialbatch.providers.twilio.config import TwilioSettings, validate_config
from dialbatch.settings import Settings

__all__ = ["TwilioProvider", "TwilioSettings", "build", "validate_config"]


def build(settings: Settings, sink: EventSink) -> TwilioProvider | None:
    """The adapter, or None when no account is configured here."""
    twilio = TwilioSettings()
    if not twilio.configured:
        return None
    return TwilioProvider(twilio, settings.effective_public_url, sink)
