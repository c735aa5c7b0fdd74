"""The workspace's default retry policy per outcome (domain/retry_policy.py): set by
PATCH /v1/api/workspace, taken by each new batch of the workspace when it is created."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.retry_policy import RetryPolicy, parse_retry_policy
from dialbatch.store.tables import workspaces


async def workspace_default(conn: AsyncConnection, workspace_id: str) -> RetryPolicy | None:
    """The workspace's default policy, or None when it has none."""
    stored = (
        await conn.execute(
            sa.select(workspaces.c.retry_policy).where(workspaces.c.id == workspace_id)
        )
    ).scalar_one_or_none()
    return None if stored is None else parse_retry_policy(stored)


async def set_workspace_default(
    conn: AsyncConnection, workspace_id: str, policy: RetryPolicy | None
) -> bool:
    """Replace the default (None clears it); False for an unknown workspace. Running
    batches keep the rules they were created with."""
    result = await conn.execute(
        workspaces.update()
        .where(workspaces.c.id == workspace_id)
        .values(retry_policy=None if policy is None else policy.to_json())
    )
    return bool(result.rowcount)
