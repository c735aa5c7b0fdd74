"""The reconciler: recovery sweeps, and the provider's word on dials nobody hears about.

Every sweep keeps this worker's dial leases, sends expired claims back to waiting, takes
over dials whose worker stopped following them (their lease expired) and asks the
provider how each went; and asks about dials this worker follows that have gone quiet
(a lost callback). A dial is re-dialed only when the provider proves it never had it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from dialbatch.dispatch.agents import AgentCache
from dialbatch.dispatch.config import DispatchConfig
from dialbatch.dispatch.dialing import log_fields
from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.events.apply import apply_outcomes
from dialbatch.providers.base import (
    DialLookup,
    DialNotFound,
    Live,
    OutcomeUnknowable,
    Provider,
    ProviderError,
    ProviderEvent,
)
from dialbatch.store import caller_dials, following, number_dials, queue
from dialbatch.store.engine import Database
from dialbatch.store.queue import Uncertain

log = logging.getLogger(__name__)

Lost = Uncertain | following.QuietDial  # a dial to ask the provider about

PRUNE_EVERY_S = 600.0  # how often a worker forgets dials no frequency cap counts any more
UNKNOWABLE_ERROR = (
    "Call outcome unknown: the worker following this call stopped and the provider could "
    "not confirm what happened; not re-dialed to avoid calling twice"
)


class Reconciler:
    def __init__(
        self,
        db: Database,
        providers: dict[str, Provider],
        config: DispatchConfig,
        owner: str,
        agents: AgentCache,
        on_event: Callable[[ProviderEvent], Awaitable[None]],
        placing: Callable[[str], bool] = lambda dial_key: False,
    ) -> None:
        self.db = db
        self._placing = placing
        self.providers = providers
        self.config = config
        self.owner = owner
        self._agents = agents
        self._on_event = on_event
        self._next_prune = 0.0  # the first sweep prunes the dial ledger

    async def sweep(self) -> None:
        """Recovery: expired claims back to waiting, abandoned dials reconciled, leases kept."""
        # One transaction each: every one starts with its call rows, in the lock order.
        async with self.db.write() as conn:
            await queue.renew_dial_leases(conn, self.owner, self.config.dial_lease_ms)
        async with self.db.write() as conn:
            released = await queue.expire_claims(conn)
        async with self.db.write() as conn:
            uncertain = await queue.expire_dials(conn, self.owner, self.config.dial_lease_ms)
        async with self.db.write() as conn:
            await queue.close_drained_batches(conn)
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY_S
            async with self.db.write() as conn:
                await number_dials.prune(conn)
                await caller_dials.prune(conn)
        async with self.db.read() as conn:
            quiet = await following.quiet_dials(conn, self.owner, self.config.reconcile_quiet_ms)
        if released:
            log.info("released %d expired claims", released, extra={"released": released})
        for item in uncertain:
            log.warning(
                "dial %s lost its worker %s; reconciling with the provider",
                item.dial_key,
                item.lost_worker,
                extra={
                    **log_fields(item.dial_key),
                    "worker": item.lost_worker,
                    "reconciler": self.owner,
                },
            )
            await self._reconcile(item)
        for dial in quiet:
            # Quiet is counted from the intent; a provider slow to accept the dial is
            # not a lost callback (and its call id is not recorded yet).
            if not self._placing(dial.dial_key):
                await self._check_quiet(dial)

    async def _ask(self, dial: Lost) -> CallEvent | Live | None:
        """The provider's word on a dial: by its call id or dial key (fetch_status), and
        if that cannot say, by whatever else the provider can be searched by (find_dial).
        None when it cannot be asked right now."""
        agent = await self._agents.get(dial.workspace_id, dial.agent_id)
        provider = self.providers.get(agent.provider) if agent else None
        if agent is None or provider is None:
            raise OutcomeUnknowable("provider not configured in this process")
        try:
            try:
                return await provider.fetch_status(dial.dial_key, dial.provider_call_id)
            except OutcomeUnknowable as exc:
                find = getattr(provider, "find_dial", None)  # test doubles may lack it
                if find is None:
                    raise
                log.info(
                    "looking dial %s up by what the provider can search: %s", dial.dial_key, exc
                )
                lookup = DialLookup(
                    dial_key=dial.dial_key,
                    to=dial.phone_number,
                    # The number the dial showed; an older dial without one: the first.
                    from_=dial.from_number
                    or (agent.from_numbers[0] if agent.from_numbers else None),
                    started_at_ms=dial.started_at,
                    agent_config=agent.provider_config,
                    provider_call_id=dial.provider_call_id,
                )
                found: CallEvent | Live = await find(lookup)
                return found
        except DialNotFound:
            # Never placed: retried by the attempt policy, as a connection failure.
            return CallEvent(
                outcome=Outcome.FAILED,
                dial_key=dial.dial_key,
                detail="Call failed - the provider never received the dial",
                refused=True,
            )

    async def _check_quiet(self, dial: following.QuietDial) -> None:
        """A dial we follow went quiet (a lost callback?): the provider says how it ended."""
        try:
            status = await self._ask(dial)
        except ProviderError as exc:
            # We still hold the lease; ask again after another quiet period.
            log.warning("dial %s is quiet and the provider is unreachable: %s", dial.dial_key, exc)
            status = None
        except OutcomeUnknowable as exc:
            # The provider has forgotten it (or never knew): it will never say more.
            log.warning("outcome of quiet dial %s cannot be learned: %s", dial.dial_key, exc)
            await apply_outcomes(
                self.db,
                [CallEvent(outcome=Outcome.FAILED, dial_key=dial.dial_key)],
                self.config.retry,
                final_error=UNKNOWABLE_ERROR,
            )
            return
        if isinstance(status, CallEvent):
            log.info("dial %s ended while quiet: %s", dial.dial_key, status.outcome.value)
            await self._on_event(status)
            return
        async with self.db.write() as conn:
            if isinstance(status, Live):  # its id may never have been recorded
                await queue.record_placed(conn, dial.dial_key, status.provider_call_id)
            await following.mark_heard(conn, dial.dial_key)

    async def _reconcile(self, item: Uncertain) -> None:
        final_error: str | None = None
        try:
            status = await self._ask(item)
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
            log.info("dial %s is live: followed on", item.dial_key, extra=log_fields(item.dial_key))
            return
        await apply_outcomes(self.db, [status], self.config.retry, final_error=final_error)
        log.info(
            "dial %s reconciled: %s",
            item.dial_key,
            "unknowable" if final_error else status.outcome.value,
            extra=log_fields(item.dial_key),
        )
