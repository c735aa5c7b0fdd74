"""`Database.snapshot()`: every statement of one answer sees the same committed state, on
both databases (PostgreSQL's default READ COMMITTED takes a snapshot per statement)."""

from __future__ import annotations

import sqlalchemy as sa

from dialbatch.store import outbox
from dialbatch.store.engine import Database
from dialbatch.store.tables import outbox as outbox_table
from tests.helpers import WS


async def _count(conn: sa.ext.asyncio.AsyncConnection) -> int:
    return int(
        (await conn.execute(sa.select(sa.func.count()).select_from(outbox_table))).scalar_one()
    )


async def test_a_snapshot_does_not_see_what_commits_after_its_first_read(db: Database) -> None:
    async with db.write() as conn:
        await outbox.emit(conn, WS, "batch.started", {"batchId": "batch_a"})
    async with db.snapshot() as conn:
        before = await _count(conn)
        async with db.write() as other:
            await outbox.emit(other, WS, "batch.started", {"batchId": "batch_b"})
        assert await _count(conn) == before == 1
    async with db.read() as conn:  # committed all the same, for the next answer
        assert await _count(conn) == 2
