"""Apply provider events. Dispatchers (in-process providers) and the callback route (HTTP
providers) both come here, so an outcome means the same whichever process hears it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dialbatch import metrics
from dialbatch.coalesce import Coalescer
from dialbatch.domain.outcomes import CallEvent
from dialbatch.domain.progress import CallProgress, ProviderEvent
from dialbatch.domain.states import FINAL_CALL_STATES
from dialbatch.store import following, queue
from dialbatch.store.batches import mark_done_if_drained
from dialbatch.store.engine import Database
from dialbatch.store.notify import notify
from dialbatch.store.queue import Applied, RetryConfig

log = logging.getLogger(__name__)


async def apply_event(db: Database, event: ProviderEvent, retry: RetryConfig) -> Applied:
    """Forward-only: a duplicate, late or unknown event returns `changed=False`."""
    if isinstance(event, CallProgress):
        async with db.write() as conn:
            moved = await following.apply_progress(conn, event)
        return Applied(changed=moved)
    return await apply_outcome(db, event, retry)


async def apply_outcome(db: Database, event: CallEvent, retry: RetryConfig) -> Applied:
    return (await apply_outcomes(db, [event], retry))[0]


async def apply_outcomes(
    db: Database, events: Sequence[CallEvent], retry: RetryConfig, *, wake_workers: bool = False
) -> list[Applied]:
    """Several ends of dials in one transaction (the dispatcher's groups).

    `wake_workers`: a process without a dispatcher of its own (an API process receiving
    callbacks) tells the workers that slots were freed, with one NOTIFY per group.
    """
    async with db.write() as conn:
        applied = await queue.apply_outcomes(conn, events, retry)
        if wake_workers and any(a.changed for a in applied):
            await notify(conn, "outcomes")
    metrics.count_outcomes(events, applied)
    finished = {a.batch_id for a in applied if a.changed and a.status in FINAL_CALL_STATES}
    if finished and not db.writers_are_serial:
        # Under READ COMMITTED the last two outcomes of a batch, committing together,
        # can each miss the other's counters; checking again after our commit cannot.
        async with db.write() as conn:
            for batch_id in sorted(b for b in finished if b):
                await mark_done_if_drained(conn, batch_id)
    return applied


class EventApplier:
    """One process's way in for provider events: outcomes that arrive together (concurrent
    callbacks, a burst of in-process endings) are applied in one transaction."""

    def __init__(
        self,
        db: Database,
        retry: RetryConfig,
        *,
        max_group: int = 500,
        wake_workers: bool = False,
    ) -> None:
        self.db = db
        self.retry = retry
        self.wake_workers = wake_workers
        self._outcomes: Coalescer[CallEvent, Applied] = Coalescer(
            self._apply_group, max_items=max_group, name="outcomes"
        )

    async def apply(self, event: ProviderEvent) -> Applied:
        if isinstance(event, CallEvent):
            return await self._outcomes.submit(event)
        return await apply_event(self.db, event, self.retry)

    async def _apply_group(self, events: list[CallEvent]) -> list[Applied | BaseException]:
        try:
            return list(
                await apply_outcomes(self.db, events, self.retry, wake_workers=self.wake_workers)
            )
        except Exception:
            if len(events) == 1:
                raise
            # A deadlock with another process, say: apply them one by one, each on its own.
            log.warning("applying %d outcomes together failed; one by one now", len(events))
        results: list[Applied | BaseException] = []
        for event in events:
            try:
                (one,) = await apply_outcomes(
                    self.db, [event], self.retry, wake_workers=self.wake_workers
                )
                results.append(one)
            except Exception as exc:
                results.append(exc)
        return results
