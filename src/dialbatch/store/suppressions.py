"""A workspace's suppression (do-not-call) list: numbers no call of the workspace may dial.

Numbers are kept in E.164, the form every call's number is normalised to at ingest, so a
number matches whatever form it was uploaded or suppressed in. The list is read twice on a
call's way to a dial: once at ingest (a suppressed row is reported like an invalid one) and
once inside the intent transaction (store/queue.begin_dials), so that a number suppressed
after its batch was uploaded is never dialed. An entry past its `expires_at` no longer
suppresses anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.store._dialect import db_now_ms, in_list, upsert
from dialbatch.store._prepared import Prepared, run
from dialbatch.store.tables import suppressions

SOURCES = ("api", "import", "agent")
_CHUNK = 1_000  # rows per INSERT: well under both engines' bound-parameter limits


@dataclass(frozen=True)
class Entry:
    phone_number: str
    reason: str
    source: str
    job_id: str | None
    created_at: int
    expires_at: int | None


def _active(now: int | sa.BindParameter[int]) -> sa.ColumnElement[bool]:
    s = suppressions.c
    return sa.or_(s.expires_at.is_(None), s.expires_at > now)


async def add(
    conn: AsyncConnection,
    workspace_id: str,
    entries: Sequence[tuple[str, str]],
    *,
    source: str,
    expires_at: int | None = None,
    job_id: str | None = None,
) -> int:
    """Suppress each (E.164 number, reason); a number already listed takes the new reason,
    source and expiry (the latest word wins). Returns how many numbers were written."""
    if not entries:
        return 0
    now = await db_now_ms(conn)
    rows = [
        {
            "workspace_id": workspace_id,
            "phone_number": number,
            "reason": reason,
            "source": source,
            "job_id": job_id,
            "created_at": now,
            "expires_at": expires_at,
        }
        for number, reason in dict(entries).items()  # one row per number: the last reason
    ]
    for i in range(0, len(rows), _CHUNK):
        stmt = upsert(conn, suppressions)
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["workspace_id", "phone_number"],
                set_={
                    "reason": stmt.excluded.reason,
                    "source": stmt.excluded.source,
                    "job_id": stmt.excluded.job_id,
                    "created_at": stmt.excluded.created_at,
                    "expires_at": stmt.excluded.expires_at,
                },
            ),
            rows[i : i + _CHUNK],
        )
    return len(rows)


async def remove(conn: AsyncConnection, workspace_id: str, phone_number: str) -> bool:
    s = suppressions.c
    result = await conn.execute(
        suppressions.delete().where(s.workspace_id == workspace_id, s.phone_number == phone_number)
    )
    return bool(result.rowcount)


async def page(
    conn: AsyncConnection, workspace_id: str, *, limit: int, offset: int
) -> tuple[int, list[Entry]]:
    """The workspace's entries still in force, newest first: (total, this page)."""
    s = suppressions.c
    now = await db_now_ms(conn)
    where = (s.workspace_id == workspace_id, _active(now))
    total = (
        await conn.execute(sa.select(sa.func.count()).select_from(suppressions).where(*where))
    ).scalar_one()
    rows = await conn.execute(
        sa.select(suppressions)
        .where(*where)
        .order_by(s.created_at.desc(), s.phone_number)
        .limit(limit)
        .offset(offset)
    )
    return int(total), [_entry(r) for r in rows]


async def get(conn: AsyncConnection, workspace_id: str, phone_number: str) -> Entry | None:
    s = suppressions.c
    now = await db_now_ms(conn)
    row = (
        await conn.execute(
            sa.select(suppressions).where(
                s.workspace_id == workspace_id, s.phone_number == phone_number, _active(now)
            )
        )
    ).first()
    return _entry(row) if row is not None else None


async def active_numbers(conn: AsyncConnection, workspace_id: str) -> dict[str, str]:
    """Every number the workspace suppresses now, with its reason: what ingest checks rows
    against (one read per upload; a set lookup per row)."""
    s = suppressions.c
    now = await db_now_ms(conn)
    rows = await conn.execute(
        sa.select(s.phone_number, s.reason).where(s.workspace_id == workspace_id, _active(now))
    )
    return {r.phone_number: r.reason for r in rows}


async def matching(
    conn: AsyncConnection, numbers: Iterable[tuple[str, str]], now: int
) -> dict[tuple[str, str], str]:
    """Which (workspace id, E.164 number) pairs are suppressed at `now`, with the reason:
    the intent step's check, one query per group of dials."""
    wanted = set(numbers)
    if not wanted:
        return {}
    rows = await run(
        conn,
        _MATCHING,
        {
            "_ws": sorted({w for w, _ in wanted}),
            "_numbers": sorted({n for _, n in wanted}),
            "_now": now,
        },
    )
    found = {(r.workspace_id, r.phone_number): r.reason for r in rows}
    return {pair: reason for pair, reason in found.items() if pair in wanted}


_MATCHING = Prepared(
    "suppressions_matching",
    lambda conn: sa.select(
        suppressions.c.workspace_id, suppressions.c.phone_number, suppressions.c.reason
    ).where(
        in_list(conn, suppressions.c.workspace_id, "_ws"),
        in_list(conn, suppressions.c.phone_number, "_numbers"),
        _active(sa.bindparam("_now", type_=sa.BigInteger)),
    ),
)


def error_text(reason: str) -> str:
    """The error a call shows when the gate refused it for a suppressed number."""
    return f"Suppressed ({reason})" if reason else "Suppressed"


def _entry(r: sa.Row[object]) -> Entry:
    m = r._mapping
    return Entry(
        phone_number=m["phone_number"],
        reason=m["reason"],
        source=m["source"],
        job_id=m["job_id"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
    )
