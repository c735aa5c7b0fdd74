"""Idempotency-Key records: a repeated batch creation answers what the first one did.

The first request with a key inserts a *pending* row in a transaction of its own, so that
every other API process sees it at once (the primary key makes exactly one insert win, on
both engines). The request's own transaction then creates the batch and completes the row
with the response it answers, so a batch never exists without its record. A failed request
(4xx, or the process died) leaves no completed row: an error deletes it, and a pending row
older than PENDING_STALE_MS is taken over by the next request with the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.store._dialect import db_now_ms, upsert
from dialbatch.store.tables import idempotency_keys

TTL_MS = 24 * 3600 * 1000
# A request still pending after this long is taken to have died with its process.
PENDING_STALE_MS = 5 * 60 * 1000


@dataclass(frozen=True)
class Claimed:
    """This request holds the key: it goes on, and completes the row in its transaction."""

    created_at: int


@dataclass(frozen=True)
class Replay:
    """The key answered before: answer the same."""

    status_code: int
    response: dict[str, Any]


@dataclass(frozen=True)
class Mismatch:
    """The key was used for a different request."""


@dataclass(frozen=True)
class Pending:
    """Another request with the key is still being handled."""


Found = Claimed | Replay | Mismatch | Pending


async def claim(conn: AsyncConnection, workspace_id: str, key: str, request_hash: str) -> Found:
    """Take the key for this request, or say what the key already stands for. Run in a
    transaction of its own (committed before the request's work starts)."""
    k = idempotency_keys.c
    now = await db_now_ms(conn)
    await conn.execute(
        idempotency_keys.delete().where(k.workspace_id == workspace_id, k.expires_at < now)
    )
    inserted = (
        await conn.execute(
            upsert(conn, idempotency_keys)
            .values(
                workspace_id=workspace_id,
                key=key,
                request_hash=request_hash,
                created_at=now,
                expires_at=now + TTL_MS,
            )
            .on_conflict_do_nothing()
            .returning(k.created_at)
        )
    ).first()
    if inserted is not None:
        return Claimed(int(inserted.created_at))
    row = (
        await conn.execute(
            sa.select(idempotency_keys).where(k.workspace_id == workspace_id, k.key == key)
        )
    ).first()
    if row is None:  # deleted (a failed first request) since the insert looked
        return Pending()
    if row.request_hash != request_hash:
        return Mismatch()
    if row.status_code is not None:
        return Replay(int(row.status_code), dict(row.response or {}))
    if row.created_at < now - PENDING_STALE_MS:
        taken = await conn.execute(
            idempotency_keys.update()
            .where(k.workspace_id == workspace_id, k.key == key, k.created_at == row.created_at)
            .values(created_at=now, expires_at=now + TTL_MS)
        )
        if taken.rowcount:
            return Claimed(now)
    return Pending()


async def complete(
    conn: AsyncConnection,
    workspace_id: str,
    key: str,
    status_code: int,
    response: dict[str, Any],
) -> None:
    """Store the answer, in the transaction that did the work."""
    k = idempotency_keys.c
    await conn.execute(
        idempotency_keys.update()
        .where(k.workspace_id == workspace_id, k.key == key)
        .values(status_code=status_code, response=response)
    )


async def release(conn: AsyncConnection, workspace_id: str, key: str, held: Claimed) -> None:
    """The request failed: forget the pending key, so a corrected request may use it (unless
    another request took the key over meanwhile)."""
    k = idempotency_keys.c
    await conn.execute(
        idempotency_keys.delete().where(
            k.workspace_id == workspace_id,
            k.key == key,
            k.status_code.is_(None),
            k.created_at == held.created_at,
        )
    )
