"""Applying provider events: an API process that applies outcomes wakes the workers of
other processes at once (one NOTIFY per group), instead of leaving them to their poll."""

from __future__ import annotations

import asyncio

from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.domain.retry import RetryConfig
from dialbatch.events.apply import EventApplier
from dialbatch.store import notify
from dialbatch.store.engine import Database
from tests.helpers import make_dialed_batch

RETRY = RetryConfig()


async def test_outcomes_from_callbacks_wake_other_processes_workers(db: Database) -> None:
    _, intents = await make_dialed_batch(db, 3)
    woken = asyncio.Event()
    stop = asyncio.Event()
    listener = asyncio.create_task(notify.listen(db.url, woken.set, stop))
    try:
        if not db.is_sqlite:
            await asyncio.wait_for(woken.wait(), 10)  # LISTEN is up: it wakes once on connecting
            woken.clear()
        applier = EventApplier(db, RETRY, wake_workers=not db.is_sqlite)
        results = await asyncio.gather(
            *(
                applier.apply(CallEvent(outcome=Outcome.COMPLETED, dial_key=i.dial_key))
                for i in intents
            )
        )
        assert all(r.changed for r in results)
        if db.is_sqlite:
            return  # one process: the dispatcher is woken in process (callbacks route)
        await asyncio.wait_for(woken.wait(), 5)
        woken.clear()
        # A duplicate changes nothing and wakes nobody.
        again = await applier.apply(
            CallEvent(outcome=Outcome.COMPLETED, dial_key=intents[0].dial_key)
        )
        assert not again.changed
        await asyncio.sleep(0.3)
        assert not woken.is_set()
    finally:
        stop.set()
        await listener
