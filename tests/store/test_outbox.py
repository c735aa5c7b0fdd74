"""The outbox: written with the change it reports, and readable "after id N" without ever
missing a row that commits later (ids commit in order)."""

from __future__ import annotations

import asyncio
import random

import pytest
import sqlalchemy as sa

from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.domain.retry import RetryConfig
from dialbatch.events.apply import apply_outcomes
from dialbatch.store import batches, outbox, queue
from dialbatch.store.engine import Database
from dialbatch.store.tables import outbox as outbox_table
from tests.helpers import WS, make_batch, make_dialed_batch


async def _all_ids(db: Database) -> list[int]:
    async with db.read() as conn:
        return list((await conn.execute(sa.select(outbox_table.c.id).order_by("id"))).scalars())


async def test_events_are_written_at_commit_and_not_on_rollback(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await outbox.emit(conn, WS, "call.started", {"batchId": "batch_x", "jobId": "j"})
            raise RuntimeError("the change fails")
    async with db.write() as conn:  # the same pooled connection: nothing left over
        await outbox.emit(conn, WS, "batch.started", {"batchId": "batch_y"})
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(outbox_table))).all()
    assert [(r.event, r.batch_id) for r in rows] == [("batch.started", "batch_y")]


async def test_a_transaction_that_emitted_first_but_commits_last_gets_the_larger_id(
    db: Database,
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has one writer: transactions cannot overlap")
    first_emitted = asyncio.Event()
    second_done = asyncio.Event()

    async def slow() -> None:
        async with db.write() as conn:
            await outbox.emit(conn, WS, "call.started", {"batchId": "batch_slow"})
            first_emitted.set()
            await second_done.wait()

    async def fast() -> None:
        await first_emitted.wait()
        async with db.write() as conn:
            await outbox.emit(conn, WS, "call.started", {"batchId": "batch_fast"})
        second_done.set()

    await asyncio.gather(slow(), fast())
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(outbox_table).order_by(outbox_table.c.id))).all()
    assert [r.batch_id for r in rows] == ["batch_fast", "batch_slow"]


async def test_a_reader_resuming_after_an_id_misses_nothing_under_concurrent_writers(
    db: Database,
) -> None:
    """Writers commit overlapping transactions while a reader keeps reading "after the
    last id I saw"; in the end it has seen every row exactly once."""
    stop = asyncio.Event()
    seen: list[int] = []

    async def writer(k: int) -> None:
        rng = random.Random(k)
        for i in range(40):
            async with db.write() as conn:
                await outbox.emit(conn, WS, "call.started", {"batchId": f"b{k}", "i": i})
                await asyncio.sleep(rng.uniform(0, 0.004))  # others insert meanwhile
                await outbox.emit(conn, WS, "call.completed", {"batchId": f"b{k}", "i": i})

    async def reader() -> None:
        cursor = 0
        while True:
            done = stop.is_set()
            async with db.read() as conn:
                rows = await outbox.read_after(conn, cursor, limit=100)
            seen.extend(int(r.id) for r in rows)
            if rows:
                cursor = int(rows[-1].id)
            elif done:
                return
            await asyncio.sleep(0.001)

    task = asyncio.create_task(reader())
    await asyncio.gather(*(writer(k) for k in range(8)))
    stop.set()
    await task
    written = await _all_ids(db)
    assert len(written) == 8 * 40 * 2
    assert seen == written


async def _events(db: Database) -> list[tuple[str, dict[str, object]]]:
    async with db.read() as conn:
        rows = await conn.execute(sa.select(outbox_table).order_by(outbox_table.c.id))
        return [(r.event, r.payload) for r in rows]


async def test_every_state_change_is_reported(db: Database) -> None:
    retry = RetryConfig(connection_attempts=3, backoff_base_ms=0)
    batch, (a, b, c) = await make_dialed_batch(db, 3)
    await apply_outcomes(
        db,
        [
            CallEvent(outcome=Outcome.COMPLETED, dial_key=a.dial_key, duration_s=3.0),
            CallEvent(outcome=Outcome.FAILED, dial_key=b.dial_key, detail="503"),
            CallEvent(outcome=Outcome.BUSY, dial_key=c.dial_key),
        ],
        retry,
    )
    async with db.write() as conn:  # b again: its retry is due at once
        claimed, _ = await queue.claim(conn, WS, "w1", 5, 30_000)
    async with db.write() as conn:
        (again,) = await queue.begin_dials(conn, [(claimed[0], "simulated")], "w1", 30_000)
    await apply_outcomes(db, [CallEvent(outcome=Outcome.COMPLETED, dial_key=again.dial_key)], retry)
    seen = await _events(db)
    names = [name for name, _ in seen]
    assert names == [
        "batch.created",
        "batch.started",
        "call.started",
        "call.started",
        "call.started",
        "call.completed",
        "call.retry_scheduled",
        "call.failed",
        "call.started",
        "call.completed",
        "batch.completed",
    ]
    for name, payload in seen:
        assert payload["batchId"] == batch
        if name.startswith("call."):
            assert str(payload["jobId"]).startswith("call_")
            assert payload["status"] in ("active", "waiting", "completed", "failed")
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(outbox_table.c.batch_id))).scalars().all()
    assert set(rows) == {batch}


async def test_cancel_is_reported(db: Database) -> None:
    batch = await make_batch(db, 3)
    await batches.cancel_batch(db, WS, batch)
    assert [name for name, _ in await _events(db)] == ["batch.created", "batch.cancelled"]
