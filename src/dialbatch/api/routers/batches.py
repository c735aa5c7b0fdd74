"""The batch-calls endpoints of the contract (and the listing of batches, an extension)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from dialbatch import ingest
from dialbatch.api import export, schemas
from dialbatch.api.auth import Db, Workspace
from dialbatch.api.errors import (
    AgentNotFound,
    BadRequest,
    BatchNotFound,
    CallNotFound,
    Conflict,
    ValidationFailed,
)
from dialbatch.api.producer import ThreadProducer
from dialbatch.api.upload import Upload, read_upload
from dialbatch.domain.ids import new_batch_id, now_ms, parse_job_id
from dialbatch.domain.phone import is_known_region
from dialbatch.domain.retry import InvalidCallbackPolicy, parse_callback_policy, policy_to_json
from dialbatch.domain.schedule import InvalidSchedule, parse_scheduled_at
from dialbatch.domain.states import WIRE_CALL_STATUSES, CallState, states_for_wire
from dialbatch.store import batches, calls, counters, workspaces
from dialbatch.store.batches import Batch, BatchAlreadyFinished

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/api/batch-calls", tags=["batch calls"])
legacy_router = APIRouter(prefix="/v1/batch-calls", tags=["batch calls"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorBody},
    401: {"model": schemas.ErrorBody},
    404: {"model": schemas.ErrorBody},
}
# Rows per insert statement: large enough that thread hand-offs are rare, small enough
# that the chunks in flight stay a few MB.
INGEST_CHUNK_ROWS = 10_000


def _ok(model: type[Any]) -> dict[int | str, dict[str, Any]]:
    """Document the success model; the handler returns the payload as built, so fields
    that do not apply are absent rather than null, as the contract's examples show."""
    return {200: {"model": model}, **_ERRORS}


@router.post(
    "",
    response_model=None,
    responses={**_ok(schemas.StartBatchResponse), 413: {"model": schemas.ErrorBody}},
    summary="Start a batch from a CSV",
    openapi_extra={
        "requestBody": {
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
                        },
                    }
                }
            },
            "required": True,
        }
    },
)
async def start_batch(request: Request, workspace: Workspace, db: Db) -> dict[str, Any]:
    upload = await read_upload(request, request.app.state.settings.max_upload_bytes)
    try:
        return await _start(request, workspace, db, upload)
    finally:
        await upload.aclose()


async def _start(request: Request, workspace: str, db: Db, upload: Upload) -> dict[str, Any]:
    f = upload.fields
    if upload.file is None:
        raise BadRequest("No file: send the CSV in the `file` field")
    agent_id = f.get("agentId", "").strip()
    if not agent_id:
        raise BadRequest("No agentId: name the agent that makes the calls")
    now = now_ms()
    scheduled_at = None
    if f.get("scheduledAt", "").strip():
        try:
            scheduled_at = parse_scheduled_at(f["scheduledAt"], now)
        except InvalidSchedule as exc:
            raise BadRequest(str(exc)) from exc
    try:
        policy = parse_callback_policy(_json_field(f, "smartCallbackConfig"))
    except InvalidCallbackPolicy as exc:
        raise BadRequest(str(exc)) from exc
    options = ingest.IngestOptions(
        default_region=_region(f.get("defaultCountry")),
        skip_invalid=_flag(f, "skipInvalid"),
        dedupe=_flag(f, "dedupe"),
    )
    async with db.read() as conn:
        if await workspaces.get_agent(conn, workspace, agent_id) is None:
            raise AgentNotFound(agent_id)
    file = upload.file
    producer: ThreadProducer[ingest.csv_reader.Chunk, ingest.ScanResult] = ThreadProducer(
        lambda emit: ingest.stream(file, options, emit, chunk_size=INGEST_CHUNK_ROWS)
    )
    batch_id = new_batch_id()
    try:
        # One pass: rows are validated in a thread and inserted as they come; a rejection
        # raises here and the transaction rolls back, so nothing is half-written.
        async with db.write() as conn:
            total = await batches.insert_batch(
                conn,
                batch_id=batch_id,
                workspace_id=workspace,
                agent_id=agent_id,
                scheduled_at=scheduled_at,
                callback_policy=policy_to_json(policy),
                source_name=(upload.filename or "")[:255] or None,
                rows=producer,
            )
    except ingest.CsvRejected as exc:
        accept = _accepting_options(exc.problems, options)
        hint = "; ".join(_OPTION_WORDS[o] for o in accept)
        raise ValidationFailed(
            f"{exc.message}. To accept the file: {hint}" if hint else exc.message,
            problems=[p.as_dict() for p in exc.problems],
            problemCount=exc.problem_count,
            # extension: the form fields that would accept the file, for clients to offer
            acceptWith=accept,
        ) from exc
    scan = producer.result
    assert scan is not None
    request.app.state.wake()
    when = "at the scheduled time" if scheduled_at and scheduled_at > now else "now"
    return {
        "batchId": batch_id,
        "totalCalls": total,
        "status": "queued",
        "message": f"Batch created with {total} calls; dialing starts {when}",
        "skipped": scan.skipped_count,
        "duplicatesRemoved": scan.duplicates_removed,
        "skippedRows": [p.as_dict() for p in scan.skipped],
    }


