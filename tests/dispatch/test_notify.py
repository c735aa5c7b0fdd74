"""On PostgreSQL an idle worker wakes when another process creates a batch, instead of
waiting out its poll interval."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from dialbatch.dispatch.dispatcher import Dispatcher
from dialbatch.providers.base import Live
from dialbatch.settings import to_async_url
from dialbatch.store.engine import Database
from tests.dispatch.test_dispatcher import FAST, ScriptedProvider
from tests.helpers import make_batch


async def test_a_new_batch_wakes_an_idle_worker(db: Database, database_url: str) -> None:
    if db.is_sqlite:
        pytest.skip("one process on SQLite: the in-process wake covers it")
    provider = ScriptedProvider(Live("p"))
    slow_poll = dataclasses.replace(FAST, poll_interval_s=30.0, sweep_interval_s=30.0)
    worker = Dispatcher(db, {"simulated": provider}, slow_poll)  # type: ignore[dict-item]
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(1.0)  # past its first rounds: now asleep for ~30 s
    other_process = Database(to_async_url(database_url))
    try:
        await make_batch(other_process, 1)
    finally:
        await other_process.dispose()
    for _ in range(100):  # up to 5 s, far below the 30 s poll
        if provider.started:
            break
        await asyncio.sleep(0.05)
    await worker.stop()
    await asyncio.wait_for(task, 10)
    assert len(provider.started) == 1
