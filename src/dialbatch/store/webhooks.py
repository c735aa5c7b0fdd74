"""Webhook endpoints and their deliveries: fan-out from the outbox, claims under a lease,
results, dead letters and replays.

Fan-out turns each new outbox row into one delivery row per endpoint that wants it; the
unique key (endpoint, outbox id) and one cursor row, locked while it moves, make that
happen once however many workers run. Deliveries are then claimed like calls: `FOR UPDATE
SKIP LOCKED` on PostgreSQL, a fencing `lease_token`, and a lease that is simply the next
attempt time pushed ahead, so a delivery whose worker died is due again when it expires.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.ids import new_id
from dialbatch.store import outbox as outbox_store
from dialbatch.store._dialect import db_now_ms, for_update, upsert
from dialbatch.store.tables import (
    outbox,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    webhook_fanout,
)

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"
CANCELLED = "cancelled"  # its endpoint was removed before it was delivered
DELIVERY_STATUSES = (PENDING, DELIVERED, DEAD, CANCELLED)
FANOUT_ROW = 1


@dataclass(frozen=True)
class Endpoint:
    id: str
    workspace_id: str
    url: str
    events: list[str]
    description: str
    secret_version: int
    after_outbox_id: int
    created_at: int
    deleted_at: int | None


_ENDPOINT_COLUMNS = [c for c in webhook_endpoints.c]


async def _fanout_cursor(conn: AsyncConnection, *, wait: bool) -> int | None:
    """Lock the fan-out cursor row (made on first use) and return its position; None when
    another transaction holds it and `wait` is False."""
    await conn.execute(
        upsert(conn, webhook_fanout)
        .values(id=FANOUT_ROW, outbox_id=0)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    stmt = sa.select(webhook_fanout.c.outbox_id).where(webhook_fanout.c.id == FANOUT_ROW)
    row = (await conn.execute(for_update(conn, stmt, skip_locked=not wait))).first()
    return None if row is None else int(row[0])


async def create_endpoint(
    conn: AsyncConnection, workspace_id: str, *, url: str, events: list[str], description: str
) -> Endpoint:
    """A new endpoint, which receives the events that commit after it.

    It waits for the fan-out cursor: a fan-out running now either sees this endpoint or
    has moved the cursor, and the endpoint starts after whichever position is later, so
    no event falls between the two."""
    cursor = await _fanout_cursor(conn, wait=True) or 0
    after = max(cursor, await outbox_store.last_id(conn))
    now = await db_now_ms(conn)
    values: dict[str, Any] = {
        "id": new_id("wh"),
        "workspace_id": workspace_id,
        "url": url,
        "events": sorted(set(events)),
        "description": description,
        "secret_version": 1,
        "after_outbox_id": after,
        "created_at": now,
        "deleted_at": None,
    }
    await conn.execute(webhook_endpoints.insert().values(**values))
    return Endpoint(**values)


async def count_endpoints(conn: AsyncConnection, workspace_id: str) -> int:
    e = webhook_endpoints.c
    n = await conn.scalar(
        sa.select(sa.func.count()).where(e.workspace_id == workspace_id, e.deleted_at.is_(None))
    )
    return int(n or 0)


async def list_endpoints(conn: AsyncConnection, workspace_id: str) -> list[Endpoint]:
    e = webhook_endpoints.c
    rows = await conn.execute(
        sa.select(*_ENDPOINT_COLUMNS)
        .where(e.workspace_id == workspace_id, e.deleted_at.is_(None))
        .order_by(e.created_at, e.id)
    )
    return [Endpoint(**r._mapping) for r in rows]


async def get_endpoint(
    conn: AsyncConnection, workspace_id: str, endpoint_id: str, *, include_deleted: bool = False
) -> Endpoint | None:
    """The endpoint, or None when missing, removed, *or another workspace's*."""
    e = webhook_endpoints.c
    stmt = sa.select(*_ENDPOINT_COLUMNS).where(e.id == endpoint_id, e.workspace_id == workspace_id)
    if not include_deleted:
        stmt = stmt.where(e.deleted_at.is_(None))
    row = (await conn.execute(stmt)).first()
    return Endpoint(**row._mapping) if row else None


async def delete_endpoint(conn: AsyncConnection, workspace_id: str, endpoint_id: str) -> bool:
    """Remove the endpoint: nothing more is sent to it; its delivery log stays."""
    e = webhook_endpoints.c
    now = await db_now_ms(conn)
    result = await conn.execute(
        webhook_endpoints.update()
        .where(e.id == endpoint_id, e.workspace_id == workspace_id, e.deleted_at.is_(None))
        .values(deleted_at=now)
    )
    if not result.rowcount:
        return False
    d = webhook_deliveries.c
    await conn.execute(
        webhook_deliveries.update()
        .where(d.endpoint_id == endpoint_id, d.status == PENDING)
        .values(status=CANCELLED, lease_owner=None)
    )
    return True


# --- Fan-out -----------------------------------------------------------------------------------


