"""The one stored fact about an agent's signing secret: its version. The secret itself is
derived from the server's key (dialbatch/signing.py), so bumping the version rotates it."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.store.tables import agents


async def secret_version(conn: AsyncConnection, workspace_id: str, agent_id: str) -> int | None:
    """The agent's current secret version; None when the workspace has no such agent."""
    version = await conn.scalar(
        sa.select(agents.c.secret_version).where(
            agents.c.workspace_id == workspace_id, agents.c.id == agent_id
        )
    )
    return None if version is None else int(version)


async def rotate(conn: AsyncConnection, workspace_id: str, agent_id: str) -> int | None:
    """Bump the version, invalidating the old secret at once; the new version, or None."""
    version = await conn.scalar(
        agents.update()
        .where(agents.c.workspace_id == workspace_id, agents.c.id == agent_id)
        .values(secret_version=agents.c.secret_version + 1)
        .returning(agents.c.secret_version)
    )
    return None if version is None else int(version)
