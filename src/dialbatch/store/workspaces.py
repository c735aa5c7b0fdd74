"""Workspaces, their limiter rows, API keys and agents.

API key secrets are stored only as SHA-256 hashes: they are long random tokens, so a
slow password hash would add latency to every request and no security. Lookup is by a
short prefix, and the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.caller_pool import CallerLimit, CallerPool
from dialbatch.domain.ids import new_id, now_ms
from dialbatch.store._dialect import lock_setup
from dialbatch.store.tables import agents, api_keys, workspace_limiter, workspaces

PREFIX_LEN = 12


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> str:
    return "dbk_" + secrets.token_urlsafe(32)


async def create_workspace(
    conn: AsyncConnection,
    *,
    workspace_id: str | None = None,
    name: str = "",
    max_concurrent_calls: int = 10,
    calls_per_second: float = 5.0,
) -> str:
    wid = workspace_id or new_id("ws")
    now = now_ms()
    await conn.execute(workspaces.insert().values(id=wid, name=name or wid, created_at=now))
    await conn.execute(
        workspace_limiter.insert().values(
            workspace_id=wid,
            calls_per_second=calls_per_second,
            burst=max(1.0, calls_per_second),
            tokens=max(1.0, calls_per_second),
            refilled_at=now,
            max_active=max_concurrent_calls,
            active=0,
        )
    )
    return wid


async def workspace_exists(conn: AsyncConnection, workspace_id: str) -> bool:
    found = await conn.scalar(sa.select(workspaces.c.id).where(workspaces.c.id == workspace_id))
    return found is not None


async def set_limits(
    conn: AsyncConnection,
    workspace_id: str,
    *,
    max_concurrent_calls: int | None = None,
    calls_per_second: float | None = None,
) -> None:
    values: dict[str, Any] = {}
    if max_concurrent_calls is not None:
        values["max_active"] = max_concurrent_calls
    if calls_per_second is not None:
        values["calls_per_second"] = calls_per_second
        values["burst"] = max(1.0, calls_per_second)
        # A new rate applies from now, not after a slot the old rate set far ahead.
        values["next_start_at"] = 0.0
    if values:
        await conn.execute(
            workspace_limiter.update()
            .where(workspace_limiter.c.workspace_id == workspace_id)
            .values(**values)
        )


async def max_concurrent_calls(conn: AsyncConnection, workspace_id: str) -> int | None:
    """The workspace's cap of concurrent calls; None for an unknown workspace."""
    found = await conn.scalar(
        sa.select(workspace_limiter.c.max_active).where(
            workspace_limiter.c.workspace_id == workspace_id
        )
    )
    return int(found) if found is not None else None


async def requires_consent(conn: AsyncConnection, workspace_id: str) -> bool:
    """Whether every batch of the workspace refuses rows without consent (its floor)."""
    found = await conn.scalar(
        sa.select(workspaces.c.require_consent).where(workspaces.c.id == workspace_id)
    )
    return bool(found)


async def set_require_consent(conn: AsyncConnection, workspace_id: str, required: bool) -> None:
    await conn.execute(
        workspaces.update().where(workspaces.c.id == workspace_id).values(require_consent=required)
    )


async def create_api_key(
    conn: AsyncConnection, workspace_id: str, *, secret: str | None = None, name: str = ""
) -> tuple[str, str]:
    """Store a key's hash; returns (key id, secret). The secret is never stored."""
    secret = secret or new_api_key()
    key_id = new_id("key")
    await conn.execute(
        api_keys.insert().values(
            id=key_id,
            workspace_id=workspace_id,
            prefix=secret[:PREFIX_LEN],
            secret_hash=hash_secret(secret),
            name=name,
            created_at=now_ms(),
        )
    )
    return key_id, secret


async def revoke_api_key(conn: AsyncConnection, key_id: str) -> bool:
    result = await conn.execute(
        api_keys.update()
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now_ms())
    )
    return result.rowcount > 0


async def list_api_keys(conn: AsyncConnection, workspace_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        sa.select(api_keys.c.id, api_keys.c.name, api_keys.c.created_at, api_keys.c.revoked_at)
        .where(api_keys.c.workspace_id == workspace_id)
        .order_by(api_keys.c.created_at)
    )
    return [dict(r._mapping) for r in rows]


