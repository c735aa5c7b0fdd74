"""Sharded per-batch counters, changed only by increments inside the transaction of the
state change they count (never read-modify-write from a stale copy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.domain.states import OPEN_CALL_STATES, CallState, wire_status
from dialbatch.store._dialect import PG_COUNTER_SHARDS, counter_shard, greatest, upsert
from dialbatch.store._prepared import Prepared, one_of, run
from dialbatch.store.tables import batch_counters

PG_SHARDS = PG_COUNTER_SHARDS


def _shard(conn: AsyncConnection) -> int:
    return counter_shard(conn)


@dataclass(frozen=True)
class Move:
    """One batch's share of a transaction's state changes."""

    batch_id: str
    deltas: dict[CallState, int]
    duration_s: float = 0.0
    last_at: int | None = None


async def move(
    conn: AsyncConnection,
    batch_id: str,
    moves: dict[CallState, int],
    *,
    duration_s: float = 0.0,
    last_at: int | None = None,
) -> None:
    """Add each delta to its state's counter; completions also carry duration and time."""
    await move_many(conn, [Move(batch_id, moves, duration_s, last_at)])


async def move_many(conn: AsyncConnection, moves: list[Move]) -> None:
    """Every counter change of a transaction in one statement, merged per (batch, state):
    a multi-row upsert may not touch the same row twice."""
    shard = _shard(conn)
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for m in moves:
        for state, delta in m.deltas.items():
            if not delta:
                continue
            row = merged.setdefault(
                (m.batch_id, state.value),
                {
                    "batch_id": m.batch_id,
                    "status": state.value,
                    "shard": shard,
                    "n": 0,
                    "duration_sum": 0.0,
                    "last_at": None,
                },
            )
            row["n"] += delta
            if state is CallState.COMPLETED and delta > 0:
                row["duration_sum"] += m.duration_s
            if state in (CallState.COMPLETED, CallState.FAILED) and m.last_at is not None:
                row["last_at"] = max(row["last_at"] or m.last_at, m.last_at)
    rows = [r for _, r in sorted(merged.items()) if r["n"] or r["duration_sum"]]
    if not rows:
        return
    # One global order of row locks (by batch, then status) so that concurrent transitions
    # (waiting->claimed, claimed->dialing, dialing->waiting) cannot deadlock on PostgreSQL.
    await run(conn, _ADD, rows)


def _build_add(conn: AsyncConnection) -> Any:
    stmt = upsert(conn, batch_counters)
    return stmt.on_conflict_do_update(
        index_elements=["batch_id", "status", "shard"],
        set_={
            "n": batch_counters.c.n + stmt.excluded.n,
            "duration_sum": batch_counters.c.duration_sum + stmt.excluded.duration_sum,
            "last_at": greatest(conn, batch_counters.c.last_at, stmt.excluded.last_at),
        },
    )


_ADD = Prepared(
    "counters_add",
    _build_add,
    keys=("batch_id", "status", "shard", "n", "duration_sum", "last_at"),
)


@dataclass
class Tally:
    """A batch's counts in internal states, with the wire's view derived from them."""

    by_state: dict[str, int] = field(default_factory=dict)
    completed_duration_s: float = 0.0
    last_completed_at: int | None = None

    def wire(self, status: str) -> int:
        return sum(n for s, n in self.by_state.items() if wire_status(s) == status)

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    @property
    def open(self) -> int:
        return sum(n for s, n in self.by_state.items() if s in _OPEN)

    @property
    def average_duration_s(self) -> float:
        done = self.by_state.get(CallState.COMPLETED.value, 0)
        return round(self.completed_duration_s / done, 2) if done else 0.0


_OPEN = {s.value for s in OPEN_CALL_STATES}


async def tally(conn: AsyncConnection, batch_id: str) -> Tally:
    c = batch_counters.c
    rows = await conn.execute(
        sa.select(
            c.status,
            sa.func.sum(c.n),
            sa.func.sum(c.duration_sum),
            sa.func.max(c.last_at).filter(c.status == CallState.COMPLETED.value),
        )
        .where(c.batch_id == batch_id)
        .group_by(c.status)
    )
    t = Tally()
    for status, n, dur, last in rows:
        t.by_state[status] = int(n or 0)
        if status == CallState.COMPLETED.value:
            t.completed_duration_s = float(dur or 0.0)
            t.last_completed_at = int(last) if last is not None else None
    return t


async def open_calls(conn: AsyncConnection, batch_id: str) -> int:
    rows = await run(conn, _OPEN_CALLS, {"batch_id": batch_id})
    return int(rows[0][0] or 0)


_OPEN_CALLS = Prepared(
    "open_calls",
    lambda conn: sa.select(sa.func.coalesce(sa.func.sum(batch_counters.c.n), 0)).where(
        batch_counters.c.batch_id == sa.bindparam("batch_id"),
        one_of(batch_counters.c.status, sorted(_OPEN)),
    ),
)
