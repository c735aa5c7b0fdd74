"""Hot statements built once (store/_prepared.py): on SQLite run on the driver inside the
transaction SQLAlchemy began, on PostgreSQL by SQLAlchemy; the same rows either way, with
the columns' types applied in and out, and undone with their transaction."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dialbatch.store._dialect import in_list
from dialbatch.store._prepared import Prepared, one_of, run
from dialbatch.store.engine import Database
from dialbatch.store.tables import outbox
from tests.helpers import WS

_INSERT = Prepared(
    "test_outbox_insert",
    lambda conn: outbox.insert(),
    keys=("workspace_id", "batch_id", "event", "payload", "created_at"),
)
_BY_EVENTS = Prepared(
    "test_outbox_by_events",
    lambda conn: (
        sa.select(outbox.c.id, outbox.c.event, outbox.c.payload)
        .where(in_list(conn, outbox.c.event, "_events"), outbox.c.created_at >= sa.bindparam("_t"))
        .order_by(outbox.c.id)
    ),
)
_RENAME = Prepared(
    "test_outbox_rename",
    lambda conn: (
        outbox.update()
        .where(in_list(conn, outbox.c.id, "_ids"))
        .values(event=sa.bindparam("_event"))
        .returning(outbox.c.id, outbox.c.event.label("renamed"))
    ),
)


def _row(event: str, payload: object, at: int = 5) -> dict[str, object]:
    return {
        "workspace_id": WS,
        "batch_id": "batch_p",
        "event": event,
        "payload": payload,
        "created_at": at,
    }


async def test_rows_go_in_and_come_back_with_their_types(db: Database) -> None:
    async with db.write() as conn:
        await run(
            conn,
            _INSERT,
            [_row("a.one", {"n": 1, "s": "x"}), _row("b.two", [1, 2]), _row("c.three", {})],
        )
        await run(conn, _INSERT, [_row("a.one", {"n": 2}, at=1)])  # one set alone
    async with db.read() as conn:
        rows = await run(conn, _BY_EVENTS, {"_events": ["a.one", "c.three"], "_t": 5})
        # The same rows as SQLAlchemy's own execution gives.
        plain = (
            await conn.execute(
                sa.select(outbox.c.id, outbox.c.event, outbox.c.payload)
                .where(outbox.c.event.in_(["a.one", "c.three"]), outbox.c.created_at >= 5)
                .order_by(outbox.c.id)
            )
        ).all()
    assert [(r.event, r.payload) for r in rows] == [("a.one", {"n": 1, "s": "x"}), ("c.three", {})]
    assert [tuple(r) for r in rows] == [tuple(r) for r in plain]


async def test_a_list_of_any_length_and_returning(db: Database) -> None:
    async with db.write() as conn:
        await run(conn, _INSERT, [_row(f"e.{i}", {"i": i}) for i in range(5)])
    async with db.read() as conn:
        ids = [r.id for r in await run(conn, _BY_EVENTS, {"_events": ["e.1", "e.3"], "_t": 0})]
    assert len(ids) == 2
    for chosen in (ids[:1], ids, []):
        async with db.write() as conn:
            renamed = await run(conn, _RENAME, {"_ids": chosen, "_event": f"r.{len(chosen)}"})
        assert sorted((r.id, r.renamed) for r in renamed) == [
            (i, f"r.{len(chosen)}") for i in chosen
        ]


async def test_a_prepared_write_is_undone_with_its_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await run(conn, _INSERT, [_row("gone", {})])
            raise RuntimeError("the change fails")
    async with db.read() as conn:
        assert await run(conn, _BY_EVENTS, {"_events": ["gone"], "_t": 0}) == []


async def test_a_missing_parameter_is_an_error_not_a_null(db: Database) -> None:
    with pytest.raises(Exception, match="_t"):
        async with db.read() as conn:
            await run(conn, _BY_EVENTS, {"_events": ["a"]})


async def test_statements_that_cannot_be_compiled_once_are_refused(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("PostgreSQL runs the built statement through SQLAlchemy")
    expanding = Prepared(
        "test_expanding",
        lambda conn: sa.select(outbox.c.id).where(
            outbox.c.id.in_(sa.bindparam("x", expanding=True))
        ),
    )
    twice = Prepared("test_twice", lambda conn: sa.select(outbox.c.id, outbox.c.id.label("id")))
    async with db.read() as conn:
        with pytest.raises(ValueError, match="expanding IN"):
            await run(conn, expanding, {"x": [1]})
        with pytest.raises(ValueError, match="named alike"):
            await run(conn, twice, {})


def test_one_of_takes_only_plain_words() -> None:
    assert "'queued'" in str(one_of(outbox.c.event, ["queued", "in-progress"]))
    with pytest.raises(ValueError, match="plain word"):
        one_of(outbox.c.event, ["x') OR 1=1 --"])
