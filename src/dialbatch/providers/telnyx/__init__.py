"""Telnyx Call Control: dials through the official `telnyx` SDK, webhooks verified with
Ed25519. Configured by `DIALBATCH_TELNYX_*` (config.TelnyxSettings); see docs/providers.md.

Inside this package `import telnyx` is the SDK (imports are absolute), never this package.
The SDK (~3,000 modules, ~28 MB) is imported only when Telnyx is configured here: `build`
and `TelnyxProvider` load the adapter on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dialbatch.providers.telnyx.config import TelnyxSettings, validate_config

if TYPE_CHECKING:
    from dialbatch.providers.base import EventSink
    from dialbatch.providers.telnyx.adapter import TelnyxProvider
    from dialbatch.settings import Settings

CALLBACK_PATH = "/v1/providers/telnyx/callbacks"

__all__ = ["CALLBACK_PATH", "TelnyxProvider", "TelnyxSettings", "build", "validate_config"]


def build(settings: Settings, sink: EventSink) -> TelnyxProvider | None:
    """None unless api_key, public_key and connection_id are set. When DIALBATCH_PUBLIC_URL
    is set, each dial names our callback URL itself (overriding the Call Control app's)."""
    telnyx_settings = TelnyxSettings()
    if not telnyx_settings.configured:
        return None
    from dialbatch.providers.telnyx.adapter import TelnyxProvider

    webhook_url = settings.public_url.rstrip("/") + CALLBACK_PATH if settings.public_url else None
    return TelnyxProvider(telnyx_settings, sink, webhook_url=webhook_url)


def __getattr__(name: str) -> Any:
    # `from dialbatch.providers.telnyx import TelnyxProvider` still works, loading the SDK.
    if name == "TelnyxProvider":
        from dialbatch.providers.telnyx.adapter import TelnyxProvider

        return TelnyxProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
