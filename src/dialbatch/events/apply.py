"""Apply provider events: the one way in for the end of a dial.

Dispatchers (in-process providers), the callback route (HTTP providers) and the reconciler
all come through :func:`apply_outcomes`, so an outcome means the same whichever process
hears it: the same decision (domain/next_state.py), the same writes (store/outcomes.py), the
same metrics and the same check that closes a batch after the commit. :class:`EventApplier`
is the front that groups outcomes arriving together into one call of it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dialbatch import metrics
from dialbatch.coalesce import Coalescer
from dialbatch.domain.outcomes import CallEvent
from dialbatch.domain.progress import CallProgress, ProviderEvent
from dialbatch.domain.retry import RetryConfig
from dialbatch.domain.states import FINAL_CALL_STATES
from dialbatch.store import following
from dialbatch.store.batches import mark_done_if_drained
from dialbatch.store.engine import Database
from dialbatch.store.notify import notify
from dialbatch.store.outcomes import Applied, write_outcomes

log = logging.getLogger(__name__)


async def apply_outcomes(
    db: Database,
    events: Sequence[CallEvent],
    retry: RetryConfig,
    *,
    final_error: str | None = None,
    wake_workers: bool = False,
) -> list[Applied]:
    """Apply the ends of one or more dials in one transaction; one `Applied` per event.

    Forward-only: a duplicate, late or unknown event returns `changed=False`.
    `final_error` forces a final failure (an attempt whose fate cannot be learned).
    `wake_workers`: a process without a dispatcher of its own (an API process receiving
    callbacks) tells the workers that slots were freed, with one NOTIFY per group.
    """
    async with db.write() as conn:
        applied = await write_outcomes(conn, events, retry, final_error=final_error)
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
        """Forward-only: a duplicate, late or unknown event returns `changed=False`."""
        if isinstance(event, CallEvent):
            return await self._outcomes.submit(event)
        return await self._apply_progress(event)

    async def _apply_progress(self, event: CallProgress) -> Applied:
        async with self.db.write() as conn:
            moved = await following.apply_progress(conn, event)
        return Applied(changed=moved)

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
