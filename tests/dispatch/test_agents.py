"""The dispatcher's agent cache: an edited agent is seen after the cache's lifetime, and a
worker serving many agents keeps only a bounded number."""

from __future__ import annotations

from dialbatch.dispatch.agents import AgentCache
from dialbatch.store import workspaces
from dialbatch.store.engine import Database
from dialbatch.store.tables import agents
from tests.helpers import AGENT, WS


async def test_an_edited_agent_is_seen_once_its_entry_is_stale(db: Database) -> None:
    cache = AgentCache(db, ttl_s=0.0)
    first = await cache.get(WS, AGENT)
    assert first is not None and first.provider == "simulated"
    async with db.write() as conn:
        await conn.execute(
            agents.update().where(agents.c.id == AGENT).values(provider_config={"seed": 3})
        )
    again = await cache.get(WS, AGENT)
    assert again is not None and again.provider_config == {"seed": 3}


async def test_the_cache_keeps_at_most_its_size(db: Database) -> None:
    async with db.write() as conn:
        ids = [
            (await workspaces.create_agent(conn, WS, name=f"a{i}", provider="simulated")).id
            for i in range(5)
        ]
    cache = AgentCache(db, max_size=3)
    for agent_id in ids:
        assert await cache.get(WS, agent_id) is not None
    assert len(cache) == 3
    assert await cache.get(WS, "agent_missing") is None
    assert len(cache) == 3
