"""The dialing loop: claim within the limits, wait for each call's start, write the
intents, dial, record the placements.

A claim gives each call its start on the workspace's shared schedule (store/queue.claim),
and the dialer starts it then. Writes go in groups: the intents of every call due at once
commit in one transaction, and placements that arrive while one is being written go
together in the next (coalesce.py). A call is never dialed before its intent commits.
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
from collections.abc import Awaitable, Callable

from dialbatch import metrics
from dialbatch.coalesce import Coalescer
from dialbatch.dispatch.agents import AgentCache
from dialbatch.dispatch.config import DispatchConfig
from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.providers.base import (
    DialMaybePlaced,
    DialRequest,
    Provider,
    ProviderError,
    ProviderEvent,
)
from dialbatch.store import caller_dials, queue
from dialbatch.store.engine import Database
from dialbatch.store.queue import Claimed
from dialbatch.store.workspaces import Agent

log = logging.getLogger(__name__)


class Dialer:
    """One process's dialing: what it has claimed, and the dials it is starting."""

    def __init__(
        self,
        db: Database,
        providers: dict[str, Provider],
        config: DispatchConfig,
        owner: str,
        agents: AgentCache,
        on_event: Callable[[ProviderEvent], Awaitable[None]],
    ) -> None:
        self.db = db
        self.providers = providers
        self.config = config
        self.owner = owner
        self._agents = agents
        self._on_event = on_event
        self._stopping = False
        self._dials: set[asyncio.Task[None]] = set()
        # Dial keys whose start is under way: asked of the provider, or its answer not yet
        # recorded. Such a dial is not quiet, however long the provider takes to answer.
        self._placing: set[str] = set()
        # Claimed calls by slot (monotonic time), for the dialer task.
        self._due: list[tuple[float, int, Claimed]] = []
        self._due_order = itertools.count()
        self._due_changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # (dial key, provider call id, whether the caller numbers' ledger awaits the answer)
        self._placed: Coalescer[tuple[str, str, bool], None] = Coalescer(
            self._record_placed, max_items=config.max_write_group, name="placements"
        )
        # Dial keys the provider refused, for the caller numbers' ledger.
        self._answered: Coalescer[str, None] = Coalescer(
            self._record_answered, max_items=config.max_write_group, name="answered"
        )

    @property
    def starting(self) -> int:
        """Dials whose intent is written and whose provider has not answered yet."""
        return len(self._dials)

    def placing(self, dial_key: str) -> bool:
        """Whether this process is still starting `dial_key` (its provider has not answered,
        or the answer is not recorded yet). The reconciler leaves such a dial alone: with
        no call id recorded it could only call it unknowable, and fail a call that rings."""
        return dial_key in self._placing

    async def claim(self) -> int:
        """One claiming round over every workspace with runnable batches."""
        async with self.db.read() as conn:
            ws_ids = await queue.runnable_workspaces(conn)
        random.shuffle(ws_ids)  # no workspace is always served first
        claimed_total = 0
        for ws in ws_ids:
            # Claim no further ahead than the dialer can go: what this worker holds and
            # has not dialed is work no other worker can take.
            room = min(self.config.max_group, 2 * self.config.max_group - len(self._due))
            if room <= 0 or self._stopping:
                break
            async with self.db.write() as conn:
                claimed, pace = await queue.claim(
                    conn,
                    ws,
                    self.owner,
                    room,
                    self.config.claim_lease_ms,
                    clock=self.config.gate_clock,
                    on_hold=metrics.count_gate_hold,
                )
            claimed_total += len(claimed)
            self._schedule(claimed, pace)
        return claimed_total

    def halt(self) -> None:
        """Claim nothing more, and hand back what is claimed but not dialed (at once)."""
        self._stopping = True
        self._due_changed.set()

    async def stop(self) -> None:
        """Dial nothing more: claims not yet dialed go back to waiting for another worker
        at once; dials whose intent is written are placed (or refused) and recorded."""
        self.halt()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._due:  # claimed by a round that ended after the dialer task did
            self._task = asyncio.create_task(self._dial_due(), name="dialer")
            await asyncio.gather(self._task, return_exceptions=True)
        while self._dials:
            await asyncio.gather(*list(self._dials), return_exceptions=True)

    def _schedule(self, claimed: list[Claimed], pace: queue.Pace) -> None:
        """Queue each claimed call for the dialer at the start the claim gave it."""
        if not claimed:
            return
        now = time.monotonic()
        for i, call in enumerate(claimed):
            heapq.heappush(self._due, (now + pace.delay_s(i), next(self._due_order), call))
        self._due_changed.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._dial_due(), name="dialer")

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
            agent = await self._agents.get(call.workspace_id, call.agent_id)
            provider = self.providers.get(agent.provider) if agent else None
            if agent is None or provider is None:
                # Left claimed: the lease expires and it goes back to waiting, so that a
                # fixed configuration picks it up again. Nothing was dialed.
                log.error("cannot dial %s: agent or its provider is not available", call.job_id)
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
                clock=self.config.gate_clock,
                on_hold=metrics.count_gate_hold,
                pools={call_id: agent.pool for call_id, (agent, _) in ready.items()},
            )
        durable_at = time.monotonic()  # the dial latency metric starts here
        # Calls left out were cancelled, held back by the gate (calling window), or their
        # lease was lost: never dialed.
        for intent in intents:
            agent, provider = ready[intent.call.call_id]
            self._placing.add(intent.dial_key)
            task = asyncio.create_task(self._start(intent, agent, provider, durable_at))
            self._dials.add(task)
            task.add_done_callback(self._dials.discard)

    async def _start(
        self, intent: queue.Intent, agent: Agent, provider: Provider, durable_at: float
    ) -> None:
        try:
            await self._place(intent, agent, provider, durable_at)
        finally:
            self._placing.discard(intent.dial_key)

    async def _place(
        self, intent: queue.Intent, agent: Agent, provider: Provider, durable_at: float
    ) -> None:
        call = intent.call
        request = DialRequest(
            dial_key=intent.dial_key,
            job_id=call.job_id,
            to=call.phone_number,
            from_=intent.from_number,
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
                extra={**log_fields(intent.dial_key), "provider": provider.name},
            )
            return
        except ProviderError as exc:
            log.warning(
                "provider refused dial %s: %s",
                intent.dial_key,
                exc,
                extra={**log_fields(intent.dial_key), "provider": provider.name},
            )
            if intent.in_caller_ledger:
                # The provider answered: the request is no longer out.
                await self._quietly(self._answered.submit(intent.dial_key), intent.dial_key)
            await self._quietly(
                self._on_event(
                    CallEvent(
                        outcome=Outcome.FAILED,
                        dial_key=intent.dial_key,
                        detail=str(exc),
                        refused=True,
                    )
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
            self._placed.submit((intent.dial_key, provider_call_id, intent.in_caller_ledger)),
            intent.dial_key,
        )

    async def _quietly(self, write: Awaitable[object], key: str) -> None:
        """A write about a dial that may fail: the sweeper repairs what it leaves undone."""
        try:
            await write
        except Exception:
            log.exception("recording dial %s failed; the sweeper will reconcile it", key)

    async def _record_placed(
        self, placed: list[tuple[str, str, bool]]
    ) -> list[BaseException | None]:
        async with self.db.write() as conn:
            await queue.record_placed_many(conn, [(key, pcid) for key, pcid, _ in placed])
            await caller_dials.answered(conn, [key for key, _, ledger in placed if ledger])
        return [None] * len(placed)

    async def _record_answered(self, keys: list[str]) -> list[BaseException | None]:
        async with self.db.write() as conn:
            await caller_dials.answered(conn, keys)
        return [None] * len(keys)


def log_fields(dial_key: str) -> dict[str, str]:
    """Structured fields of a log line about one dial (keys of the JSON log object)."""
    return {"dial_key": dial_key, "job_id": dial_key.rsplit(":", 1)[0]}
