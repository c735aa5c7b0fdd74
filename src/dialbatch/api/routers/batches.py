"""The batch-calls endpoints of the contract (and the listing of batches, an extension)."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from dialbatch.api import (
    batch_create,
    batch_validate,
    campaign_wire,
    export,
    idempotency,
    retry_wire,
    schemas,
)
from dialbatch.api.auth import Db, Workspace
from dialbatch.api.campaign_wire import (
    CALLING_WINDOW_DESCRIPTION,
    COMPLIANCE_PROFILE_SCHEMA,
    IDEMPOTENCY_PARAMETER,
    JSON_CREATE_SCHEMA,
    MAX_CONCURRENCY_DESCRIPTION,
    PRIORITY_DESCRIPTION,
)
from dialbatch.api.errors import (
    BadRequest,
    BatchNotFound,
    CallNotFound,
    Conflict,
)
from dialbatch.api.upload import read_upload
from dialbatch.domain.ids import now_ms, parse_job_id
from dialbatch.domain.states import WIRE_CALL_STATUSES, CallState, states_for_wire
from dialbatch.store import batches, calls, counters, gate_log, gate_summary, pauses, workspaces
from dialbatch.store.attempt_history import attempt_histories, attempt_history
from dialbatch.store.batches import Batch, BatchAlreadyFinished

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/api/batch-calls", tags=["batch calls"])
legacy_router = APIRouter(prefix="/v1/batch-calls", tags=["batch calls"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorBody},
    401: {"model": schemas.ErrorBody},
    404: {"model": schemas.ErrorBody},
}
INGEST_CHUNK_ROWS = batch_create.INGEST_CHUNK_ROWS  # bench/ingest_phases.py reads it here


# The create request's body: the contract's CSV form, or (extension) JSON rows.
START_BODY: dict[str, Any] = {
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "agentId"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "agentId": {"type": "string"},
                    "scheduledAt": {"type": "string", "format": "date-time"},
                    "smartCallbackConfig": {"type": "string"},
                    "defaultCountry": {"type": "string", "description": "extension"},
                    "skipInvalid": {"type": "boolean", "description": "extension"},
                    "dedupe": {"type": "boolean", "description": "extension"},
                    "failureStop": {
                        "type": "string",
                        "description": "extension: JSON of the FailureStop schema: "
                        "when the batch pauses itself on a failure spike",
                    },
                    "callingWindow": {
                        "type": "string",
                        "description": CALLING_WINDOW_DESCRIPTION
                        + " (in the form: the window as JSON text)",
                    },
                    "retryPolicy": {
                        "type": "string",
                        "description": retry_wire.DESCRIPTION + " (in the form: JSON text)",
                    },
                    "requireConsent": {
                        "type": "boolean",
                        "description": "extension: refuse rows without consent_basis and "
                        "consent_at (row-numbered problems; skipInvalid skips them). "
                        "The workspace's requireConsent is a floor: false here does not "
                        "turn it off",
                    },
                    "complianceProfile": COMPLIANCE_PROFILE_SCHEMA,
                    "maxConcurrency": {
                        "type": "integer",
                        "minimum": 1,
                        "description": MAX_CONCURRENCY_DESCRIPTION,
                    },
                    "priority": {
                        "type": "integer",
                        "minimum": -100,
                        "maximum": 100,
                        "description": PRIORITY_DESCRIPTION,
                    },
                },
            }
        },
        "application/json": {"schema": JSON_CREATE_SCHEMA},
    },
    "required": True,
}


def _ok(model: type[Any]) -> dict[int | str, dict[str, Any]]:
    """Document the success model; the handler returns the payload as built, so fields
    that do not apply are absent rather than null, as the contract's examples show."""
    return {200: {"model": model}, **_ERRORS}


@router.post(
    "",
    response_model=None,
    responses={
        **_ok(schemas.StartBatchResponse),
        409: {"model": schemas.ErrorBody},
        413: {"model": schemas.ErrorBody},
        422: {"model": schemas.ErrorBody},
    },
    summary="Start a batch from a CSV (or, extension, from JSON rows)",
    openapi_extra={"parameters": [IDEMPOTENCY_PARAMETER], "requestBody": START_BODY},
)
async def start_batch(
    request: Request, workspace: Workspace, db: Db
) -> dict[str, Any] | JSONResponse:
    settings = request.app.state.settings
    if batch_create.is_json(request):  # extension: the rows as JSON
        body, digest = await batch_create.read_json_body(request, settings.max_upload_bytes)
        new = batch_create.from_json(body, settings.max_json_calls)
        return await batch_create.create_once(request, workspace, db, new, digest)
    upload = await read_upload(request, settings.max_upload_bytes)
    try:
        new = batch_create.from_form(upload)
        digest = await batch_create.form_digest(request, upload) if _has_key(request) else ""
        return await batch_create.create_once(request, workspace, db, new, digest)
    finally:
        await upload.aclose()


