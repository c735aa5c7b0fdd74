"""The dispatcher: one worker's loop around the dialing loop (dialing.py) and the
reconciler (reconciler.py).

Polling is the correctness path; `wake()` (a new batch, a finished call, a cancel) is only
a latency hint. Outcomes arrive through `on_event`, from whichever provider learns them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid

from dialbatch.dispatch.agents import AgentCache
from dialbatch.dispatch.config import DispatchConfig as DispatchConfig  # re-exported
from dialbatch.dispatch.dialing import Dialer
from dialbatch.dispatch.reconciler import UNKNOWABLE_ERROR as UNKNOWABLE_ERROR
from dialbatch.dispatch.reconciler import Reconciler
from dialbatch.events.apply import EventApplier
from dialbatch.providers.base import Provider, ProviderEvent
from dialbatch.store import notify
from dialbatch.store.engine import Database

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        db: Database,
        providers: dict[str, Provider],
        config: DispatchConfig | None = None,
        *,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.providers = providers
        self.config = config or DispatchConfig()
        self.owner = owner or f"w-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._stopping = False
        self._stop_requested = asyncio.Event()  # the LISTEN task stops at once
        self._events = EventApplier(db, self.config.retry, max_group=self.config.max_write_group)
        agents = AgentCache(db)
        self.dialer = Dialer(db, providers, self.config, self.owner, agents, self.on_event)
        self.reconciler = Reconciler(db, providers, self.config, self.owner, agents, self.on_event)
        self._last_sweep = 0.0
        self._loop_done = asyncio.Event()
        self._loop_done.set()  # not running until run() starts

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Run until `stop()`; errors in one round are logged and the loop goes on."""
        self._loop_done.clear()
        log.info("dispatcher started", extra={"worker": self.owner})
        listener = asyncio.create_task(notify.listen(self.db.url, self.wake, self._stop_requested))
        try:
            await self._loop()
        finally:
            self._stop_requested.set()
            await listener
            self._loop_done.set()
            log.info("dispatcher stopped", extra={"worker": self.owner})

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self.tick()
                if time.monotonic() - self._last_sweep >= self.config.sweep_interval_s:
                    await self.sweep()
                    self._last_sweep = time.monotonic()
            except Exception:
                log.exception("dispatcher round failed; retrying")
            jitter = random.uniform(0.8, 1.2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_interval_s * jitter)
            self._wake.clear()

    async def stop(self) -> None:
        """Stop claiming and drain: dials already started finish starting (their outcomes
        still arrive); claimed calls not yet dialed go back to waiting for another worker."""
        self._stopping = True
        self._stop_requested.set()
        self.dialer.halt()
        log.info(
            "dispatcher draining", extra={"worker": self.owner, "in_flight": self.dialer.starting}
        )
        self.wake()
        await self._loop_done.wait()
        await self.dialer.stop()

    async def tick(self) -> int:
        """One claiming round over every workspace with runnable batches."""
        return await self.dialer.claim()

    async def sweep(self) -> None:
        """Recovery: expired claims back to waiting, abandoned dials reconciled, leases kept."""
        await self.reconciler.sweep()

    async def on_event(self, event: ProviderEvent) -> None:
        """The sink every in-process provider reports to."""
        applied = await self._events.apply(event)
        if applied.changed and applied.status is not None:
            self.wake()  # a slot was freed, or a retry is due
