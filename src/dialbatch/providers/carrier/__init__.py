"""The adapter that dials through the simulated carrier over HTTP (DIALBATCH_CARRIER_URL,
DIALBATCH_CARRIER_SECRET). The carrier itself, run as its own process by `dialbatch
carrier`, is a stand-in and lives in `dialbatch.testing.carrier`.

Its calls outlive the worker that placed them and it records every dial it receives, so
tests and demos can show at-most-once dialing with workers being killed. An agent's
`providerConfig` takes the simulated provider's keys (outcomes, seed, meanTalkSeconds, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from dialbatch.providers.simulated import validate_config as _validate_simulated

if TYPE_CHECKING:
    from dialbatch.providers.base import EventSink
    from dialbatch.providers.carrier.adapter import CarrierProvider
    from dialbatch.settings import Settings

__all__ = ["CarrierConfigError", "CarrierSettings", "build", "validate_config"]


class CarrierConfigError(ValueError):
    pass


class CarrierSettings(BaseSettings):
    """Where the carrier listens and the secret its callbacks are signed with."""

    model_config = SettingsConfigDict(env_prefix="DIALBATCH_CARRIER_", extra="ignore")

    url: str | None = None
    secret: str | None = None
    timeout_s: float = 10.0


def build(
    settings: Settings, sink: EventSink, carrier_settings: CarrierSettings | None = None
) -> CarrierProvider | None:
    """The carrier adapter, or None when DIALBATCH_CARRIER_URL is not set.

    Outcomes arrive as signed callbacks to the API, not through `sink`."""
    cs = carrier_settings if carrier_settings is not None else CarrierSettings()
    if not cs.url:
        return None
    if not cs.secret:
        raise CarrierConfigError("DIALBATCH_CARRIER_SECRET is required with DIALBATCH_CARRIER_URL")
    from dialbatch.providers.carrier.adapter import CarrierProvider

    return CarrierProvider(cs.url, cs.secret, timeout_s=cs.timeout_s)


# The longest `placeDelayMs` an agent may ask of the carrier stand-in (below its adapter's
# default request timeout of 10 s).
MAX_PLACE_DELAY_MS = 5_000


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """The carrier draws outcomes as the simulated provider does: the same keys, and one of
    its own: `placeDelayMs`, the most a dial's request waits in the carrier before the dial is
    received (drawn per dial between 0 and it): a slow, uneven path to the carrier."""
    delay = config.get("placeDelayMs")
    if delay is not None and (
        isinstance(delay, bool)
        or not isinstance(delay, int | float)
        or not 0 <= delay <= MAX_PLACE_DELAY_MS
    ):
        raise CarrierConfigError(f"placeDelayMs must be a number from 0 to {MAX_PLACE_DELAY_MS}")
    return _validate_simulated(config)
