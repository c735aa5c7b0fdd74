"""Wiring: one process's database, providers, dispatcher and API, started and stopped
together. `serve` runs API + dispatcher (the embedded default); `serve --no-dispatch` and
`worker` split them."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dialbatch.dispatch.dispatcher import DispatchConfig, Dispatcher
from dialbatch.domain.retry import RetryConfig
from dialbatch.events.webhooks import WebhookDeliverer
from dialbatch.providers.base import Provider, ProviderEvent
from dialbatch.providers.registry import build_providers
from dialbatch.settings import Settings
from dialbatch.signing import load_master_key
from dialbatch.store import workers
from dialbatch.store.engine import Database

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

# Beyond the grace period, what a stop may take to place and record written intents and
# hand the rest over, before the dispatcher is cancelled.
STOP_MARGIN_S = 30.0
SWITCH_INTERVAL_S = 0.0005


def settle_heap() -> None:
    """Take what start-up built out of the garbage collector's way, once, before serving.

    The modules, the app, its routes and models are some 130k objects that live as long
    as the process. Every full collection walked them all again, and a streamed export
    starts one every few dozen chunks (each chunk's rows survive long enough to be
    promoted): about 1 us of CPU per exported row, a tenth of a CSV export's cost
    (docs/benchmarks.md, "Export"). `gc.freeze()` moves them to a permanent generation
    that no collection walks; the collector still frees every cycle made afterwards.
    Called by `dialbatch serve` and `dialbatch worker`, not by `Runtime`: a test process
    starts many runtimes, and freezing at each would keep their garbage for good."""
    gc.collect()
    gc.freeze()


def dispatch_config(settings: Settings) -> DispatchConfig:
    return DispatchConfig(
        poll_interval_s=settings.poll_interval_s,
        claim_lease_ms=int(settings.claim_lease_s * 1000),
        dial_lease_ms=int(settings.dial_lease_s * 1000),
        reconcile_quiet_ms=int(settings.reconcile_quiet_s * 1000),
        stop_grace_s=settings.stop_grace_s,
        retry=RetryConfig.from_settings(settings),
    )


@dataclass
class Runtime:
    """Everything one process runs; start() and stop() bracket its life."""

    settings: Settings
    db: Database
    dispatcher: Dispatcher
    providers: dict[str, Provider]
    dispatch: bool = True
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    # Outbound webhooks are delivered by every process that dispatches (events/webhooks.py).
    webhooks: WebhookDeliverer | None = None
    _webhook_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _heartbeat: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: Settings, *, dispatch: bool = True) -> Runtime:
        db = Database(settings.effective_database_url)
        holder: list[Dispatcher] = []

        async def sink(event: ProviderEvent) -> None:
            await holder[0].on_event(event)

        providers = build_providers(settings, sink)
        dispatcher = Dispatcher(db, providers, dispatch_config(settings))
        holder.append(dispatcher)
        return cls(
            settings=settings, db=db, dispatcher=dispatcher, providers=providers, dispatch=dispatch
        )

    async def start(self) -> None:
        # Ingest validates in a worker thread while SQLite (on aiosqlite's thread) inserts;
        # every hand-off between them and the event loop waits for the GIL holder's switch
        # interval. bench/ingest_phases.py prints a 300k-row upload pipelined at 0.5 ms and
        # at 5 ms (3.7 s -> 2.9 s on a quiet 2-core machine); it also keeps the API
        # responsive during an upload.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        if self.dispatch:
            self._task = asyncio.create_task(self.dispatcher.run(), name="dispatcher")
            await self._beat_once()  # seen from the start, not a beat later
            self._heartbeat = asyncio.create_task(self._beat(), name="heartbeat")
        await self._start_webhooks()

    def hurry(self) -> None:
        """Told to stop a second time: stop waiting for live calls (they are handed over)."""
        self.dispatcher.hurry()

    async def _beat_once(self) -> None:
        try:
            async with self.db.write() as conn:
                await workers.beat(conn, self.dispatcher.owner, socket.gethostname(), os.getpid())
                await workers.prune(conn)
        except Exception:
            log.warning("worker heartbeat failed; retrying", exc_info=True)

    async def _beat(self) -> None:
        """This worker's heartbeat row (store/workers.py), every HEARTBEAT_S."""
        while True:
            await asyncio.sleep(workers.HEARTBEAT_S)
            await self._beat_once()

    async def stop(self) -> None:
        """Stop claiming, let the loop finish its round, then close what it used.

        The dispatcher's stop places and records written intents, waits the grace period
        for calls followed in memory and hands the rest over (DESIGN.md §6b). The loop is
        awaited, not cancelled: a task cancelled inside a transaction would try to roll
        back over a connection that dispose() is closing, and hang.
        """
        await self._stop_webhooks()
        limit = self.dispatcher.config.stop_grace_s + STOP_MARGIN_S
        try:
            await asyncio.wait_for(self.dispatcher.stop(), limit)
        except TimeoutError:
            log.warning("dispatcher did not drain in %.0f s", limit)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            with contextlib.suppress(Exception):
                async with self.db.write() as conn:
                    await workers.gone(conn, self.dispatcher.owner)
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), STOP_MARGIN_S)
            except TimeoutError:
                log.warning("dispatcher did not stop in %.0f s; cancelling it", STOP_MARGIN_S)
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        for provider in self.providers.values():
            await provider.aclose()
        await self.db.dispose()

    async def _start_webhooks(self) -> None:
        if not self.dispatch:
            return
        master_key = load_master_key(self.settings.secret_key, self.settings.data_dir)
        self.webhooks = WebhookDeliverer(self.db, self.settings, master_key)
        self._webhook_task = asyncio.create_task(self.webhooks.run(), name="webhooks")

    async def _stop_webhooks(self) -> None:
        """Stop claiming deliveries; those in flight finish and are recorded (bounded by
        the webhook timeout); any left unrecorded are sent again after their lease."""
        if self.webhooks is None or self._webhook_task is None:
            return
        try:
            await asyncio.wait_for(self.webhooks.stop(), STOP_MARGIN_S)
        except TimeoutError:
            self._webhook_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._webhook_task

    def app(self) -> FastAPI:
        # Imported here: a `dialbatch worker` runs no API and never loads FastAPI.
        from dialbatch.api.app import create_app

        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        return create_app(
            self.db,
            self.settings,
            wake=self.dispatcher.wake,
            lifespan=lifespan,
            providers=self.providers,
        )
