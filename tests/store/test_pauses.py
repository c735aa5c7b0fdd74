"""Pause and resume (store/pauses.py) against the queue protocol: a paused batch, or a
batch of a paused workspace, is neither claimed nor dialed, even when the claim raced the
pause; resuming lets it go on where it stopped."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.domain.retry import RetryConfig
from dialbatch.events.apply import apply_outcomes
from dialbatch.store import batches, pauses, queue
from dialbatch.store.engine import Database
from dialbatch.store.tables import outbox
from tests.helpers import WS, assert_consistent, make_batch

LEASE = 30_000


async def claim(db: Database, n: int = 100) -> list[queue.Claimed]:
    async with db.write() as conn:
        got, _ = await queue.claim(conn, WS, "w1", n, LEASE)
    return got


async def dial(db: Database, group: list[queue.Claimed]) -> list[queue.Intent]:
    async with db.write() as conn:
        return await queue.begin_dials(conn, [(c, "simulated") for c in group], "w1", LEASE)


async def events(db: Database) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(sa.select(outbox.c.event).order_by(outbox.c.id))
        return [r[0] for r in rows]


async def test_a_claim_racing_a_pause_never_dials_and_goes_back_to_waiting(db: Database) -> None:
    batch = await make_batch(db, 10)
    claimed = await claim(db)
    assert len(claimed) == 5
    paused = await pauses.pause_batch(db, WS, batch)
    assert paused is not None and paused.changed and paused.batch.paused_at is not None
    assert await dial(db, claimed) == []  # the intent step re-checks: nothing to dial
    # Back to waiting (not failed, not cancelled), slots given back, counters exact.
    assert await assert_consistent(db, batch) == {"waiting": 10}
    assert await claim(db) == []  # and the claim skips the paused batch
    resumed = await pauses.resume_batch(db, WS, batch)
    assert resumed is not None and resumed.changed and resumed.batch.paused_at is None
    again = await claim(db)
    assert len(again) == 5 and len(await dial(db, again)) == 5
    assert await assert_consistent(db, batch) == {"waiting": 5, "dialing": 5}
    batch_events = [e for e in await events(db) if e.startswith("batch.")]
    assert batch_events[-2:] == ["batch.paused", "batch.resumed"]


async def test_pause_and_resume_are_idempotent(db: Database) -> None:
    batch = await make_batch(db, 3)
    first = await pauses.pause_batch(db, WS, batch)
    second = await pauses.pause_batch(db, WS, batch)
    assert first is not None and second is not None
    assert first.changed and not second.changed
    assert second.batch.paused_at == first.batch.paused_at
    assert (await pauses.resume_batch(db, WS, batch)).changed  # type: ignore[union-attr]
    assert not (await pauses.resume_batch(db, WS, batch)).changed  # type: ignore[union-attr]
    assert (await events(db)).count("batch.paused") == 1
    assert (await events(db)).count("batch.resumed") == 1


async def test_a_finished_or_cancelled_batch_cannot_be_paused_or_resumed(db: Database) -> None:
    batch = await make_batch(db, 2)
    await batches.cancel_batch(db, WS, batch)
    for change in (pauses.pause_batch, pauses.resume_batch):
        with pytest.raises(pauses.BatchNotRunning) as caught:
            await change(db, WS, batch)
        assert caught.value.status == "cancelled"


async def test_another_workspaces_batch_is_not_found(db: Database) -> None:
    batch = await make_batch(db, 2)
    assert await pauses.pause_batch(db, "ws_someone_else", batch) is None
    assert await pauses.resume_batch(db, "ws_someone_else", batch) is None


async def test_live_calls_of_a_paused_batch_run_to_their_end(db: Database) -> None:
    batch = await make_batch(db, 6)
    intents = await dial(db, await claim(db))
    assert len(intents) == 5
    await pauses.pause_batch(db, WS, batch)
    for intent in intents:
        await apply_outcomes(
            db,
            [CallEvent(outcome=Outcome.COMPLETED, dial_key=intent.dial_key, duration_s=3.0)],
            RetryConfig(),
        )
    assert await assert_consistent(db, batch) == {"completed": 5, "waiting": 1}
    assert await claim(db) == []
    async with db.read() as conn:
        b = await batches.get_batch(conn, WS, batch)
    assert b is not None and b.status == "processing" and b.completed_at is None


async def test_a_workspace_pause_stops_claims_and_intents_of_every_batch(db: Database) -> None:
    one, two = await make_batch(db, 3), await make_batch(db, 3)
    claimed = await claim(db)
    assert {c.batch_id for c in claimed} == {one, two}
    async with db.write() as conn:
        paused_at, changed = await pauses.set_workspace_pause(conn, WS, paused=True)
    assert paused_at is not None and changed
    assert await dial(db, claimed) == []
    assert await claim(db) == []
    async with db.read() as conn:
        assert await queue.runnable_workspaces(conn) == []
    for batch in (one, two):
        assert await assert_consistent(db, batch) == {"waiting": 3}
    async with db.write() as conn:
        again_at, changed_again = await pauses.set_workspace_pause(conn, WS, paused=True)
    assert (again_at, changed_again) == (paused_at, False)
    async with db.write() as conn:
        assert await pauses.set_workspace_pause(conn, WS, paused=False) == (None, True)
    assert len(await dial(db, await claim(db))) == 5
    assert (await events(db)).count("workspace.paused") == 1