@router.post(
    "/validate",
    response_model=None,
    responses={**_ok(schemas.ValidateResponse), 413: {"model": schemas.ErrorBody}},
    summary="Validate a batch without creating it (extension)",
    description=(
        "Takes exactly the create request (the CSV form or the JSON body) and creates "
        "nothing: answers the valid, invalid and repeated row counts with the first row "
        "problems, whether the create would accept it, the recipients' time zones, and an "
        "estimate of the run under the workspace's concurrency cap and calls-per-second rate "
        "and the agent's typical dial length. The same 400s as the create for a bad field, "
        "a file that cannot be read or one without a valid row; 404 for an unknown agent."
    ),
    openapi_extra={"requestBody": START_BODY},
)
async def validate_batch(request: Request, workspace: Workspace, db: Db) -> dict[str, Any]:
    settings = request.app.state.settings
    if batch_create.is_json(request):
        body, _ = await batch_create.read_json_body(request, settings.max_upload_bytes)
        return await batch_validate.validate(
            workspace, db, batch_create.from_json(body, settings.max_json_calls)
        )
    upload = await read_upload(request, settings.max_upload_bytes)
    try:
        return await batch_validate.validate(workspace, db, batch_create.from_form(upload))
    finally:
        await upload.aclose()


def _has_key(request: Request) -> bool:
    return idempotency.read_key(request) is not None


