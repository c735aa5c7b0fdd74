"""A workspace's gate settings: its compliance profile and its default calling window.

Both are read at dial time (store/gating.py), so a change applies to running batches at
their next claim: a profile raised mid-campaign tightens them at once (the fail-safe
direction). Frequency caps, the third setting of `PATCH /v1/api/workspace`, live with
their ledger in store/number_dials.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.compliance import DEFAULT_PROFILE
from dialbatch.store.tables import workspaces


@dataclass(frozen=True)
class GateSettings:
    """The workspace's profile and default window (validated JSON, or None)."""

    compliance_profile: str = DEFAULT_PROFILE
    calling_window: dict[str, Any] | None = None


async def get(conn: AsyncConnection, workspace_id: str) -> GateSettings:
    w = workspaces.c
    row = (
        await conn.execute(
            sa.select(w.compliance_profile, w.calling_window).where(w.id == workspace_id)
        )
    ).first()
    if row is None:
        return GateSettings()
    return GateSettings(row.compliance_profile or DEFAULT_PROFILE, row.calling_window)


_UNSET: Any = object()


async def update(
    conn: AsyncConnection,
    workspace_id: str,
    *,
    compliance_profile: str | None = None,
    calling_window: dict[str, Any] | None = _UNSET,
) -> bool:
    """Change what is given (a window of None clears it); False for an unknown workspace.

    The values must already be validated (domain/compliance.parse_profile, the window's
    ``to_json``)."""
    values: dict[str, Any] = {}
    if compliance_profile is not None:
        values["compliance_profile"] = compliance_profile
    if calling_window is not _UNSET:
        values["calling_window"] = calling_window
    if not values:
        return await _exists(conn, workspace_id)
    result = await conn.execute(
        workspaces.update().where(workspaces.c.id == workspace_id).values(**values)
    )
    return bool(result.rowcount)


async def _exists(conn: AsyncConnection, workspace_id: str) -> bool:
    found = await conn.scalar(sa.select(workspaces.c.id).where(workspaces.c.id == workspace_id))
    return found is not None
