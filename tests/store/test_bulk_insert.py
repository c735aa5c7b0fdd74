"""insert_batch's bulk path (json_each on SQLite, COPY on PostgreSQL): exact rows and values,
and all-or-nothing when the row source fails midway."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from dialbatch.domain.ids import new_batch_id
from dialbatch.store import batches
from dialbatch.store.engine import Database
from dialbatch.store.tables import batches as batches_table
from dialbatch.store.tables import calls
from tests.conftest import numbers
from tests.helpers import AGENT, WS, assert_consistent

DUE = 1_900_000_000_000
POLICY = {"enabled": False, "maxAttempts": 1, "gaps": []}
AWKWARD = [
    {"name": "Zoë Ñúñez", "city": "Zürich", "note": "日本語 ✓ 🎉"},
    {"quote": 'say "hi"', "single": "it's", "backslash": "C:\\path\\to\\x", "tab": "a\tb"},
    {"nested": {"list": [1, 2.5, None, True]}, "empty": ""},
    {},
]


def _meta(value: dict[str, object]) -> str:
    """The JSON text ingest builds (compact, non-ASCII kept as is)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _rows(n: int) -> list[tuple[int, str, str]]:
    phones = numbers(n)
    return [(i, phones[i], _meta(AWKWARD[i % len(AWKWARD)] | {"i": i})) for i in range(n)]


async def _chunks(
    rows: list[tuple[int, str, str]], size: int, *, fail_after: int | None = None
) -> AsyncIterator[list[tuple[int, str, str]]]:
    for start in range(0, len(rows), size):
        if fail_after is not None and start >= fail_after:
            raise RuntimeError("rejected midway")
        yield rows[start : start + size]


async def _insert(
    db: Database, batch_id: str, chunks: AsyncIterator[list[tuple[int, str, str]]]
) -> int:
    async with db.write() as conn:
        return await batches.insert_batch(
            conn,
            batch_id=batch_id,
            workspace_id=WS,
            agent_id=AGENT,
            scheduled_at=DUE,
            callback_policy=POLICY,
            source_name="t.csv",
            rows=chunks,
        )


async def test_rows_and_values_are_exact(db: Database) -> None:
    rows = _rows(250)
    batch_id = new_batch_id()
    assert await _insert(db, batch_id, _chunks(rows, 100)) == 250  # 3 chunks, the last short

    c = calls.c
    async with db.read() as conn:
        got = (
            await conn.execute(
                sa.select(
                    c.batch_id,
                    c.workspace_id,
                    c.seq,
                    c.phone_number,
                    c.metadata,
                    c.status,
                    c.attempt,
                    c.connection_failures,
                    c.unreached,
                    c.next_attempt_at,
                    c.lease_token,
                    c.lease_owner,
                    c.lease_expires,
                    c.provider_call_id,
                    c.result,
                )
                .where(c.batch_id == batch_id)
                .order_by(c.id)
            )
        ).all()
        total = await conn.scalar(
            sa.select(batches_table.c.total_calls).where(batches_table.c.id == batch_id)
        )
    assert total == 250
    # Ids follow the CSV order, and every value is the one given (metadata byte for byte).
    assert [tuple(r) for r in got] == [
        (batch_id, WS, seq, phone, meta, "waiting", 0, 0, 0, DUE, 0, None, None, None, None)
        for seq, phone, meta in rows
    ]
    assert [json.loads(r.metadata) for r in got[:4]] == [AWKWARD[i] | {"i": i} for i in range(4)]
    assert await assert_consistent(db, batch_id) == {"waiting": 250}


async def test_failure_midway_leaves_nothing(db: Database) -> None:
    batch_id = new_batch_id()
    with pytest.raises(RuntimeError, match="rejected midway"):
        await _insert(db, batch_id, _chunks(_rows(250), 100, fail_after=200))
    async with db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(calls)) == 0
        assert await conn.scalar(sa.select(sa.func.count()).select_from(batches_table)) == 0
    # The connection went back to the pool in a usable state.
    other = new_batch_id()
    assert await _insert(db, other, _chunks(_rows(10), 100)) == 10
    assert await assert_consistent(db, other) == {"waiting": 10}
