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
from dialbatch.providers.base import Provider, ProviderEvent, follows_in_memory
from dialbatch.store import notify, queue
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
        self._hurry = asyncio.Event()
        self._told_waiting = False
        self._events = EventApplier(db, self.config.retry, max_group=self.config.max_write_group)
        agents = AgentCache(db)
        self.dialer = Dialer(db, providers, self.config, self.owner, agents, self.on_event)
        self.reconciler = Reconciler(
            db, providers, self.config, self.owner, agents, self.on_event, self.dialer.placing
        )
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

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop without losing a call (DESIGN.md §6b).

        Claim nothing more, at once; claims not yet dialed go back to waiting; every dial
        whose intent is written is placed (or refused) and recorded. Then wait, up to the
        grace period, for the calls whose providers follow them in this process's memory
        (the simulated carrier, SIP) to end; and hand over whatever is still live, so that
        the next worker's reconciler asks the provider about it at once. `hurry()` (a
        second Ctrl-C) cuts the wait short and skips nothing else.
        """
        self._stopping = True
        self._stop_requested.set()
        self.dialer.halt()
        self.wake()
        await self._loop_done.wait()
        await self.dialer.stop()
        grace = self.config.stop_grace_s if grace_s is None else grace_s
        live = await self._wait_for_live(grace)
        try:
            async with self.db.write() as conn:
                handed = await queue.hand_over(conn, self.owner)
        except Exception:
            # Their leases then run out by themselves: later, but nothing is lost.
            log.exception("handing over live dials failed", extra={"worker": self.owner})
            return
        log.info(
            "dispatcher handed over %d live dials",
            handed,
            extra={"worker": self.owner, "handed_over": handed, "in_memory": live},
        )

    def hurry(self) -> None:
        """Told to stop again: end the wait for live calls now (nothing else is skipped)."""
        self._hurry.set()

    async def _wait_for_live(self, grace_s: float) -> int:
        """Wait, up to `grace_s`, for the live calls followed in this process's memory to
        end, keeping their leases meanwhile; returns how many are still live."""
        names = [name for name, p in self.providers.items() if follows_in_memory(p)]
        deadline = time.monotonic() + grace_s
        renewed = 0.0
        while True:
            try:
                async with self.db.read() as conn:
                    live = await queue.count_following(conn, self.owner, names)
                if live and time.monotonic() - renewed >= self.config.sweep_interval_s:
                    async with self.db.write() as conn:
                        await queue.renew_dial_leases(conn, self.owner, self.config.dial_lease_ms)
                    renewed = time.monotonic()
            except Exception:
                log.exception("waiting for live calls failed", extra={"worker": self.owner})
                return -1
            left = deadline - time.monotonic()
            if not live or left <= 0 or self._hurry.is_set():
                return live
            if renewed and not self._told_waiting:
                self._told_waiting = True
                log.info(
                    "dispatcher draining: waiting up to %.0f s for %d live calls",
                    left,
                    live,
                    extra={"worker": self.owner, "in_flight": live},
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), min(0.2, left))

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