def _json_field(fields: dict[str, str], name: str) -> Any:
    raw = fields.get(name, "").strip()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{name} is not valid JSON: {exc.msg}") from exc


# The spellings a boolean form field accepts: the same words FastAPI takes in a query
# string (hangupActive), so that every flag of the API reads alike.
_TRUE = frozenset(("true", "1", "on", "yes"))
_FALSE = frozenset(("", "false", "0", "off", "no"))


def _flag(fields: dict[str, str], name: str) -> bool:
    raw = fields.get(name, "").strip().lower()
    if raw in _FALSE:
        return False
    if raw in _TRUE:
        return True
    raise BadRequest(f"{name} must be true or false (also accepted: 1/0, on/off, yes/no)")


def _accepting_options(
    problems: list[ingest.RowProblem], options: ingest.IngestOptions
) -> list[str]:
    """The upload options under which a refused file would be taken (as far as its first
    problems show): `dedupe` for repeated numbers, `defaultCountry` for numbers without
    a country code, `skipInvalid` for rows that cannot be called."""
    accept: list[str] = []
    duplicates = [p for p in problems if p.reason.startswith("duplicate of row")]
    invalid = [p for p in problems if p not in duplicates]
    if duplicates and not (options.dedupe or options.skip_invalid):
        accept.append("dedupe")
    if options.default_region is None and any("no country code" in p.reason for p in invalid):
        accept.append("defaultCountry")
    if invalid and not options.skip_invalid:
        accept.append("skipInvalid")
    return accept


_OPTION_WORDS = {
    "dedupe": "dedupe=true keeps the first row of each repeated number",
    "defaultCountry": "defaultCountry=<ISO code, e.g. US> reads numbers without +",
    "skipInvalid": "skipInvalid=true leaves the invalid rows out and queues the rest",
}


def _region(raw: str | None) -> str | None:
    if not raw or not raw.strip():
        return None
    code = raw.strip().upper()
    if not is_known_region(code):
        raise BadRequest(f"defaultCountry {raw!r} is not a known ISO 3166 country code")
    return code


@router.get("", summary="List batches (extension)", responses=_ERRORS)
async def list_batches(
    workspace: Workspace,
    db: Db,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    async with db.read() as conn:
        total = await batches.count_batches(conn, workspace)
        rows = await batches.list_batches(conn, workspace, limit=limit, offset=(page - 1) * limit)
    return {
        "batches": [
            {
                "id": b.id,
                "status": b.status,
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


async def _load(db: Db, workspace: str, batch_id: str) -> tuple[Any, Any, Any]:
    async with db.read() as conn:
        batch = await batches.get_batch(conn, workspace, batch_id)
        if batch is None:
            raise BatchNotFound(batch_id)
        tally = await counters.tally(conn, batch_id)
        recent = await calls.recent_finished(conn, batch_id)
    return batch, tally, recent


@router.get("/{batchId}", response_model=None, responses=_ok(schemas.BatchResponse))
async def get_batch(batchId: str, workspace: Workspace, db: Db) -> dict[str, Any]:
    batch, tally, recent = await _load(db, workspace, batchId)
    return schemas.batch_response(batch, tally, recent, now_ms())


@router.get("/{batchId}/status", response_model=None, responses=_ok(schemas.ProgressResponse))
async def get_progress(batchId: str, workspace: Workspace, db: Db) -> dict[str, Any]:
    batch, tally, recent = await _load(db, workspace, batchId)
    return schemas.progress_response(batch, tally, recent)


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
                "`result`, so a client can read results a page at a time"
            ),
        ),
    ] = "",
) -> dict[str, Any]:
    wanted = _status_filter(status)
    with_result = _include_result(include)
    async with db.read() as conn:
        batch = await batches.get_batch(conn, workspace, batchId)
        if batch is None:
            raise BatchNotFound(batchId)
        tally = await counters.tally(conn, batchId)
        total = tally.total if wanted == "all" else tally.wire(wanted)
        pages = (total + limit - 1) // limit
        if page > max(pages, 1):
            raise BadRequest(f"page {page} is past the last page ({max(pages, 1)})")
        states = None if wanted == "all" else states_for_wire(wanted)
        rows = await calls.page(
            conn, batchId, states=states, offset=(page - 1) * limit, limit=limit
        )
    summary = schemas.counts(tally)
    items = [schemas.call_item(r) for r in rows]
    if with_result:
        for item, r in zip(items, rows, strict=True):
            item["attempts"] = r.attempt
            if r.status == CallState.COMPLETED and r.result is not None:
                item["result"] = r.result
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


def _include_result(include: str) -> bool:
    wanted = include.strip().lower()
    if wanted not in ("", "result"):
        raise BadRequest(f"Unknown include {include!r}; the one value is `result`")
    return wanted == "result"


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
)
async def get_call(batchId: str, jobId: str, workspace: Workspace, db: Db) -> dict[str, Any]:
    parsed = parse_job_id(jobId)
    async with db.read() as conn:
        batch = await batches.get_batch(conn, workspace, batchId)
        if batch is None or parsed is None or parsed[0] != batchId:
            raise CallNotFound(batchId, jobId)
        row = await calls.get(conn, batchId, parsed[1])
    if row is None:
        raise CallNotFound(batchId, jobId)
    return schemas.call_detail(row)


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