async def fan_out_needed(conn: AsyncConnection) -> bool:
    """A cheap read: are there live endpoints and outbox rows past the cursor?"""
    e = webhook_endpoints.c
    live = await conn.scalar(
        sa.select(sa.func.min(e.after_outbox_id)).where(e.deleted_at.is_(None))
    )
    if live is None:
        return False
    cursor = await conn.scalar(
        sa.select(webhook_fanout.c.outbox_id).where(webhook_fanout.c.id == FANOUT_ROW)
    )
    start = max(int(cursor or 0), int(live))
    return bool(await conn.scalar(sa.select(outbox.c.id).where(outbox.c.id > start).limit(1)))


async def fan_out(conn: AsyncConnection, *, page: int) -> int | None:
    """Make the deliveries of up to `page` outbox rows after the cursor and move it on.
    Returns how many rows were read; None when another worker is fanning out."""
    cursor = await _fanout_cursor(conn, wait=False)
    if cursor is None:
        return None
    e = webhook_endpoints.c
    endpoints = (
        await conn.execute(
            sa.select(e.id, e.workspace_id, e.events, e.after_outbox_id).where(
                e.deleted_at.is_(None)
            )
        )
    ).all()
    if not endpoints:
        last = await outbox_store.last_id(conn)
        if last > cursor:
            await _move_cursor(conn, last)
        return 0
    start = max(cursor, min(int(ep.after_outbox_id) for ep in endpoints))
    o = outbox.c
    rows = (
        await conn.execute(
            sa.select(o.id, o.workspace_id, o.event, o.created_at)
            .where(o.id > start)
            .order_by(o.id)
            .limit(page)
        )
    ).all()
    if not rows:
        if start > cursor:
            await _move_cursor(conn, start)
        return 0
    by_workspace: dict[str, list[Any]] = {}
    for ep in endpoints:
        by_workspace.setdefault(ep.workspace_id, []).append(ep)
    now = await db_now_ms(conn)
    new = [
        {
            "endpoint_id": ep.id,
            "workspace_id": row.workspace_id,
            "outbox_id": row.id,
            "event": row.event,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "lease_token": 0,
            "created_at": now,
        }
        for row in rows
        for ep in by_workspace.get(row.workspace_id, ())
        if row.event in ep.events and row.id > ep.after_outbox_id
    ]
    if new:
        await conn.execute(
            upsert(conn, webhook_deliveries).on_conflict_do_nothing(
                index_elements=["endpoint_id", "outbox_id"]
            ),
            new,
        )
    await _move_cursor(conn, int(rows[-1].id))
    return len(rows)


async def _move_cursor(conn: AsyncConnection, position: int) -> None:
    await conn.execute(
        webhook_fanout.update().where(webhook_fanout.c.id == FANOUT_ROW).values(outbox_id=position)
    )


# --- Delivering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """A claimed delivery, with what sending it needs."""

    id: int
    lease_token: int
    endpoint_id: str
    workspace_id: str
    url: str
    secret_version: int
    outbox_id: int
    event: str
    payload: dict[str, Any]
    created_at: int  # the event's time
    attempts: int
    first_attempt_at: int | None


async def claim_due(conn: AsyncConnection, owner: str, n: int, lease_ms: int) -> list[Due]:
    """Up to `n` due deliveries, leased to `owner` for `lease_ms`."""
    now = await db_now_ms(conn)
    d = webhook_deliveries.c
    due = (
        sa.select(d.id)
        .where(d.status == sa.literal(PENDING, literal_execute=True), d.next_attempt_at <= now)
        .order_by(d.next_attempt_at, d.id)
        .limit(n)
    )
    ids = [r[0] for r in await conn.execute(for_update(conn, due, skip_locked=True))]
    if not ids:
        return []
    claimed = (
        await conn.execute(
            webhook_deliveries.update()
            .where(d.id.in_(ids), d.status == PENDING)
            .values(
                lease_owner=owner, lease_token=d.lease_token + 1, next_attempt_at=now + lease_ms
            )
            .returning(
                d.id,
                d.lease_token,
                d.endpoint_id,
                d.outbox_id,
                d.attempts,
                d.first_attempt_at,
            )
        )
    ).all()
    e = webhook_endpoints.c
    endpoints = {
        r.id: r
        for r in await conn.execute(
            sa.select(e.id, e.workspace_id, e.url, e.secret_version).where(
                e.id.in_({c.endpoint_id for c in claimed})
            )
        )
    }
    o = outbox.c
    events = {
        r.id: r
        for r in await conn.execute(
            sa.select(o.id, o.event, o.payload, o.created_at).where(
                o.id.in_({c.outbox_id for c in claimed})
            )
        )
    }
    out = []
    for c in sorted(claimed, key=lambda c: c.id):
        ep, ev = endpoints[c.endpoint_id], events[c.outbox_id]
        out.append(
            Due(
                id=c.id,
                lease_token=c.lease_token,
                endpoint_id=c.endpoint_id,
                workspace_id=ep.workspace_id,
                url=ep.url,
                secret_version=ep.secret_version,
                outbox_id=c.outbox_id,
                event=ev.event,
                payload=ev.payload,
                created_at=ev.created_at,
                attempts=c.attempts,
                first_attempt_at=c.first_attempt_at,
            )
        )
    return out


