"""Which providers this process can dial through, by the name agents refer to."""

from __future__ import annotations

from dialbatch.providers.base import EventSink, Provider
from dialbatch.providers.simulated import SimulatedProvider
from dialbatch.settings import Settings

KNOWN_PROVIDERS = ("simulated",)


def build_providers(settings: Settings, sink: EventSink) -> dict[str, Provider]:
    return {
        "simulated": SimulatedProvider(
            sink, time_scale=settings.simulated_time_scale, seed=settings.demo_seed
        ),
    }