@router.get(
    "", summary="List batches (extension)", response_model=None, responses=_ok(schemas.BatchPage)
)
async def list_batches(
    workspace: Workspace,
    db: Db,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    async with db.read() as conn:
        total = await batches.count_batches(conn, workspace)
        rows = await batches.list_batches(conn, workspace, limit=limit, offset=(page - 1) * limit)
        ws_paused = await pauses.workspace_paused_at(conn, workspace)
    return {
        "batches": [
            {
                "id": b.id,
                "status": campaign_wire.wire_batch_status(b, ws_paused),
                "agentId": b.agent_id,
                "totalCalls": b.total_calls,
                "createdAt": b.created_at,
                "scheduledAt": b.scheduled_at,
                "startTime": b.started_at,
                "completedTime": b.completed_at,
            }
            for b in rows
        ],
        "pagination": schemas.pagination(page, limit, total),
    }


async def _load(
    db: Db, workspace: str, batch_id: str, *, links: bool = True
) -> tuple[Any, Any, Any, dict[str, Any]]:
    async with db.read() as conn:
        batch = await batches.get_batch(conn, workspace, batch_id)
        if batch is None:
            raise BatchNotFound(batch_id)
        tally = await counters.tally(conn, batch_id)
        recent = await calls.recent_finished(conn, batch_id)
        # extensions: `paused` status, pausedAt, parentBatchId, retryBatchIds
        extra = await campaign_wire.overlay(conn, batch, {}, links=links)
    return batch, tally, recent, extra


@router.get("/{batchId}", response_model=None, responses=_ok(schemas.BatchResponse))
async def get_batch(request: Request, batchId: str, workspace: Workspace, db: Db) -> dict[str, Any]:
    batch, tally, recent, extra = await _load(db, workspace, batchId)
    extra["retryPolicy"] = retry_wire.batch_retry_policy(batch, request.app.state.retry)
    async with db.read() as conn:  # _load found the batch in this workspace
        gate = await gate_summary.gate_summary(conn, batch.id)
    return {
        **schemas.batch_response(batch, tally, recent, now_ms()),
        **extra,
        "gate": schemas.gate_counts(gate),
    }


@router.get("/{batchId}/status", response_model=None, responses=_ok(schemas.ProgressResponse))
async def get_progress(batchId: str, workspace: Workspace, db: Db) -> dict[str, Any]:
    batch, tally, recent, extra = await _load(db, workspace, batchId, links=False)
    return {**schemas.progress_response(batch, tally, recent), **extra}


@router.get("/{batchId}/calls", response_model=None, responses=_ok(schemas.CallList))
async def list_calls(
    batchId: str,
    workspace: Workspace,
    db: Db,
    page: Annotated[int, Query(ge=1, le=10_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    status: Annotated[str, Query(max_length=32)] = "all",
    include: Annotated[
        str,
        Query(
            max_length=32,
            description=(
                "extension: `result` adds each call's `attempts` and (when completed) its "
                "`result`, so a client can read results a page at a time; `attempts` adds "
                "each call's `attemptHistory`; both: `result,attempts`"
            ),
        ),
    ] = "",
) -> dict[str, Any]:
    wanted = _status_filter(status)
    with_result, with_history = _includes(include)
    async with db.read() as conn:
        batch = await batches.get_batch(conn, workspace, batchId)
        if batch is None:
            raise BatchNotFound(batchId)
        tally = await counters.tally(conn, batchId)
        total = tally.total if wanted == "all" else tally.wire(wanted)
        offset = (page - 1) * limit
        states = None if wanted == "all" else states_for_wire(wanted)
        # A page past the end is an empty page (hasNext false), as for the batches listing:
        # clients that page until an empty page stop there instead of failing.
        rows = (
            await calls.page(conn, batchId, states=states, offset=offset, limit=limit)
            if offset < total
            else []
        )
        histories = (
            await attempt_histories(conn, workspace, [r.id for r in rows]) if with_history else {}
        )
        gates = (
            await gate_log.decisions(conn, workspace, [r.id for r in rows]) if with_history else {}
        )
    summary = schemas.counts(tally)
    items = [schemas.call_item(r) for r in rows]
    if with_result:
        for item, r in zip(items, rows, strict=True):
            item["attempts"] = r.attempt
            if r.status == CallState.COMPLETED and r.result is not None:
                item["result"] = r.result
    if with_history:
        for item, r in zip(items, rows, strict=True):
            item["attemptHistory"] = [
                schemas.attempt_entry(a, gates[r.id]) for a in histories[r.id]
            ]
    return {
        "calls": items,
        "pagination": schemas.pagination(page, limit, total),
        "summary": summary,
    }


def _status_filter(status: str) -> str:
    wanted = status.strip().lower()
    if wanted != "all" and wanted not in WIRE_CALL_STATUSES:
        allowed = ", ".join(("all", *WIRE_CALL_STATUSES))
        raise BadRequest(f"Unknown status filter {status!r}; use one of: {allowed}")
    return wanted


_INCLUDES = ("result", "attempts")


def _includes(include: str) -> tuple[bool, bool]:
    """What `include` asks the listing to add: (results, attempt histories)."""
    wanted = {part.strip().lower() for part in include.split(",") if part.strip()}
    unknown = wanted - set(_INCLUDES)
    if unknown:
        raise BadRequest(
            f"Unknown include {include!r}; use `result`, `attempts` or `result,attempts`"
        )
    return "result" in wanted, "attempts" in wanted


@router.get(
    "/{batchId}/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One row per call, streamed",
            "content": {"text/csv": {}, "application/x-ndjson": {}},
        },
        **_ERRORS,
    },
    summary="Export a batch's calls and results (extension)",
)
async def export_calls(
    batchId: str,
    workspace: Workspace,
    db: Db,
    format: Annotated[
        str, Query(max_length=16, description="`csv` (default) or `jsonl` (JSON Lines)")
    ] = "csv",
    status: Annotated[str, Query(max_length=32, description="all, or one call status")] = "all",
) -> StreamingResponse:
    """Every call of the batch, one row each, in CSV order: jobId, number, status, times
    (ms), duration, attempts, error, the result's outcome, transcript, summary and data,
    and the CSV's own columns. Streamed in constant memory, whatever the batch size."""
    raw = format.strip().lower()
    if raw not in export.FORMATS:
        raise BadRequest(f"Unknown export format {format!r}; use csv or jsonl")
    fmt: export.ExportFormat = "csv" if raw == "csv" else "jsonl"
    wanted = _status_filter(status)
    async with db.read() as conn:
        if await batches.get_batch(conn, workspace, batchId) is None:
            raise BatchNotFound(batchId)
    states = None if wanted == "all" else states_for_wire(wanted)
    name = f"{batchId}{'' if wanted == 'all' else '-' + wanted}.{fmt}"
    return StreamingResponse(
        export.stream(db, batchId, states=states, fmt=fmt),
        media_type=export.MEDIA_TYPES[fmt],
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/{batchId}/calls/{jobId}",
    response_model=None,
    responses={**_ok(schemas.CallDetail), 404: {"model": schemas.CallNotFoundBody}},
    summary="Get one call",
    description="extension: `attempts` (dials so far) and `attemptHistory`, every dial of "
    "the call from the ledger of dials: times, outcome, duration, provider call id and code, "
    "caller number.",
)
async def get_call(batchId: str, jobId: str, workspace: Workspace, db: Db) -> dict[str, Any]:
    parsed = parse_job_id(jobId)
    # One snapshot: a gate hold committed between two of these reads would otherwise show
    # in gateHistory but not yet as the call's gateDecision (seen on PostgreSQL).
    async with db.snapshot() as conn:
        batch = await batches.get_batch(conn, workspace, batchId)
        if batch is None or parsed is None or parsed[0] != batchId:
            raise CallNotFound(batchId, jobId)
        row = await calls.get(conn, batchId, parsed[1])
        if row is None:
            raise CallNotFound(batchId, jobId)
        history = await attempt_history(conn, workspace, row.id)
        gate = await gate_log.decisions(conn, workspace, [row.id])
    return schemas.call_detail(row, history, gate[row.id])


# Hang-ups asked of a provider at once, and how long one may take, so that cancelling a
# batch with thousands of live calls neither floods the provider nor hangs the request.
HANGUP_CONCURRENCY = 20
HANGUP_TIMEOUT_S = 10.0

HangupActive = Annotated[
    bool,
    Query(
        description=(
            "extension: also hang up the batch's calls that are live now; they end failed "
            "with `Call canceled` and are not retried. Default: they run to their end."
        )
    ),
]


async def _cancel(
    request: Request, batch_id: str, workspace: str, db: Db, hangup_active: bool
) -> dict[str, Any]:
    try:
        batch = await batches.cancel_batch(db, workspace, batch_id)
    except BatchAlreadyFinished as exc:
        raise Conflict(f"Batch {batch_id} is already {exc.status}; nothing to cancel") from exc
    if batch is None:
        raise BatchNotFound(batch_id)
    request.app.state.wake()
    # After the cancel committed: no call of the batch can be dialed any more, so the
    # live ones listed now are all there is to hang up (bar a dial whose provider id is
    # not recorded yet, which runs to its end).
    hung_up = await _hang_up_live(request, db, workspace, batch) if hangup_active else None
    async with db.read() as conn:
        tally = await counters.tally(conn, batch_id)
    active = (
        f"{hung_up} active call(s) are being hung up"
        if hung_up is not None
        else "active calls run to their end"
    )
    body: dict[str, Any] = {
        "batchId": batch_id,
        "status": "cancelled",
        "message": f"Batch cancelled: waiting calls will not be dialed; {active}",
        "details": {
            "completedCalls": tally.wire("completed"),
            "failedCalls": tally.wire("failed"),
            "cancelledCalls": tally.wire("cancelled"),
            "totalCalls": batch.total_calls,
        },
    }
    if hung_up is not None:
        body["hungUpCalls"] = hung_up
    return body


async def _hang_up_live(request: Request, db: Db, workspace: str, batch: Batch) -> int:
    """Ask the provider to hang up each live call; how many it accepted. The provider's
    `canceled` outcome then ends each call as usual. One failure stops no other."""
    async with db.read() as conn:
        agent = await workspaces.get_agent(conn, workspace, batch.agent_id)
        live = await calls.live_provider_call_ids(conn, workspace, batch.id)
    if not live or agent is None:
        return 0
    provider = request.app.state.providers.get(agent.provider)
    if provider is None:
        log.warning(
            "cannot hang up %d call(s) of %s: provider %r is not loaded in this process",
            len(live),
            batch.id,
            agent.provider,
        )
        return 0
    gate = asyncio.Semaphore(HANGUP_CONCURRENCY)

    async def hang_up(provider_call_id: str) -> bool:
        async with gate:
            try:
                await asyncio.wait_for(provider.hangup(provider_call_id), HANGUP_TIMEOUT_S)
            except Exception:
                log.warning(
                    "hanging up %s (batch %s) failed", provider_call_id, batch.id, exc_info=True
                )
                return False
            return True

    return sum(await asyncio.gather(*(hang_up(p) for p in live)))


_CANCEL_DOC: dict[str, Any] = {
    "response_model": None,
    "responses": {**_ok(schemas.CancelResponse), 409: {"model": schemas.ErrorBody}},
    "summary": "Cancel a batch",
}


@router.delete("/{batchId}", **_CANCEL_DOC)
async def cancel_batch(
    request: Request,
    batchId: str,
    workspace: Workspace,
    db: Db,
    hangupActive: HangupActive = False,
) -> dict[str, Any]:
    return await _cancel(request, batchId, workspace, db, hangupActive)


@legacy_router.delete("/{batchId}", **_CANCEL_DOC)
async def cancel_batch_legacy(
    request: Request,
    batchId: str,
    workspace: Workspace,
    db: Db,
    hangupActive: HangupActive = False,
) -> dict[str, Any]:
    return await _cancel(request, batchId, workspace, db, hangupActive)
