"""The claim's row lookup on PostgreSQL stays an index range scan under row locks.

Every worker runs it several times a second, for every workspace with runnable batches.
Through the partial index `ix_calls_due` it reads only the few rows it takes; a plan that
scans `calls` would cost every round O(table), and an idle system would no longer be
cheap. The SQL is captured from a real `queue.claim` (so the test follows the code) and
EXPLAINed with its own parameters, on a table of 21k calls (all waiting, then mostly
finished) with fresh statistics.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from dialbatch.settings import to_async_url
from dialbatch.store import queue, workspaces
from dialbatch.store.engine import Database
from dialbatch.store.tables import calls
from tests import _backends
from tests.helpers import AGENT, WS, make_batch

BATCHES = 3
CALLS_PER_BATCH = 7000
GROUP = 20

pytestmark = pytest.mark.skipif(
    "postgresql" not in _backends.selected_backends(), reason="PostgreSQL is not reachable"
)


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[Database]:
    await _backends.truncate(pg_url)
    db = Database(to_async_url(pg_url))
    async with db.write() as conn:
        await workspaces.create_workspace(
            conn, workspace_id=WS, max_concurrent_calls=100_000, calls_per_second=10_000
        )
        await workspaces.create_agent(conn, WS, name="t", provider="simulated", agent_id=AGENT)
    for _ in range(BATCHES):
        await make_batch(db, CALLS_PER_BATCH)
    yield db
    await db.dispose()


async def _analyze(db: Database) -> None:
    async with db.writer.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("ANALYZE calls")


async def _captured_claim_selects(db: Database) -> list[tuple[str, tuple[Any, ...]]]:
    """The row-locking SELECTs on `calls` that one real claim executes, with parameters."""
    seen: list[tuple[str, tuple[Any, ...]]] = []

    def capture(_conn: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        text = " ".join(statement.split())
        if "FROM calls" in text and "FOR UPDATE" in text:
            seen.append((statement, tuple(params or ())))

    event.listen(db.writer.sync_engine, "before_cursor_execute", capture)
    try:
        async with db.write() as conn:
            claimed, _ = await queue.claim(conn, WS, "plan-test", GROUP, 30_000)
    finally:
        event.remove(db.writer.sync_engine, "before_cursor_execute", capture)
    assert len(claimed) == GROUP
    return seen


async def _plan(db: Database, statement: str, params: tuple[Any, ...], mode: str) -> Any:
    """EXPLAIN the statement as PostgreSQL would run it:

    - "custom": planned for these parameter values (a prepared statement's first runs);
    - "cached": after the statement has run 10 times on the connection (asyncpg caches
      prepared statements, and from the sixth run PostgreSQL may switch to a generic plan
      when it costs no more than the custom ones did);
    - "generic": the plan for unknown parameter values (plan_cache_mode=force_generic_plan).
    """
    args = ", ".join(_literal(p) for p in params)
    async with db.read() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        if mode == "custom":
            return await driver.fetchval("EXPLAIN (FORMAT JSON) " + statement, *params)
        await driver.execute("PREPARE claim_plan AS " + statement)
        try:
            if mode == "cached":
                for _ in range(10):
                    await driver.execute(f"EXECUTE claim_plan({args})")
            else:
                await driver.execute("SET plan_cache_mode = force_generic_plan")
            return await driver.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE claim_plan({args})")
        finally:
            await driver.execute("RESET plan_cache_mode; DEALLOCATE claim_plan")


def _literal(value: Any) -> str:
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _root(value: Any) -> dict[str, Any]:
    doc = json.loads(value) if isinstance(value, str) else value
    return dict(doc[0]["Plan"])


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(_nodes(child))
    return found


async def _assert_index_plan(db: Database, mode: str) -> None:
    selects = await _captured_claim_selects(db)
    assert selects, "the claim ran no row-locking SELECT on calls"
    for statement, params in selects:
        assert "SKIP LOCKED" in statement
        nodes = _nodes(_root(await _plan(db, statement, params, mode)))
        kinds = [n["Node Type"] for n in nodes]
        assert "LockRows" in kinds, kinds
        on_calls = [n for n in nodes if n.get("Relation Name") == "calls"]
        assert on_calls, kinds
        for node in on_calls:
            assert node["Node Type"] in ("Index Scan", "Index Only Scan"), node
            assert node["Index Name"] == "ix_calls_due", node
        assert "Sort" not in kinds, kinds  # the index's order serves ORDER BY ... LIMIT


# "generic": the plan PostgreSQL may switch a prepared statement to; it can use the
# partial index only because the claim inlines `status = 'waiting'` (store/queue.py).
MODES = ["custom", "cached", "generic"]


@pytest.mark.parametrize("mode", MODES)
async def test_claim_uses_the_due_index_on_a_fresh_table(pg: Database, mode: str) -> None:
    await _analyze(pg)
    await _assert_index_plan(pg, mode)


@pytest.mark.parametrize("mode", MODES)
async def test_claim_uses_the_due_index_when_most_calls_are_finished(
    pg: Database, mode: str
) -> None:
    """Late in a run, waiting calls are few among many finished ones."""
    async with pg.write() as conn:
        await conn.execute(
            calls.update().where(calls.c.seq < CALLS_PER_BATCH - 200).values(status="completed")
        )
    await _analyze(pg)
    await _assert_index_plan(pg, mode)
