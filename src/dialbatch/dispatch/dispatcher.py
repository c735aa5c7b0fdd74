"""The dispatcher loop.

Polling is the correctness path; `wake()` (a new batch, a finished call, a cancel) is only
a latency hint. A claim gives each call its start on the workspace's shared schedule
(store/queue.claim), and the dialer starts it then. Outcomes arrive through `on_event`,
from whichever provider learns them.

Writes go in groups: the intents of every call due at once commit in one transaction, and
placements and outcomes that arrive while one is being written go together in the next
(coalesce.py). A call is never dialed before its intent commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field

from dialbatch import metrics
from dialbatch.coalesce import Coalescer
from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.events.apply import EventApplier
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
    # Most outcomes (or placements) written in one transaction.
    max_write_group: int = 500
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
        self._stop_requested = asyncio.Event()  # the LISTEN task stops at once
        self._dials: set[asyncio.Task[None]] = set()
        # Claimed calls by slot (monotonic time), for the dialer task.
        self._due: list[tuple[float, int, Claimed]] = []
        self._due_order = itertools.count()
        self._due_changed = asyncio.Event()
        self._dialer: asyncio.Task[None] | None = None
        self._placed: Coalescer[tuple[str, str], None] = Coalescer(
            self._record_placed, max_items=self.config.max_write_group, name="placements"
        )
        self._events = EventApplier(db, self.config.retry, max_group=self.config.max_write_group)
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
        self._due_changed.set()
        log.info("dispatcher draining", extra={"worker": self.owner, "in_flight": len(self._dials)})
        self.wake()
        await self._loop_done.wait()
        if self._dialer is not None:
            await asyncio.gather(self._dialer, return_exceptions=True)
        while self._dials:
            await asyncio.gather(*list(self._dials), return_exceptions=True)

    async def tick(self) -> int:
        """One claiming round over every workspace with runnable batches."""
        async with self.db.read() as conn:
            ws_ids = await queue.runnable_workspaces(conn)
        random.shuffle(ws_ids)  # no workspace is always served first
        claimed_total = 0
        for ws in ws_ids:
            # Claim no further ahead than the dialer can go: what this worker holds and
            # has not dialed is work no other worker can take.
            room = min(self.config.max_group, 2 * self.config.max_group - len(self._due))
            if room <= 0:
                break
            async with self.db.write() as conn:
                claimed, pace = await queue.claim(
                    conn, ws, self.owner, room, self.config.claim_lease_ms
                )
            claimed_total += len(claimed)
            self._schedule(claimed, pace)
        return claimed_total

    def _schedule(self, claimed: list[Claimed], pace: queue.Pace) -> None:
        """Queue each claimed call for the dialer at the start the claim gave it."""
        if not claimed:
            return
        now = time.monotonic()
        for i, call in enumerate(claimed):
            heapq.heappush(self._due, (now + pace.delay_s(i), next(self._due_order), call))
        self._due_changed.set()
        if self._dialer is None or self._dialer.done():
            self._dialer = asyncio.create_task(self._dial_due(), name="dialer")

    async def _dial_due(self) -> None:
        """Dial calls as their slots come, every call due at once in one group.

        Groups form naturally: while one group's intents commit, the calls that fall due
        meanwhile wait and go in the next. No call is dialed before its slot.
        """
        while self._due:
            self._due_changed.clear()
            delay = self._due[0][0] - time.monotonic()
            if delay > 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._due_changed.wait(), delay)
                continue
            now = time.monotonic()
            group: list[Claimed] = []
            while (
                self._due
                and len(group) < self.config.max_group
                and (self._stopping or self._due[0][0] <= now)
            ):
                group.append(heapq.heappop(self._due)[2])
            try:
                if self._stopping:
                    await self._release(group)
                else:
                    await self._dial_group(group)
            except Exception:
                # Their leases run out and the sweeper takes over: nothing is lost.
                log.exception("dialing a group of %d calls failed", len(group))

    async def _release(self, group: list[Claimed]) -> None:
        """Shutting down: claims not yet dialed go back to waiting for another worker."""
        async with self.db.write() as conn:
            for call in group:
                await queue.release_claim(conn, call, self.owner)

    async def _dial_group(self, group: list[Claimed]) -> None:
        ready: dict[int, tuple[Agent, Provider]] = {}
        for call in group:
            agent = await self._agent(call.workspace_id, call.agent_id)
            provider = self.providers.get(agent.provider) if agent else None
            if agent is None or provider is None:
                await self._fail_unstarted(call, "agent or its provider is not available")
                continue
            ready[call.call_id] = (agent, provider)
        if not ready:
            return
        async with self.db.write() as conn:
            intents = await queue.begin_dials(
                conn,
                [(c, ready[c.call_id][1].name) for c in group if c.call_id in ready],
                self.owner,
                self.config.dial_lease_ms,
            )
        durable_at = time.monotonic()  # the dial latency metric starts here
        # Calls left out were cancelled, or their lease was lost: never dialed.
        for intent in intents:
            agent, provider = ready[intent.call.call_id]
            task = asyncio.create_task(self._start(intent, agent, provider, durable_at))
            self._dials.add(task)
            task.add_done_callback(self._dials.discard)

    async def _start(
        self, intent: queue.Intent, agent: Agent, provider: Provider, durable_at: float
    ) -> None:
        call = intent.call
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
            await self._quietly(
                self.on_event(
                    CallEvent(outcome=Outcome.FAILED, dial_key=intent.dial_key, detail=str(exc))
                ),
                intent.dial_key,
            )
            return
        except Exception:
            # Unknown whether it rang: the dial lease runs out and it is reconciled.
            log.exception("dial %s failed unexpectedly", intent.dial_key)
            return
        metrics.CALLS_STARTED.labels(provider=provider.name).inc()
        metrics.DIAL_LATENCY.labels(provider=provider.name).observe(time.monotonic() - durable_at)
        await self._quietly(
            self._placed.submit((intent.dial_key, provider_call_id)), intent.dial_key
        )

    async def _quietly(self, write: Awaitable[object], key: str) -> None:
        """A write about a dial that may fail: the sweeper repairs what it leaves undone."""
        try:
            await write
        except Exception:
            log.exception("recording dial %s failed; the sweeper will reconcile it", key)

    async def _record_placed(self, placed: list[tuple[str, str]]) -> list[BaseException | None]:
        async with self.db.write() as conn:
            await queue.record_placed_many(conn, placed)
        return [None] * len(placed)

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
        applied = await self._events.apply(event)
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
