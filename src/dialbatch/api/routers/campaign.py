"""Steering a running campaign (extensions): pause and resume a batch or the whole
workspace, and retry a batch's failed calls as a new batch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from dialbatch.api import batch_create, campaign_wire, idempotency, schemas
from dialbatch.api.auth import Db, Workspace
from dialbatch.api.campaign_wire import MAX_CONCURRENCY_DESCRIPTION, PRIORITY_DESCRIPTION
from dialbatch.api.errors import BadRequest, BatchNotFound, Conflict
from dialbatch.domain import batch_limits
from dialbatch.domain import failure_stop as failure_stop_rules
from dialbatch.domain.ids import new_batch_id
from dialbatch.domain.outcomes import Outcome
from dialbatch.store import (
    batches,
    failure_stop,
    pauses,
    retry_failed,
    retry_policies,
    workspaces,
)
from dialbatch.store.retry_failed import FailedFilter

router = APIRouter(prefix="/v1/api", tags=["campaign (extension)"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorBody},
    401: {"model": schemas.ErrorBody},
    404: {"model": schemas.ErrorBody},
    409: {"model": schemas.ErrorBody},
}
MAX_FILTER_BODY_BYTES = 16 * 1024
MAX_ERROR_CONTAINS = 200
# Outcomes a failed call's last dial can have.
FAILED_OUTCOMES = tuple(o.value for o in Outcome if o is not Outcome.COMPLETED)


# -- pause / resume a batch -------------------------------------------------------------


@router.post(
    "/batch-calls/{batchId}/pause",
    responses=_ERRORS,
    summary="Pause a batch (extension)",
    description=(
        "No new dial starts (a call claimed meanwhile goes back to waiting); live calls run "
        "to their end; retries that fall due wait. Idempotent. 409 for a finished or "
        "cancelled batch."
    ),
)
async def pause_batch(batchId: str, workspace: Workspace, db: Db) -> dict[str, Any]:
    return await _set_pause(batchId, workspace, db, paused=True)


@router.post(
    "/batch-calls/{batchId}/resume",
    responses=_ERRORS,
    summary="Resume a paused batch (extension)",
    description="Dialing goes on where it stopped. Idempotent. 409 for a finished or "
    "cancelled batch.",
)
async def resume_batch(
    request: Request, batchId: str, workspace: Workspace, db: Db
) -> dict[str, Any]:
    body = await _set_pause(batchId, workspace, db, paused=False)
    request.app.state.wake()
    return body


async def _set_pause(batch_id: str, workspace: str, db: Db, *, paused: bool) -> dict[str, Any]:
    change = pauses.pause_batch if paused else pauses.resume_batch
    try:
        result = await change(db, workspace, batch_id)
    except pauses.BatchNotRunning as exc:
        verb = "pause" if paused else "resume"
        raise Conflict(f"Batch {batch_id} is already {exc.status}; nothing to {verb}") from exc
    if result is None:
        raise BatchNotFound(batch_id)
    async with db.read() as conn:
        body = await campaign_wire.overlay(conn, result.batch, {"batchId": batch_id}, links=False)
    if paused:
        done = "paused" if result.changed else "was already paused"
        body["message"] = f"Batch {done}: no new call is dialed; active calls run to their end"
    else:
        done = "resumed" if result.changed else "was not paused"
        still = " (the workspace is still paused)" if body["workspacePaused"] else ""
        body["message"] = f"Batch {done}{still}"
    body["changed"] = result.changed
    return body


# -- a running batch's limits ----------------------------------------------------------


@router.patch(
    "/batch-calls/{batchId}",
    response_model=None,
    responses={**_ERRORS, 200: {"model": schemas.BatchLimitsResponse}},
    summary="Change a running batch's maxConcurrency or priority (extension)",
    description=(
        'A JSON body with either or both: `{"maxConcurrency": 5, "priority": 10}`; '
        "`maxConcurrency: null` removes the batch's own cap. Applies from the next claim "
        "(live calls above a lowered cap run to their end). 409 for a finished or cancelled "
        "batch; 400 naming the field for a bad value."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "minProperties": 1,
                        "properties": {
                            "maxConcurrency": {
                                "type": ["integer", "null"],
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
                }
            },
        }
    },
)
async def set_batch_limits(
    request: Request, batchId: str, workspace: Workspace, db: Db
) -> dict[str, Any]:
    body, _ = await batch_create.read_json_body(request, MAX_FILTER_BODY_BYTES)
    try:
        changes = batch_limits.parse_changes(body)
    except batch_limits.InvalidBatchLimit as exc:
        raise BadRequest(str(exc)) from exc
    try:
        batch = await batches.set_limits(db, workspace, batchId, changes)
    except batches.BatchAlreadyFinished as exc:
        raise Conflict(
            f"Batch {batchId} is already {exc.status}; its limits cannot change"
        ) from exc
    if batch is None:
        raise BatchNotFound(batchId)
    request.app.state.wake()
    return {
        "batchId": batchId,
        "maxConcurrency": batch.max_concurrency,
        "priority": batch.priority,
        "message": "Batch limits changed; the next claim applies them",
    }


# -- pause / resume the workspace -------------------------------------------------------


@router.get(
    "/workspace", responses=_ERRORS, summary="The workspace's pause state and rules (extension)"
)
async def get_workspace(workspace: Workspace, db: Db) -> dict[str, Any]:
    async with db.read() as conn:
        paused_at = await pauses.workspace_paused_at(conn, workspace)
        shown = await campaign_wire.workspace_rules(conn, workspace)
        rule = await failure_stop.workspace_rule(conn, workspace)
        retry_rules = await retry_policies.workspace_default(conn, workspace)
        require_consent = await workspaces.requires_consent(conn, workspace)
    return {
        "workspaceId": workspace,
        "paused": paused_at is not None,
        "pausedAt": paused_at,
        # dialing rules (routers/workspace_settings.py): PATCH /v1/api/workspace
        **shown,
        "failureStop": rule.to_json(),
        "retryPolicy": None if retry_rules is None else retry_rules.to_json(),
        "requireConsent": require_consent,
    }


@router.put(
    "/workspace/failure-stop",
    responses=_ERRORS,
    summary="Set the workspace's automatic stop on failure spikes (extension)",
    description=(
        "The rule every batch of the workspace runs under unless it set its own "
        "(`failureStop` on create). Fields left out take the default (at least half of the "
        'last 20 dials failed within 2 minutes); `{"enabled": false}` turns it off; `null` '
        "(or no body) resets the default. Applies to running batches at their next failed dial."
    ),
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/FailureStop"},
                            {"type": "null"},
                        ]
                    }
                }
            },
        }
    },
)
async def set_failure_stop(request: Request, workspace: Workspace, db: Db) -> dict[str, Any]:
    body, _ = await batch_create.read_json_body(request, MAX_FILTER_BODY_BYTES, allow_empty=True)
    try:
        rule = None if body is None else failure_stop_rules.parse(body)
    except failure_stop_rules.InvalidFailureStop as exc:
        raise BadRequest(str(exc)) from exc
    async with db.write() as conn:
        await failure_stop.set_workspace_rule(conn, workspace, rule)
    return {
        "workspaceId": workspace,
        "failureStop": (rule or failure_stop_rules.DEFAULT).to_json(),
        "message": "Batches without their own failureStop follow this rule from now on",
    }


@router.post(
    "/workspace/pause",
    responses=_ERRORS,
    summary="Pause every batch of the workspace (extension)",
    description="An emergency stop: no batch of the workspace starts a new dial until "
    "/workspace/resume; live calls run to their end. Idempotent.",
)
async def pause_workspace(workspace: Workspace, db: Db) -> dict[str, Any]:
    return await _set_workspace_pause(workspace, db, paused=True)


@router.post(
    "/workspace/resume",
    responses=_ERRORS,
    summary="Resume the workspace's batches (extension)",
    description="Batches paused one by one stay paused. Idempotent.",
)
async def resume_workspace(request: Request, workspace: Workspace, db: Db) -> dict[str, Any]:
    body = await _set_workspace_pause(workspace, db, paused=False)
    request.app.state.wake()
    return body


async def _set_workspace_pause(workspace: str, db: Db, *, paused: bool) -> dict[str, Any]:
    async with db.write() as conn:
        paused_at, changed = await pauses.set_workspace_pause(conn, workspace, paused=paused)
    if paused:
        message = "Workspace paused: no batch starts a new dial; active calls run to their end"
    else:
        message = "Workspace resumed: batches not paused one by one dial again"
    return {
        "workspaceId": workspace,
        "paused": paused_at is not None,
        "pausedAt": paused_at,
        "changed": changed,
        "message": message,
    }


# -- retry failed --------------------------------------------------------------------------


@router.post(
    "/batch-calls/{batchId}/retry-failed",
    response_model=None,
    responses={
        **_ERRORS,
        200: {"model": schemas.StartBatchResponse},
        422: {"model": schemas.ErrorBody},
    },
    summary="Retry a batch's failed calls as a new batch (extension)",
    description=(
        "Creates a new batch of the calls that are `failed` now (on a running batch: those "
        "failed so far), with their original phone number and row variables, the same "
        "agent and smartCallbackConfig, starting now. Optional JSON body: "
        '`{"outcome": "busy" | [...], "errorContains": "text"}`. 400 when no call matches.'
    ),
    openapi_extra={
        "parameters": [campaign_wire.IDEMPOTENCY_PARAMETER],
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "outcome": {
                                "oneOf": [
                                    {"type": "string", "enum": list(FAILED_OUTCOMES)},
                                    {
                                        "type": "array",
                                        "items": {"type": "string", "enum": list(FAILED_OUTCOMES)},
                                    },
                                ]
                            },
                            "errorContains": {"type": "string", "maxLength": MAX_ERROR_CONTAINS},
                        },
                    }
                }
            },
        },
    },
)
async def retry_failed_calls(
    request: Request, batchId: str, workspace: Workspace, db: Db
) -> dict[str, Any] | JSONResponse:
    body, digest = await batch_create.read_json_body(
        request, MAX_FILTER_BODY_BYTES, allow_empty=True
    )
    wanted = _filter(body)
    async with db.read() as conn:
        parent = await batches.get_batch(conn, workspace, batchId)
        if parent is None:
            raise BatchNotFound(batchId)
        if not await retry_failed.count_failed(conn, parent, wanted):
            raise BadRequest(
                f"Nothing to retry: batch {batchId} has no failed call"
                + (" matching the filter" if wanted.outcomes or wanted.error_contains else "")
            )

    async def create(complete: idempotency.Complete) -> dict[str, Any]:
        new_id = new_batch_id()
        async with db.write() as conn:
            total = await retry_failed.create_retry_batch(conn, parent, wanted, batch_id=new_id)
            if not total:  # they were all retried away meanwhile: nothing is kept
                raise BadRequest(f"Nothing to retry: batch {batchId} has no failed call now")
            response = {
                "batchId": new_id,
                "totalCalls": total,
                "status": "queued",
                "message": f"Batch created with {total} failed calls of {batchId}; "
                "dialing starts now",
                "parentBatchId": batchId,
            }
            await complete(conn, response)
        request.app.state.wake()
        return response

    key = idempotency.read_key(request)
    return await idempotency.run_once(db, workspace, key, digest, create)


def _filter(body: Any) -> FailedFilter:
    if body is None:
        return FailedFilter()
    if not isinstance(body, dict):
        raise BadRequest('The body must be a JSON object: {"outcome", "errorContains"}')
    unknown = sorted(set(body) - {"outcome", "errorContains"})
    if unknown:
        raise BadRequest(f"Unknown field(s) {unknown}; the fields are: outcome, errorContains")
    raw = body.get("outcome")
    outcomes = [raw] if isinstance(raw, str) else raw
    if outcomes is None:
        outcomes = []
    if not isinstance(outcomes, list) or not all(isinstance(o, str) for o in outcomes):
        raise BadRequest("outcome must be a string or an array of strings")
    bad = [o for o in outcomes if o not in FAILED_OUTCOMES]
    if bad:
        raise BadRequest(f"outcome {bad[0]!r} is not one of: {', '.join(FAILED_OUTCOMES)}")
    text = body.get("errorContains")
    if text is not None and (not isinstance(text, str) or len(text) > MAX_ERROR_CONTAINS):
        raise BadRequest(
            f"errorContains must be a string of at most {MAX_ERROR_CONTAINS} characters"
        )
    return FailedFilter(outcomes=tuple(outcomes), error_contains=text or None)
