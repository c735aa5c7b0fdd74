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
from dialbatch.events.apply import apply_event
from dialbatch.providers.base import (
    DialMaybePlaced,
    DialNotFound,
    DialRequest,
    Live,
    OutcomeUnknowable,
    Provider,
    ProviderError,
    ProviderEvent,
)
from dialbatch.store import following, notify, queue, workspaces
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
    # A followed dial the provider has said nothing about for this long is looked up.
    reconcile_quiet_ms: int = 120_000
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
        log.info("dispatcher draining", extra={"worker": self.owner, "in_flight": len(self._dials)})
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
            workspace_id=call.workspace_id,
        )
        try:
            provider_call_id = await provider.start_call(request)
        except DialMaybePlaced as exc:
            # Left `dialing`: once quiet for reconcile_quiet_ms it is looked up by dial key.
            log.warning(
                "dial %s may have been placed: %s",
                intent.dial_key,
                exc,
                extra={**_fields(intent.dial_key), "provider": provider.name},
            )
            return
        except ProviderError as exc:
            log.warning(
                "provider refused dial %s: %s",
                intent.dial_key,
                exc,
                extra={**_fields(intent.dial_key), "provider": provider.name},
            )
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

    async def on_event(self, event: ProviderEvent) -> None:
        """The sink every in-process provider reports to."""
        applied = await apply_event(self.db, event, self.config.retry)
        if applied.changed and applied.status is not None:
            self.wake()  # a slot was freed, or a retry is due

    async def sweep(self) -> None:
        """Recovery: expired claims back to waiting, abandoned dials reconciled, leases kept."""
        async with self.db.write() as conn:
            await queue.renew_dial_leases(conn, self.owner, self.config.dial_lease_ms)
            released = await queue.expire_claims(conn)
            uncertain = await queue.expire_dials(conn, self.owner, self.config.dial_lease_ms)
            await queue.close_drained_batches(conn)
            quiet = await following.quiet_dials(conn, self.owner, self.config.reconcile_quiet_ms)
        if released:
            log.info("released %d expired claims", released, extra={"released": released})
        for item in uncertain:
            log.warning(
                "dial %s lost its worker; reconciling with the provider",
                item.dial_key,
                extra={"dial_key": item.dial_key, "worker": self.owner},
            )
            await self._reconcile(item)
        for dial in quiet:
            await self._check_quiet(dial)

    async def _ask(
        self, workspace_id: str, agent_id: str, key: str, provider_call_id: str | None
    ) -> CallEvent | Live | None:
        """The provider's word on a dial; None when it cannot be asked right now."""
        agent = await self._agent(workspace_id, agent_id)
        provider = self.providers.get(agent.provider) if agent else None
        if provider is None:
            raise OutcomeUnknowable("provider not configured in this process")
        try:
            return await provider.fetch_status(key, provider_call_id)
        except DialNotFound:
            return CallEvent(
                outcome=Outcome.FAILED,
                dial_key=key,
                detail="Call failed - the provider never received the dial",
            )

    async def _check_quiet(self, dial: following.QuietDial) -> None:
        """A dial we follow went quiet (a lost callback?): the provider says how it ended."""
        try:
            status = await self._ask(
                dial.workspace_id, dial.agent_id, dial.dial_key, dial.provider_call_id
            )
        except ProviderError as exc:
            # We still hold the lease; ask again after another quiet period.
            log.warning("dial %s is quiet and the provider is unreachable: %s", dial.dial_key, exc)
            status = None
        except OutcomeUnknowable as exc:
            # The provider has forgotten it (or never knew): it will never say more.
            log.warning("outcome of quiet dial %s cannot be learned: %s", dial.dial_key, exc)
            async with self.db.write() as conn:
                await queue.apply_outcome(
                    conn,
                    CallEvent(outcome=Outcome.FAILED, dial_key=dial.dial_key),
                    self.config.retry,
                    final_error=UNKNOWABLE_ERROR,
                )
            return
        if isinstance(status, CallEvent):
            log.info("dial %s ended while quiet: %s", dial.dial_key, status.outcome.value)
            await self.on_event(status)
            return
        async with self.db.write() as conn:
            if isinstance(status, Live):  # its id may never have been recorded
                await queue.record_placed(conn, dial.dial_key, status.provider_call_id)
            await following.mark_heard(conn, dial.dial_key)

    async def _reconcile(self, item: Uncertain) -> None:
        final_error: str | None = None
        try:
            status = await self._ask(
                item.workspace_id, item.agent_id, item.dial_key, item.provider_call_id
            )
        except ProviderError as exc:
            # The provider cannot be reached right now: the call stays `unknown` and is
            # asked about again when this lease runs out. Never re-dialed meanwhile.
            log.warning("cannot reach the provider about %s yet: %s", item.dial_key, exc)
            return
        except OutcomeUnknowable as exc:
            log.warning("outcome of %s cannot be learned: %s", item.dial_key, exc)
            status = CallEvent(outcome=Outcome.FAILED, dial_key=item.dial_key)
            final_error = UNKNOWABLE_ERROR
        if isinstance(status, Live) or status is None:
            async with self.db.write() as conn:
                if isinstance(status, Live):
                    # The worker that placed it may have died before recording the id;
                    # callbacks matched by it and cancel-with-hangup need it.
                    await queue.record_placed(conn, item.dial_key, status.provider_call_id)
                await queue.resume_following(
                    conn, item.call_id, self.owner, self.config.dial_lease_ms
                )
            log.info("dial %s is live: followed on", item.dial_key, extra=_fields(item.dial_key))
            return
        async with self.db.write() as conn:
            await queue.apply_outcome(conn, status, self.config.retry, final_error=final_error)
        log.info(
            "dial %s reconciled: %s",
            item.dial_key,
            "unknowable" if final_error else status.outcome.value,
            extra=_fields(item.dial_key),
        )


def _fields(dial_key: str) -> dict[str, str]:
    """Structured fields of a log line about one dial (keys of the JSON log object)."""
    return {"dial_key": dial_key, "job_id": dial_key.rsplit(":", 1)[0]}
