"""The dispatcher's knobs, shared by the dialing loop and the reconciler."""

from __future__ import annotations

from dataclasses import dataclass, field

from dialbatch.domain.clock import Clock
from dialbatch.domain.retry import RetryConfig


@dataclass(frozen=True)
class DispatchConfig:
    poll_interval_s: float = 0.25
    claim_lease_ms: int = 30_000
    dial_lease_ms: int = 60_000
    max_group: int = 100
    # Most outcomes (or placements) written in one transaction.
    max_write_group: int = 500
    sweep_interval_s: float = 1.0
    # A followed dial the provider has said nothing about for this long is looked up.
    reconcile_quiet_ms: int = 120_000
    retry: RetryConfig = field(default_factory=RetryConfig)
    # Stopping: how long to wait for the calls this process follows in memory to end
    # before handing them over to the next worker.
    stop_grace_s: float = 30.0
    # The clock the pre-dial gate reads (calling windows); None: the database's, so that
    # every worker on every host decides alike. Tests set a FixedClock.
    gate_clock: Clock | None = None
