"""The dispatcher loop.

Polling is the correctness path; `wake()` (a new batch, a finished call, a cancel) is only
a latency hint. Tokens are spent at claim time, so a claimed group is paced out locally
over its second. Outcomes arrive through `on_event`, from whichever provider learns them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass, field

from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.domain.states import FINAL_CALL_STATES
from dialbatch.providers.base import (
    DialNotFound,
    DialRequest,
    Live,
    OutcomeUnknowable,
    Provider,
    ProviderError,
)
from dialbatch.store import notify, queue, workspaces
from dialbatch.store.batches import mark_done_if_drained
from dialbatch.store.engine import Database
from dialbatch.store.queue import Claimed, RetryConfig, Uncertain
from dialbatch.store.workspaces import Agent

log = logging.getLogger(__name__)

UNKNOWABLE_ERROR = (
    "Call outcome unknown: the worker following this call stopped and the provider could "
    "not confirm what happened; not re-dialed to avoid calling twice"
)


@dataclass(frozen=True)
class DispatchConfig:
    poll_interval_s: float = 0.25
    claim_lease_ms: int = 30_000
    dial_lease_ms: int = 60_000
    max_group: int = 100
    sweep_interval_s: float = 1.0
    retry: RetryConfig = field(default_factory=RetryConfig)


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
        self._stop_requested = asyncio.Event()  # paced dials stop waiting at once
        self._dials: set[asyncio.Task[None]] = set()
        self._next_slot: dict[str, float] = {}
        self._agents: dict[tuple[str, str], Agent | None] = {}
        self._last_sweep = 0.0
        self._loop_done = asyncio.Event()
        self._loop_done.set()  # not running until run() starts

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Run until `stop()`; errors in one round are logged and the loop goes on."""
        self._loop_done.clear()
        listener = asyncio.create_task(notify.listen(self.db.url, self.wake, self._stop_requested))
        try:
            await self._loop()
        finally:
            self._stop_requested.set()
            await listener
            self._loop_done.set()

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
        self.wake()
        await self._loop_done.wait()
        while self._dials:
            await asyncio.gather(*list(self._dials), return_exceptions=True)

    async def tick(self) -> int:
        """One claiming round over every workspace with runnable batches."""
        async with self.db.read() as conn:
            ws_ids = await queue.runnable_workspaces(conn)
        random.shuffle(ws_ids)  # no workspace is always served first
        claimed_total = 0
        for ws in ws_ids:
            async with self.db.write() as conn:
                claimed, cps = await queue.claim(
                    conn, ws, self.owner, self.config.max_group, self.config.claim_lease_ms
                )
            claimed_total += len(claimed)
            self._schedule(ws, claimed, cps)
        return claimed_total

    def _schedule(self, ws: str, claimed: list[Claimed], cps: float) -> None:
        spacing = 1.0 / cps if cps > 0 else 0.0
        now = time.monotonic()
        slot = max(now, self._next_slot.get(ws, now))
        for call in claimed:
            task = asyncio.create_task(self._dial(call, slot - now))
            self._dials.add(task)
            task.add_done_callback(self._dials.discard)
            slot += spacing
        self._next_slot[ws] = slot

    async def _dial(self, call: Claimed, delay_s: float) -> None:
        if delay_s > 0 and not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), delay_s)
        try:
            if self._stopping:
                async with self.db.write() as conn:
                    await queue.release_claim(conn, call, self.owner)
                return
            await self._dial_now(call)
        except Exception:
            # The lease expires and the sweeper takes over: nothing is lost.
            log.exception("dial of %s failed unexpectedly", call.job_id)

    async def _dial_now(self, call: Claimed) -> None:
        agent = await self._agent(call.workspace_id, call.agent_id)
        provider = self.providers.get(agent.provider) if agent else None
        if agent is None or provider is None:
            await self._fail_unstarted(call, "agent or its provider is not available")
            return
        async with self.db.write() as conn:
            intent = await queue.begin_dial(
                conn, call, self.owner, provider.name, self.config.dial_lease_ms
            )
        if intent is None:
            return  # cancelled or lease lost: never dial
        request = DialRequest(
            dial_key=intent.dial_key,
            job_id=call.job_id,
            to=call.phone_number,
            from_=agent.from_numbers[0] if agent.from_numbers else None,
            metadata=json.loads(call.metadata),
            agent_id=agent.id,
            agent_config=agent.provider_config,
        )
        try:
            provider_call_id = await provider.start_call(request)
        except ProviderError as exc:
            await self.on_event(
                CallEvent(outcome=Outcome.FAILED, dial_key=intent.dial_key, detail=str(exc))
            )
            return
        async with self.db.write() as conn:
            await queue.record_placed(conn, intent.dial_key, provider_call_id)

    async def _fail_unstarted(self, call: Claimed, reason: str) -> None:
        log.error("cannot dial %s: %s", call.job_id, reason)
        # Leave it claimed: the lease expires and it goes back to waiting, so that a fixed
        # configuration picks it up again. Nothing was dialed.

    async def _agent(self, workspace_id: str, agent_id: str) -> Agent | None:
        key = (workspace_id, agent_id)
        if key not in self._agents:
            async with self.db.read() as conn:
                self._agents[key] = await workspaces.get_agent(conn, workspace_id, agent_id)
        return self._agents[key]

    async def on_event(self, event: CallEvent) -> None:
        """The sink every provider reports outcomes to."""
        async with self.db.write() as conn:
            applied = await queue.apply_outcome(conn, event, self.config.retry)
        if not applied.changed:
            return
        if applied.batch_id and applied.status in FINAL_CALL_STATES and not self.db.is_sqlite:
            # Under READ COMMITTED the last two outcomes of a batch, committing together,
            # can each miss the other's counters; checking again after our commit cannot.
            async with self.db.write() as conn:
                await mark_done_if_drained(conn, applied.batch_id)
        self.wake()

    async def sweep(self) -> None:
        """Recovery: expired claims back to waiting, abandoned dials reconciled, leases kept."""
        async with self.db.write() as conn:
            await queue.renew_dial_leases(conn, self.owner, self.config.dial_lease_ms)
            released = await queue.expire_claims(conn)
            uncertain = await queue.expire_dials(conn, self.owner, self.config.dial_lease_ms)
            await queue.close_drained_batches(conn)
        if released:
            log.info("released %d expired claims", released)
        for item in uncertain:
            await self._reconcile(item)

    async def _reconcile(self, item: Uncertain) -> None:
        agent = await self._agent(item.workspace_id, item.agent_id)
        provider = self.providers.get(agent.provider) if agent else None
        outcome_event: CallEvent | None = None
        final_error: str | None = None
        try:
            if provider is None:
                raise OutcomeUnknowable("provider not configured in this process")
            status = await provider.fetch_status(item.dial_key, item.provider_call_id)
        except DialNotFound:
            outcome_event = CallEvent(
                outcome=Outcome.FAILED,
                dial_key=item.dial_key,
                detail="Call failed - the provider never received the dial",
            )
        except (OutcomeUnknowable, ProviderError) as exc:
            log.warning("outcome of %s cannot be learned: %s", item.dial_key, exc)
            outcome_event = CallEvent(outcome=Outcome.FAILED, dial_key=item.dial_key)
            final_error = UNKNOWABLE_ERROR
        else:
            if isinstance(status, Live):
                async with self.db.write() as conn:
                    await queue.resume_following(
                        conn, item.call_id, self.owner, self.config.dial_lease_ms
                    )
                return
            outcome_event = status
        async with self.db.write() as conn:
            await queue.apply_outcome(
                conn, outcome_event, self.config.retry, final_error=final_error
            )
