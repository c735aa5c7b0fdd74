"""Helpers for store-level tests: a batch made directly in the store, and the invariants
every such test ends with."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import sqlalchemy as sa

from dialbatch.domain.ids import new_batch_id
from dialbatch.server import Runtime
from dialbatch.store import batches, counters, queue, workspaces
from dialbatch.store.engine import Database
from dialbatch.store.tables import calls, workspace_limiter
from tests.conftest import numbers

WS = "ws_t"
AGENT = "agent_t"


async def _chunks(n: int) -> AsyncIterator[list[tuple[int, str, str]]]:
    yield [(i, p, json.dumps({"i": i})) for i, p in enumerate(numbers(n))]


async def make_batch(
    db: Database,
    n: int,
    *,
    policy: dict[str, Any] | None = None,
    scheduled_at: int | None = None,
    max_concurrency: int | None = None,
    priority: int = 0,
) -> str:
    batch_id = new_batch_id()
    async with db.write() as conn:
        await batches.insert_batch(
            conn,
            batch_id=batch_id,
            workspace_id=WS,
            agent_id=AGENT,
            scheduled_at=scheduled_at,
            callback_policy=policy or {"enabled": False, "maxAttempts": 1, "gaps": []},
            source_name=None,
            rows=_chunks(n),
            max_concurrency=max_concurrency,
            priority=priority,
        )
    return batch_id


async def make_dialed_batch(
    db: Database, n: int, *, provider: str = "simulated"
) -> tuple[str, list[queue.Intent]]:
    """A batch of `n` calls, all claimed and dialing (intents committed) by worker "w1"."""
    batch_id = await make_batch(db, n)
    async with db.write() as conn:
        claimed, _ = await queue.claim(conn, WS, "w1", n, 30_000)
    async with db.write() as conn:
        intents = await queue.begin_dials(conn, [(c, provider) for c in claimed], "w1", 30_000)
    assert len(intents) == n, "the workspace's limits must allow n calls at once"
    return batch_id, intents


@asynccontextmanager
async def api_with_agent(runtime: Runtime, provider: str) -> AsyncIterator[httpx.AsyncClient]:
    """`runtime`'s API (its dispatcher off), with workspace WS and agent AGENT on
    `provider`, for tests that drive calls by hand and post callbacks to it."""
    async with runtime.db.write() as conn:
        await workspaces.create_workspace(
            conn, workspace_id=WS, max_concurrent_calls=5, calls_per_second=1000
        )
        await workspaces.create_agent(conn, WS, name="t", provider=provider, agent_id=AGENT)
    await runtime.start()
    try:
        transport = httpx.ASGITransport(app=runtime.app())
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        await runtime.stop()


async def assert_consistent(db: Database, batch_id: str, workspace: str = WS) -> dict[str, int]:
    """Counters equal COUNT(*) by status; the limiter's `active` equals the calls holding
    a slot. Returns the counts."""
    async with db.read() as conn:
        real = dict(
            (
                await conn.execute(
                    sa.select(calls.c.status, sa.func.count())
                    .where(calls.c.batch_id == batch_id)
                    .group_by(calls.c.status)
                )
            ).all()
        )
        tally = await counters.tally(conn, batch_id)
        holding = await conn.scalar(
            sa.select(sa.func.count()).where(
                calls.c.workspace_id == workspace,
                calls.c.status.in_(["claimed", "dialing", "unknown"]),
            )
        )
        active = await conn.scalar(
            sa.select(workspace_limiter.c.active).where(
                workspace_limiter.c.workspace_id == workspace
            )
        )
    assert {k: v for k, v in tally.by_state.items() if v} == real
    assert active == holding
    return real
