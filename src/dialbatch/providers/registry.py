"""Which providers exist, and which this process can dial through.

Each provider lives in its own module exposing `build(settings, sink) -> Provider | None`
(None: not configured here, e.g. no Twilio credentials) and `validate_config(config)`
(checks an agent's providerConfig when the agent is created; raises ValueError). Modules
are imported only when used, so an SDK one deployment never uses is never loaded.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any

from dialbatch.providers.base import EventSink, Provider
from dialbatch.settings import Settings

PROVIDER_MODULES: dict[str, str] = {
    "simulated": "dialbatch.providers.simulated",
    "carrier": "dialbatch.providers.carrier",
    "twilio": "dialbatch.providers.twilio",
    "telnyx": "dialbatch.providers.telnyx",
    "sip": "dialbatch.providers.sip",
}


def _available() -> tuple[str, ...]:
    found = []
    for name, module in PROVIDER_MODULES.items():
        if importlib.util.find_spec(module) is not None:
            found.append(name)
    return tuple(found)


KNOWN_PROVIDERS = _available()


def _module(name: str) -> ModuleType:
    return importlib.import_module(PROVIDER_MODULES[name])


def build_providers(settings: Settings, sink: EventSink) -> dict[str, Provider]:
    """Every known provider that is configured in this process, by name."""
    built: dict[str, Provider] = {}
    for name in KNOWN_PROVIDERS:
        build = getattr(_module(name), "build", None)
        provider = build(settings, sink) if build is not None else None
        if provider is not None:
            built[name] = provider
    return built


def validate_agent_config(provider: str, config: dict[str, Any]) -> dict[str, Any]:
    """Raise ValueError (with a message fit for the API's 400) if `config` cannot work."""
    if provider not in KNOWN_PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(KNOWN_PROVIDERS)}")
    result: dict[str, Any] = _module(provider).validate_config(config)
    return result
