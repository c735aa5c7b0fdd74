"""`POST /v1/api/batch-calls/validate` (extension): the create request, checked and
previewed, creating nothing.

It reads exactly what `POST /v1/api/batch-calls` reads (the same form or JSON body, the same
field checks and 400s, api/batch_create.py), then validates every row once with invalid rows
and repeats skipped, so that it can count them all, and says whether the create, with the
options sent, would accept the file (rows to suppressed numbers count as invalid, as the
create refuses them; `suppressedRows` says how many). The time zones, the calls the batch's
calling window holds back at the start, and the run estimate come from
domain/preview.py; the workspace's limits and the agent's typical dial from store/preview.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from dialbatch import ingest
from dialbatch.api.batch_create import NewBatch, batch_profile, with_workspace_rules
from dialbatch.api.errors import AgentNotFound, ValidationFailed
from dialbatch.domain import preview
from dialbatch.domain.ids import now_ms
from dialbatch.domain.windows import parse_calling_window
from dialbatch.store import preview as preview_store
from dialbatch.store import suppressions, workspaces
from dialbatch.store.engine import Database


async def validate(workspace: str, db: Database, new: NewBatch) -> dict[str, Any]:
    """The preview of `new` (see the module docstring); 400 as the create would answer
    for a file that cannot be read or has no valid row, 404 for an unknown agent."""
    async with db.read() as conn:
        if await workspaces.get_agent(conn, workspace, new.agent_id) is None:
            raise AgentNotFound(new.agent_id)
        new = await with_workspace_rules(conn, workspace, new)
        await batch_profile(conn, workspace, new.compliance_profile)  # 400 as the create
        max_active, cps = await preview_store.limits(conn, workspace)
        slot_s, samples = await preview_store.typical_dial_s(conn, workspace, new.agent_id)
        # As the create reads it: rows to suppressed numbers are refused like invalid ones.
        suppressed = await suppressions.active_numbers(conn, workspace)
        starts, cap_then = await preview_store.latest_starts(conn, workspace, new.agent_id)
    assert new.scan is not None
    lenient = replace(new.options, skip_invalid=True, suppressed=suppressed)
    try:
        scan = await asyncio.to_thread(new.scan, lenient)
    except ingest.CsvRejected as exc:
        raise ValidationFailed(
            new.message(exc),
            problems=[new.problem(p) for p in exc.problems],
            problemCount=exc.problem_count,
        ) from exc
    duplicates = scan.duplicates_removed
    invalid = scan.skipped_count - duplicates
    refused = []
    if invalid and not new.options.skip_invalid:
        refused.append("skipInvalid=true")
    if duplicates and not (new.options.dedupe or new.options.skip_invalid):
        refused.append("dedupe=true")
    accepted = not refused
    zones, unknown = await asyncio.to_thread(preview.zone_counts, scan.phones, scan.zones)
    start = max(new.scheduled_at or 0, now_ms())
    window = None if new.calling_window is None else parse_calling_window(new.calling_window)
    held = preview.window_counts(zones, unknown, window, start)
    call_s = slot_s if slot_s is not None else preview.DEFAULT_SLOT_S
    cap = min(max_active, cap_then) if cap_then is not None else max_active
    pace_then = preview.achieved_pace(starts, ramp_up=cap)
    held_s = preview.slot_seconds(call_s, pace_then, cap, cps)
    if window is None:
        run = preview.estimate_run(
            scan.accepted,
            max_active,
            cps,
            held_s,
            max_concurrency=new.max_concurrency,
            dial_s=call_s,
        )
    else:
        run = await asyncio.to_thread(
            preview.estimate_windowed_run,
            zones,
            unknown,
            window,
            start,
            max_active,
            cps,
            held_s,
            max_concurrency=new.max_concurrency,
            dial_s=call_s,
        )
    if accepted:
        message = f"The batch would be created with {scan.accepted} calls"
    else:
        message = (
            f"The batch would be refused: {invalid} invalid and {duplicates} repeated rows; "
            f"send {' and '.join(refused)} to create it with the {scan.accepted} valid calls"
        )
    return {
        "valid": accepted,
        "message": message,
        "totalRows": len(scan.phones),
        "validRows": scan.accepted,
        "invalidRows": invalid,
        "duplicateRows": duplicates,
        "suppressedRows": scan.suppressed_rows,
        "callsToCreate": scan.accepted if accepted else 0,
        "problems": [new.problem(p) for p in scan.skipped],
        "problemCount": scan.skipped_count,
        "timeZones": [{"zones": list(z), "calls": n} for z, n in zones],
        "unknownTimeZone": unknown,
        "outsideWindowAtStart": held.outside,
        "windowCannotPlace": held.refused,
        "estimate": {
            "startAt": start,
            "finishAt": start + round(run.seconds * 1000),
            "durationSeconds": round(run.seconds, 1),
            "callsPerSecond": round(run.calls_per_second, 3),
            "limitedBy": run.limited_by,
            "maxConcurrentCalls": max_active,
            "maxConcurrency": new.max_concurrency,
            "workspaceCallsPerSecond": cps,
            "waitingSeconds": round(run.waiting_s, 1),
            "neverInWindow": run.never_in_window,
            "callSeconds": round(call_s, 3),
            "slotSeconds": round(held_s, 3),
            "latestPace": None if pace_then is None else round(pace_then, 3),
            "callSecondsFrom": "history" if samples else "default",
            "historyDials": samples,
        },
    }
