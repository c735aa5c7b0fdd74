"""Twilio (and Twilio-compatible APIs: SignalWire, ...) as a dialbatch provider.

Configured by DIALBATCH_TWILIO_* (see config.py); absent credentials mean the provider is
not offered by this process. Documented in docs/providers.md.

The SDK (twilio, and the aiohttp and requests it pulls in: ~15 MB) is imported only when
an account is configured here: `build` and `TwilioProvider` load the adapter on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dialbatch.providers.twilio.config import TwilioSettings, validate_config

if TYPE_CHECKING:
    from dialbatch.providers.base import EventSink
    from dialbatch.providers.twilio.adapter import TwilioProvider
    from dialbatch.settings import Settings

__all__ = ["TwilioProvider", "TwilioSettings", "build", "validate_config"]


def build(settings: Settings, sink: EventSink) -> TwilioProvider | None:
    """The adapter, or None when no account is configured here."""
    twilio = TwilioSettings()
    if not twilio.configured:
        return None
    from dialbatch.providers.twilio.adapter import TwilioProvider

    return TwilioProvider(twilio, settings.effective_public_url, sink)


def __getattr__(name: str) -> Any:
    # `from dialbatch.providers.twilio import TwilioProvider` still works, loading the SDK.
    if name == "TwilioProvider":
        from dialbatch.providers.twilio.adapter import TwilioProvider

        return TwilioProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
