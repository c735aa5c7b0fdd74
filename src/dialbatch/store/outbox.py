"""The outbox: events written in the same transaction as the change they report, so a
webhook can never announce what did not happen, nor miss what did."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.ids import now_ms
from dialbatch.store.tables import outbox


async def emit(
    conn: AsyncConnection, workspace_id: str, event: str, payload: dict[str, Any]
) -> None:
    await conn.execute(
        outbox.insert().values(
            workspace_id=workspace_id, event=event, payload=payload, created_at=now_ms()
        )
    )


async def emit_many(conn: AsyncConnection, events: list[tuple[str, str, dict[str, Any]]]) -> None:
    """(workspace_id, event, payload) rows, in one statement."""
    if not events:
        return
    at = now_ms()
    await conn.execute(
        outbox.insert(),
        [{"workspace_id": w, "event": e, "payload": p, "created_at": at} for w, e, p in events],
    )