async def verify_api_key(conn: AsyncConnection, workspace_id: str, secret: str) -> bool:
    """True when `secret` is a live key of `workspace_id`. Constant-time on the hash."""
    if not secret or len(secret) > 256:
        return False
    candidates = await conn.execute(
        sa.select(api_keys.c.workspace_id, api_keys.c.secret_hash).where(
            api_keys.c.prefix == secret[:PREFIX_LEN], api_keys.c.revoked_at.is_(None)
        )
    )
    digest = hash_secret(secret)
    ok = False
    for ws, stored in candidates:
        if hmac.compare_digest(stored, digest) and ws == workspace_id:
            ok = True
    return ok


@dataclass(frozen=True)
class Agent:
    workspace_id: str
    id: str
    name: str
    provider: str
    provider_config: dict[str, Any]
    from_numbers: list[str]
    created_at: int
    secret_version: int = 1  # the agent's signing secret is derived from it
    # {"+1212...": {"callsPerSecond": 1, "perDay": 500}}, for some of from_numbers
    caller_limits: dict[str, Any] | None = None

    @property
    def pool(self) -> CallerPool:
        """The agent's caller numbers as the pool's rule reads them."""
        limits = {
            n: CallerLimit(spec.get("callsPerSecond"), spec.get("perDay"))
            for n, spec in (self.caller_limits or {}).items()
            if n in self.from_numbers
        }
        return CallerPool(tuple(self.from_numbers), limits)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "provider": self.provider,
            "providerConfig": self.provider_config,
            "fromNumbers": self.from_numbers,
            "callerNumberLimits": self.caller_limits or {},
            "createdAt": self.created_at,
        }


async def create_agent(
    conn: AsyncConnection,
    workspace_id: str,
    *,
    name: str,
    provider: str,
    provider_config: dict[str, Any] | None = None,
    from_numbers: list[str] | None = None,
    agent_id: str | None = None,
) -> Agent:
    agent = Agent(
        workspace_id=workspace_id,
        id=agent_id or new_id("agent"),
        name=name,
        provider=provider,
        provider_config=provider_config or {},
        from_numbers=from_numbers or [],
        created_at=now_ms(),
    )
    await conn.execute(
        agents.insert().values(
            workspace_id=workspace_id,
            id=agent.id,
            name=agent.name,
            provider=agent.provider,
            provider_config=agent.provider_config,
            from_numbers=agent.from_numbers,
            created_at=agent.created_at,
        )
    )
    return agent


async def get_agent(conn: AsyncConnection, workspace_id: str, agent_id: str) -> Agent | None:
    row = (
        await conn.execute(
            sa.select(agents).where(agents.c.workspace_id == workspace_id, agents.c.id == agent_id)
        )
    ).first()
    return Agent(**row._mapping) if row else None


async def set_pool(
    conn: AsyncConnection,
    workspace_id: str,
    agent_id: str,
    from_numbers: list[str],
    limits: dict[str, CallerLimit],
) -> Agent | None:
    """Replace the agent's caller numbers and their limits; None for an unknown agent.
    Dials already started keep what they showed; the next ones use the new pool."""
    result = await conn.execute(
        agents.update()
        .where(agents.c.workspace_id == workspace_id, agents.c.id == agent_id)
        .values(
            from_numbers=from_numbers,
            caller_limits={n: lim.to_json() for n, lim in limits.items()} or None,
        )
    )
    if not result.rowcount:
        return None
    return await get_agent(conn, workspace_id, agent_id)


async def list_agents(conn: AsyncConnection, workspace_id: str) -> list[Agent]:
    rows = await conn.execute(
        sa.select(agents).where(agents.c.workspace_id == workspace_id).order_by(agents.c.created_at)
    )
    return [Agent(**r._mapping) for r in rows]


async def lock_for_setup(conn: AsyncConnection) -> None:
    """Hold off other processes' start-up set-up until this transaction ends (bootstrap's
    demo workspace, created once however many processes start at the same moment)."""
    await lock_setup(conn)