@dataclass(frozen=True)
class Result:
    """One attempt's answer and what follows from it."""

    delivery_id: int
    lease_token: int
    n: int  # this attempt's number
    at: int  # when it was made (ms)
    status_code: int | None
    latency_ms: int | None
    error: str | None
    status: str  # delivered, pending (retry at next_attempt_at) or dead
    next_attempt_at: int
    first_attempt_at: int


async def record(conn: AsyncConnection, results: Sequence[Result]) -> None:
    """Write attempts and their outcomes, where the lease is still ours (a replay or an
    expired lease meanwhile makes the result stale: it is logged, not applied)."""
    if not results:
        return
    d = webhook_deliveries.c
    await conn.execute(
        webhook_deliveries.update()
        .where(
            d.id == sa.bindparam("_id"),
            d.lease_token == sa.bindparam("_token"),
            d.status == PENDING,
        )
        .values(
            status=sa.bindparam("_status"),
            attempts=sa.bindparam("_n"),
            next_attempt_at=sa.bindparam("_next"),
            lease_owner=None,
            first_attempt_at=sa.bindparam("_first"),
            last_attempt_at=sa.bindparam("_at"),
            last_status_code=sa.bindparam("_code", type_=sa.Integer),
            last_error=sa.bindparam("_error", type_=sa.Text),
            delivered_at=sa.bindparam("_delivered", type_=sa.BigInteger),
        ),
        [
            {
                "_id": r.delivery_id,
                "_token": r.lease_token,
                "_status": r.status,
                "_n": r.n,
                "_next": r.next_attempt_at,
                "_first": r.first_attempt_at,
                "_at": r.at,
                "_code": r.status_code,
                "_error": r.error,
                "_delivered": r.at if r.status == DELIVERED else None,
            }
            for r in sorted(results, key=lambda r: r.delivery_id)
        ],
    )
    await conn.execute(
        webhook_attempts.insert(),
        [
            {
                "delivery_id": r.delivery_id,
                "n": r.n,
                "at": r.at,
                "status_code": r.status_code,
                "latency_ms": r.latency_ms,
                "error": r.error[:500] if r.error else None,
            }
            for r in results
        ],
    )


# --- The delivery log ---------------------------------------------------------------------------


async def list_deliveries(
    conn: AsyncConnection,
    endpoint_id: str,
    *,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[int, list[dict[str, Any]]]:
    """(total, page) of an endpoint's deliveries, newest first, each with its attempts."""
    d = webhook_deliveries.c
    where = [d.endpoint_id == endpoint_id]
    if status is not None:
        where.append(d.status == status)
    total = int(
        await conn.scalar(sa.select(sa.func.count()).select_from(webhook_deliveries).where(*where))
        or 0
    )
    rows = (
        await conn.execute(
            sa.select(webhook_deliveries)
            .where(*where)
            .order_by(d.id.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    attempts = await _attempts_of(conn, [r.id for r in rows])
    return total, [{**r._mapping, "attempt_log": attempts.get(r.id, [])} for r in rows]


async def get_delivery(
    conn: AsyncConnection, endpoint_id: str, delivery_id: int
) -> dict[str, Any] | None:
    d = webhook_deliveries.c
    row = (
        await conn.execute(
            sa.select(webhook_deliveries).where(d.id == delivery_id, d.endpoint_id == endpoint_id)
        )
    ).first()
    if row is None:
        return None
    attempts = await _attempts_of(conn, [row.id])
    return {**row._mapping, "attempt_log": attempts.get(row.id, [])}


async def _attempts_of(conn: AsyncConnection, ids: list[int]) -> dict[int, list[Any]]:
    if not ids:
        return {}
    a = webhook_attempts.c
    out: dict[int, list[Any]] = {}
    for r in await conn.execute(
        sa.select(webhook_attempts).where(a.delivery_id.in_(ids)).order_by(a.delivery_id, a.n)
    ):
        out.setdefault(r.delivery_id, []).append(r)
    return out


async def replay(conn: AsyncConnection, endpoint_id: str, delivery_id: int) -> bool:
    """Send a delivery again now (a dead letter, or one delivered), with a fresh retry
    window. False when there is no such delivery of this endpoint."""
    d = webhook_deliveries.c
    now = await db_now_ms(conn)
    result = await conn.execute(
        webhook_deliveries.update()
        .where(d.id == delivery_id, d.endpoint_id == endpoint_id)
        .values(
            status=PENDING,
            next_attempt_at=now,
            first_attempt_at=None,
            lease_owner=None,
            lease_token=d.lease_token + 1,
            delivered_at=None,
        )
    )
    return bool(result.rowcount)
