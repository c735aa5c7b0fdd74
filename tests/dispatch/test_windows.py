"""Calling hours through the whole dispatcher (issue 10, items 1 and 2), with an injected
clock: the provider is asked to dial a number only inside its hours (the batch's window, or
the `us` profile's) in that number's own zone."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable

import pytest

from dialbatch.dispatch.dispatcher import Dispatcher
from dialbatch.domain.clock import FixedClock
from dialbatch.domain.ids import dial_key, new_batch_id
from dialbatch.domain.outcomes import CallEvent
from dialbatch.domain.windows import parse_calling_window
from dialbatch.providers.simulated import SimulatedProvider
from dialbatch.store import batches, gate_settings
from dialbatch.store.engine import Database
from tests.dispatch.test_dispatcher import FAST, Recorder, set_outcomes, wait_done
from tests.domain._time import LOS_ANGELES, NEW_YORK, local
from tests.helpers import AGENT, WS, assert_consistent

NYC, LA = "+12125550123", "+12135550123"
WINDOW = {
    "days": {d: [["08:00", "21:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
}
WED = (2026, 6, 10)


@pytest.fixture
async def clock_and_dispatcher(db: Database) -> AsyncIterator[tuple[FixedClock, Recorder]]:
    clock = FixedClock(local(NEW_YORK, *WED, 7, 59))
    rec = Recorder()
    config = dataclasses.replace(FAST, gate_clock=clock)
    dispatcher = Dispatcher(db, {"simulated": rec}, config)  # type: ignore[dict-item]

    async def sink(event: CallEvent) -> None:
        rec.live.discard(event.dial_key or "")
        await dispatcher.on_event(event)

    rec.sim = SimulatedProvider(sink, time_scale=0.002)
    task = asyncio.create_task(dispatcher.run())
    yield clock, rec
    await dispatcher.stop()
    await asyncio.wait_for(task, 10)
    await rec.aclose()


async def until(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("hours", ["batch window", "us profile"])
async def test_each_recipient_is_dialed_from_8_in_their_own_time(
    db: Database, clock_and_dispatcher: tuple[FixedClock, Recorder], hours: str
) -> None:
    clock, rec = clock_and_dispatcher
    await set_outcomes(db, {"completed": 1})  # no retries: the outcome path reads the DB clock
    if hours == "us profile":
        async with db.write() as conn:
            await gate_settings.update(conn, WS, compliance_profile="us")

    async def rows() -> AsyncIterator[list[tuple[int, str, str]]]:
        yield [(0, NYC, json.dumps({})), (1, LA, json.dumps({}))]

    batch = new_batch_id()
    async with db.write() as conn:
        await batches.insert_batch(
            conn,
            batch_id=batch,
            workspace_id=WS,
            agent_id=AGENT,
            scheduled_at=None,
            callback_policy={"enabled": False, "maxAttempts": 1, "gaps": []},
            source_name=None,
            rows=rows(),
            calling_window=parse_calling_window(WINDOW).to_json()
            if hours != "us profile"
            else None,
        )
    await asyncio.sleep(0.5)  # many polls at 07:59 in New York
    assert rec.dials == []
    clock.set(local(NEW_YORK, *WED, 8, 0))
    await until(lambda: len(rec.dials) == 1)
    assert rec.dials == [dial_key(batch, 0, 1)]  # New York's call
    await asyncio.sleep(0.3)  # 05:00 in Los Angeles: still nobody else
    assert len(rec.dials) == 1
    clock.set(local(LOS_ANGELES, *WED, 8, 0))
    b = await wait_done(db, batch)
    assert b.status == "completed" and len(rec.dials) == 2
    assert await assert_consistent(db, batch) == {"completed": 2}
