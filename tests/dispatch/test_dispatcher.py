"""The dispatcher end to end on the simulated provider: limits hold, everything finishes,
counters stay exact, and uncertain dials are reconciled, never re-dialed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from dialbatch.dispatch.dispatcher import UNKNOWABLE_ERROR, DispatchConfig, Dispatcher
from dialbatch.domain.failure_stop import FailureStop
from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.domain.retry import RetryConfig
from dialbatch.providers.base import (
    DialMaybePlaced,
    DialNotFound,
    DialRequest,
    Live,
    OutcomeUnknowable,
    ProviderError,
)
from dialbatch.providers.simulated import SimulatedProvider
from dialbatch.store import batches, failure_stop, workspaces
from dialbatch.store.engine import Database
from dialbatch.store.tables import agents, attempts, calls
from tests.helpers import AGENT, WS, assert_consistent, make_batch

FAST = DispatchConfig(
    poll_interval_s=0.01,
    sweep_interval_s=0.05,
    claim_lease_ms=5_000,
    dial_lease_ms=5_000,
    retry=RetryConfig(connection_attempts=3, backoff_base_ms=5),
)


class Recorder:
    """Wraps a provider and records every dial and the peak of simultaneously live calls."""

    def __init__(self) -> None:
        self.sim: SimulatedProvider | None = None
        self.name = "simulated"
        self.live: set[str] = set()
        self.peak = 0
        self.dials: list[str] = []

    async def start_call(self, request: DialRequest) -> str:
        assert self.sim is not None
        self.dials.append(request.dial_key)
        self.live.add(request.dial_key)
        self.peak = max(self.peak, len(self.live))
        return await self.sim.start_call(request)

    async def hangup(self, provider_call_id: str) -> None:
        assert self.sim is not None
        await self.sim.hangup(provider_call_id)

    async def fetch_status(self, dial_key: str, provider_call_id: str | None) -> Any:
        assert self.sim is not None
        return await self.sim.fetch_status(dial_key, provider_call_id)

    async def aclose(self) -> None:
        assert self.sim is not None
        await self.sim.aclose()


@pytest.fixture
async def running(db: Database) -> AsyncIterator[tuple[Dispatcher, Recorder]]:
    rec = Recorder()
    dispatcher = Dispatcher(db, {"simulated": rec}, FAST)  # type: ignore[dict-item]

    async def sink(event: CallEvent) -> None:
        rec.live.discard(event.dial_key or "")
        await dispatcher.on_event(event)

    rec.sim = SimulatedProvider(sink, time_scale=0.002)
    task = asyncio.create_task(dispatcher.run())
    yield dispatcher, rec
    await dispatcher.stop()
    await asyncio.wait_for(task, 10)  # the loop ends its round by itself; never cancel mid-txn
    await rec.aclose()


async def set_outcomes(db: Database, outcomes: dict[str, float]) -> None:
    async with db.write() as conn:
        await conn.execute(
            agents.update()
            .where(agents.c.id == AGENT)
            .values(provider_config={"outcomes": outcomes})
        )


async def wait_done(db: Database, batch_id: str, timeout: float = 30) -> batches.Batch:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with db.read() as conn:
            b = await batches.get_batch(conn, WS, batch_id)
        assert b is not None
        if b.completed_at is not None:
            return b
        assert asyncio.get_running_loop().time() < deadline, "batch did not finish in time"
        await asyncio.sleep(0.05)


async def dials_per_call(db: Database) -> dict[int, int]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(attempts.c.call_id, sa.func.count()).group_by(attempts.c.call_id)
        )
        return {r[0]: r[1] for r in rows}


async def test_a_batch_runs_to_completion_within_the_cap(
    db: Database, running: tuple[Dispatcher, Recorder]
) -> None:
    _, rec = running
    async with db.write() as conn:
        await workspaces.set_limits(conn, WS, max_concurrent_calls=7, calls_per_second=2000)
    batch = await make_batch(db, 300)
    b = await wait_done(db, batch)
    assert b.status == "completed"
    real = await assert_consistent(db, batch)
    assert sum(real.values()) == 300 and set(real) <= {"completed", "failed"}
    assert 1 <= rec.peak <= 7
    # every finished call carries its times; completed ones a duration, failed ones an error
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(calls))).all()
    for r in rows:
        assert r.started_at is not None and r.ended_at is not None
        assert (r.status == "completed" and r.duration_s is not None) or r.error


async def test_smart_callbacks_dial_exactly_max_attempts(
    db: Database, running: tuple[Dispatcher, Recorder]
) -> None:
    await set_outcomes(db, {"busy": 1})
    policy = {"enabled": True, "maxAttempts": 3, "gaps": [{"days": 0, "hours": 0}]}
    batch = await make_batch(db, 20, policy=policy)
    await wait_done(db, batch)
    assert set((await dials_per_call(db)).values()) == {3}
    async with db.read() as conn:
        errors = {r[0] for r in await conn.execute(sa.select(calls.c.error))}
    assert errors == {"Number busy (SIP 486 Busy Here) - unable to connect after 3 attempts"}
    await assert_consistent(db, batch)


async def test_connection_failures_are_retried_with_the_attempt_policy(
    db: Database, running: tuple[Dispatcher, Recorder]
) -> None:
    await set_outcomes(db, {"failed": 1})
    async with db.write() as conn:  # every dial fails: the automatic stop would pause it
        await failure_stop.set_workspace_rule(conn, WS, FailureStop(enabled=False))
    batch = await make_batch(db, 10)
    await wait_done(db, batch)
    assert set((await dials_per_call(db)).values()) == {3}
    await assert_consistent(db, batch)


async def test_cancel_mid_run_stops_new_dials(
    db: Database, running: tuple[Dispatcher, Recorder]
) -> None:
    _, rec = running
    async with db.write() as conn:
        await workspaces.set_limits(conn, WS, max_concurrent_calls=3, calls_per_second=20)
    batch = await make_batch(db, 200)
    while len(rec.dials) < 5:
        await asyncio.sleep(0.01)
    await batches.cancel_batch(db, WS, batch)
    dialed_at_cancel = len(rec.dials)
    await wait_done(db, batch)
    assert len(rec.dials) == dialed_at_cancel  # nothing dialed after the cancel returned
    real = await assert_consistent(db, batch)
    assert real["cancelled"] >= 150


class ScriptedProvider:
    """A provider whose fetch_status answer the test chooses."""

    name = "simulated"

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.started: list[str] = []

    async def start_call(self, request: DialRequest) -> str:
        self.started.append(request.dial_key)
        return f"p-{request.dial_key}"

    async def hangup(self, provider_call_id: str) -> None:
        return None

    async def fetch_status(self, dial_key: str, provider_call_id: str | None) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        if isinstance(self.answer, CallEvent):
            return CallEvent(**{**self.answer.__dict__, "dial_key": dial_key})
        return self.answer

    async def aclose(self) -> None:
        return None


async def _abandon_one_dial(db: Database, provider: ScriptedProvider) -> tuple[Dispatcher, str]:
    """Dial one call with a worker that then 'dies' (its lease expires)."""
    batch = await make_batch(db, 1)
    worker = Dispatcher(db, {"simulated": provider}, FAST, owner="dead-worker")  # type: ignore[dict-item]
    await worker.tick()
    while not provider.started:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    async with db.write() as conn:
        await conn.execute(calls.update().values(lease_expires=0))
    await worker.stop()
    sweeper = Dispatcher(db, {"simulated": provider}, FAST, owner="sweeper")  # type: ignore[dict-item]
    await sweeper.sweep()
    return sweeper, batch


async def _call(db: Database) -> Any:
    async with db.read() as conn:
        return (await conn.execute(sa.select(calls))).one()


async def test_reconcile_follows_a_live_call(db: Database) -> None:
    provider = ScriptedProvider(Live("p-1"))
    _, batch = await _abandon_one_dial(db, provider)
    row = await _call(db)
    assert (row.status, row.lease_owner) == ("dialing", "sweeper")
    assert len(provider.started) == 1
    await assert_consistent(db, batch)


def _ended(outcome: str, state: str) -> float:
    """dialbatch_calls_ended_total of this process, for one outcome and state."""
    labels = {"provider": "simulated", "outcome": outcome, "state": state}
    return REGISTRY.get_sample_value("dialbatch_calls_ended_total", labels) or 0.0


async def test_reconcile_applies_the_real_outcome(db: Database) -> None:
    before = _ended("completed", "completed")
    provider = ScriptedProvider(CallEvent(outcome=Outcome.COMPLETED, duration_s=41.0))
    _, batch = await _abandon_one_dial(db, provider)
    row = await _call(db)
    assert (row.status, row.duration_s) == ("completed", 41.0)
    assert _ended("completed", "completed") == before + 1  # counted in the metrics too
    assert len(provider.started) == 1
    await assert_consistent(db, batch)


async def test_reconcile_retries_a_dial_the_provider_never_received(db: Database) -> None:
    provider = ScriptedProvider(DialNotFound())
    _, batch = await _abandon_one_dial(db, provider)
    row = await _call(db)
    assert row.status == "waiting"  # provably never dialed: retried by the attempt policy
    await assert_consistent(db, batch)


async def test_reconcile_fails_an_unknowable_dial_without_redialing(db: Database) -> None:
    provider = ScriptedProvider(OutcomeUnknowable("carrier lost its records"))
    sweeper, batch = await _abandon_one_dial(db, provider)
    row = await _call(db)
    assert (row.status, row.error) == ("failed", UNKNOWABLE_ERROR)
    await sweeper.tick()
    await sweeper.stop()
    assert len(provider.started) == 1
    await assert_consistent(db, batch)


async def test_stop_hands_undialed_claims_back_at_once(db: Database) -> None:
    async with db.write() as conn:
        await workspaces.set_limits(conn, WS, max_concurrent_calls=5, calls_per_second=2)
    batch = await make_batch(db, 5)
    provider = ScriptedProvider(Live("p"))
    worker = Dispatcher(db, {"simulated": provider}, FAST, owner="leaving")  # type: ignore[dict-item]
    task = asyncio.create_task(worker.run())
    while not provider.started:
        await asyncio.sleep(0.01)
    await worker.stop()
    await asyncio.wait_for(task, 5)
    real = await assert_consistent(db, batch)
    # paced at 2/s, only the first dial had started; the rest were never dialed
    assert real.get("claimed", 0) == 0
    assert real["waiting"] == 5 - len(provider.started)


async def test_reconcile_leaves_a_dial_unknown_while_the_provider_is_unreachable(
    db: Database,
) -> None:
    provider = ScriptedProvider(ProviderError("connection refused"))
    sweeper, batch = await _abandon_one_dial(db, provider)
    row = await _call(db)
    # asked again when this lease runs out; never failed or re-dialed for a network blip
    assert (row.status, row.lease_owner) == ("unknown", "sweeper")
    await sweeper.tick()
    assert len(provider.started) == 1
    await assert_consistent(db, batch)


async def _quiet_dial(db: Database, provider: ScriptedProvider) -> Dispatcher:
    """One dial placed by a live worker that then hears nothing about it."""
    await make_batch(db, 1)
    quiet = DispatchConfig(**{**FAST.__dict__, "reconcile_quiet_ms": 0})
    worker = Dispatcher(db, {"simulated": provider}, quiet, owner="follower")  # type: ignore[dict-item]
    await worker.tick()
    while not provider.started:
        await asyncio.sleep(0.01)
    while (await _call(db)).provider_call_id is None:
        await asyncio.sleep(0.01)
    return worker


async def test_a_quiet_dial_gets_its_outcome_from_the_provider(db: Database) -> None:
    provider = ScriptedProvider(CallEvent(outcome=Outcome.COMPLETED, duration_s=12.0))
    worker = await _quiet_dial(db, provider)
    await asyncio.sleep(0.01)
    await worker.sweep()  # the final callback never came: the provider is asked
    await worker.stop()
    row = await _call(db)
    assert (row.status, row.duration_s) == ("completed", 12.0)
    assert len(provider.started) == 1


async def test_a_quiet_live_dial_stays_followed_and_is_asked_again_later(db: Database) -> None:
    provider = ScriptedProvider(Live("p"))
    worker = await _quiet_dial(db, provider)
    await asyncio.sleep(0.01)
    await worker.sweep()
    await worker.stop()
    row = await _call(db)
    assert (row.status, row.lease_owner) == ("dialing", "follower")
    async with db.read() as conn:
        heard = (await conn.execute(sa.select(attempts.c.heard_at))).scalar_one()
    assert heard is not None  # quiet again only from now on


async def test_a_quiet_dial_the_provider_forgot_fails_without_redialing(db: Database) -> None:
    provider = ScriptedProvider(OutcomeUnknowable("call records expired"))
    worker = await _quiet_dial(db, provider)
    await asyncio.sleep(0.01)
    await worker.sweep()
    await worker.tick()
    await worker.stop()
    row = await _call(db)
    assert (row.status, row.error) == ("failed", UNKNOWABLE_ERROR)
    assert len(provider.started) == 1


class TimesOutOnDial(ScriptedProvider):
    """The request left, the answer never came: the person may be ringing."""

    async def start_call(self, request: DialRequest) -> str:
        self.started.append(request.dial_key)
        raise DialMaybePlaced("read timeout")


async def test_a_dial_that_may_have_been_placed_is_looked_up_not_retried(db: Database) -> None:
    provider = TimesOutOnDial(CallEvent(outcome=Outcome.BUSY, provider_code="486"))
    batch = await make_batch(db, 1)
    quiet = DispatchConfig(**{**FAST.__dict__, "reconcile_quiet_ms": 0})
    worker = Dispatcher(db, {"simulated": provider}, quiet, owner="w")  # type: ignore[dict-item]
    await worker.tick()
    while not provider.started:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert (await _call(db)).status == "dialing"  # not failed, not back to waiting
    await worker.sweep()  # the provider says how it went
    await worker.tick()
    await worker.stop()
    row = await _call(db)
    assert (row.status, row.error) == ("failed", "Number busy")
    assert len(provider.started) == 1
    await assert_consistent(db, batch)


class SlowToAccept(ScriptedProvider):
    """The provider takes its time answering the dial request (a loaded API)."""

    def __init__(self, answer: Any) -> None:
        super().__init__(answer)
        self.accept = asyncio.Event()
        self.asked: list[str] = []

    async def start_call(self, request: DialRequest) -> str:
        self.started.append(request.dial_key)
        await self.accept.wait()
        return f"p-{request.dial_key}"

    async def fetch_status(self, dial_key: str, provider_call_id: str | None) -> Any:
        self.asked.append(dial_key)
        return await super().fetch_status(dial_key, provider_call_id)


async def test_a_dial_the_provider_is_slow_to_accept_is_not_called_quiet(db: Database) -> None:
    # With no call id recorded yet, the provider could only call it unknowable: the
    # reconciler must wait for the dial request's answer, not fail a call that rings.
    provider = SlowToAccept(OutcomeUnknowable("no call id to look up"))
    batch = await make_batch(db, 1)
    quiet = DispatchConfig(**{**FAST.__dict__, "reconcile_quiet_ms": 0})
    worker = Dispatcher(db, {"simulated": provider}, quiet, owner="w")  # type: ignore[dict-item]
    await worker.tick()
    while not provider.started:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    await worker.sweep()
    assert provider.asked == []
    assert (await _call(db)).status == "dialing"
    provider.accept.set()
    while (await _call(db)).provider_call_id is None:
        await asyncio.sleep(0.01)
    provider.answer = CallEvent(outcome=Outcome.COMPLETED, duration_s=3.0)
    await worker.sweep()  # now placed and quiet: asked, and it answered
    await worker.stop()
    row = await _call(db)
    assert (row.status, provider.asked) == ("completed", [provider.started[0]])
    await assert_consistent(db, batch)
