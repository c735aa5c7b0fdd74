"""The gate's log: every hold and refusal of a call, in order (table ``gate_log``).

``calls.gate_decision`` is the gate's latest word on a call (``gateDecision``); a call that
waited for a window, then for a cap, then was dialed, then waited again has had several, and
its history should show each one where it fell between its dials. The writers of
``gate_decision`` (store/gating.py, store/queue.py) append here in the same statement's
transaction; a decision is written once per hold, never once per dispatcher tick, so the log
grows with the holds, not with time.

Read back with the call's attempt history: each decision carries how many dials the call had
had when it was taken (``after_dials``), which places it between two dials.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.store.tables import calls, gate_log

# The most decisions shown per call: the latest ones (a call held by its window every day
# for a year would otherwise answer with hundreds).
MAX_SHOWN = 100


async def record(conn: AsyncConnection, entries: Sequence[tuple[int, int, dict[str, Any]]]) -> None:
    """Append (call id, dials so far, decision record) rows; the record's ``at`` is when."""
    if not entries:
        return
    await conn.execute(
        gate_log.insert(),
        [
            {"call_id": call_id, "after_dials": dials, "at": int(d["at"]), "decision": d}
            for call_id, dials, d in entries
        ],
    )


async def decisions(
    conn: AsyncConnection, workspace_id: str, call_ids: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    """The gate's decisions on each of these calls (the workspace's), oldest first, at most
    the latest :data:`MAX_SHOWN` each; each is the decision record with ``afterDials``."""
    if not call_ids:
        return {}
    g = gate_log.c
    latest = (
        sa.select(
            g.call_id,
            g.after_dials,
            g.decision,
            sa.func.row_number().over(partition_by=g.call_id, order_by=g.id.desc()).label("k"),
            g.id,
        )
        .join(calls, calls.c.id == g.call_id)
        .where(g.call_id.in_(list(call_ids)), calls.c.workspace_id == workspace_id)
        .subquery()
    )
    rows = await conn.execute(
        sa.select(latest.c.call_id, latest.c.after_dials, latest.c.decision)
        .where(latest.c.k <= MAX_SHOWN)
        .order_by(latest.c.call_id, latest.c.id)
    )
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in call_ids}
    for r in rows:
        out[r.call_id].append({**r.decision, "afterDials": r.after_dials})
    return out
