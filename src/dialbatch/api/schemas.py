"""The wire contract: response models (for OpenAPI) and the functions that build the
payloads. Field names, units (ms timestamps, seconds) and status words follow Trillet's
batch-calls API; fields marked "extension" are dialbatch's additive ones.

Absent values are omitted from call objects, as the contract's examples show; the
progress object keeps `completedTime: null`, as its example does.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dialbatch.domain.ids import job_id
from dialbatch.domain.states import CallState, wire_status
from dialbatch.store.batches import Batch
from dialbatch.store.calls import CallRow
from dialbatch.store.counters import Tally


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(_Model):
    error: str
    message: str | None = None


class CallNotFoundBody(_Model):
    status: str = "not_found"
    error: str


class StartBatchResponse(_Model):
    batchId: str
    totalCalls: int
    status: str = "queued"
    message: str
    skipped: int = Field(0, description="extension: rows skipped with skipInvalid=true")
    duplicatesRemoved: int = Field(0, description="extension: rows dropped with dedupe=true")
    skippedRows: list[dict[str, Any]] = Field(
        default_factory=list,
        description="extension: the rows skipped with skipInvalid=true and why (the first 100)",
    )
    parentBatchId: str | None = Field(
        None, description="extension: the batch whose failed calls this one retries"
    )


class CancelDetails(_Model):
    completedCalls: int
    failedCalls: int
    cancelledCalls: int
    totalCalls: int


class CancelResponse(_Model):
    batchId: str
    status: str = "cancelled"
    message: str
    details: CancelDetails
    hungUpCalls: int | None = Field(
        None, description="extension: hang-ups requested (hangupActive=true)"
    )


class RecentCall(_Model):
    jobId: str
    status: str
    phone_number: str
    completedAt: int | None = None
    failedAt: int | None = None
    error: str | None = None
    duration: float | None = None


class Progress(_Model):
    waiting: int
    active: int
    completed: int
    failed: int
    total: int
    cancelled: int = Field(0, description="extension: calls cancelled before they ran")
    startTime: int | None
    lastCompletedTime: int | None
    completedTime: int | None
    averageCallDuration: float
    recent_calls: list[RecentCall]


class BatchResponse(_Model):
    id: str
    status: str
    isComplete: bool
    totalCalls: int
    progress: Progress
    timestamp: int
    agentId: str | None = Field(None, description="extension: the agent making the calls")
    createdAt: int | None = Field(None, description="extension")
    scheduledAt: int | None = Field(None, description="extension: null when it started at once")
    cancelledAt: int | None = Field(None, description="extension")
    pausedAt: int | None = Field(None, description="extension: when the batch was paused")
    workspacePaused: bool = Field(False, description="extension: the whole workspace is paused")
    parentBatchId: str | None = Field(None, description="extension: the batch it retries")
    retryBatchIds: list[str] = Field(
        default_factory=list, description="extension: batches that retry its failed calls"
    )
    callingWindow: dict[str, Any] | None = Field(
        None,
        description=(
            "extension: the batch's calling window as validated (timezone, days, skipDates);"
            " null when it has none. See docs/compliance.md"
        ),
    )


class ProgressResponse(Progress):
    status: str
    isComplete: bool
    pausedAt: int | None = Field(None, description="extension: when the batch was paused")
    workspacePaused: bool = Field(False, description="extension: the whole workspace is paused")


class CallItem(_Model):
    jobId: str
    status: str
    phone_number: str
    startTime: int | None = None
    endTime: int | None = None
    duration: float | None = None
    error: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    attempts: int | None = Field(None, description="extension: dials made (include=result)")
    result: dict[str, Any] | None = Field(
        None, description="extension: the completed call's result (include=result)"
    )


class Pagination(_Model):
    page: int
    limit: int
    total: int
    totalPages: int
    hasNext: bool
    hasPrev: bool


class Summary(_Model):
    total: int
    waiting: int
    active: int
    completed: int
    failed: int
    cancelled: int = Field(0, description="extension")


class CallList(_Model):
    calls: list[CallItem]
    pagination: Pagination
    summary: Summary


class CallResult(_Model):
    callId: str | None = None
    transcript: str | None = None
    outcome: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class CallDetail(_Model):
    jobId: str
    status: str
    phone_number: str
    startTime: int | None = None
    endTime: int | None = None
    duration: float | None = None
    error: str | None = None
    result: CallResult | None = None
    attempts: int = Field(0, description="extension: dials made so far")


class BatchSummary(_Model):
    id: str
    status: str
    agentId: str
    totalCalls: int
    createdAt: int
    scheduledAt: int | None
    startTime: int | None
    completedTime: int | None


class BatchPage(_Model):
    """The batches listing (extension), newest first."""

    batches: list[BatchSummary]
    pagination: Pagination


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def counts(t: Tally) -> dict[str, int]:
    return {
        "waiting": t.wire("waiting"),
        "active": t.wire("active"),
        "completed": t.wire("completed"),
        "failed": t.wire("failed"),
        "total": t.total,
        "cancelled": t.wire("cancelled"),
    }


def is_complete(batch: Batch, t: Tally) -> bool:
    """No call of the batch can run any more, and the batch is closed. Follows the batch's
    own record, so that `isComplete` never disagrees with `status` or `completedTime` (a
    batch whose last calls just ended reads as not complete until it is closed, a moment
    later: on PostgreSQL the closing may be the re-check after the last outcome's commit)."""
    if batch.status in ("completed", "failed"):
        return True
    return batch.status == "cancelled" and batch.completed_at is not None and t.open == 0


def recent_call(row: CallRow) -> dict[str, Any]:
    status = wire_status(row.status)
    item: dict[str, Any] = {
        "jobId": job_id(row.batch_id, row.seq),
        "status": status,
        "phone_number": row.phone_number,
    }
    if status == "completed":
        item["completedAt"] = row.ended_at
    else:
        item["failedAt"] = row.ended_at
        item["error"] = row.error
    if row.duration_s is not None:
        item["duration"] = row.duration_s
    return _drop_none(item)


def progress(batch: Batch, t: Tally, recent: list[CallRow]) -> dict[str, Any]:
    return {
        **counts(t),
        "startTime": batch.started_at,
        "lastCompletedTime": t.last_completed_at,
        "completedTime": batch.completed_at,
        "averageCallDuration": t.average_duration_s,
        "recent_calls": [recent_call(r) for r in recent],
    }


def batch_response(batch: Batch, t: Tally, recent: list[CallRow], now: int) -> dict[str, Any]:
    return {
        "id": batch.id,
        "status": batch.status,
        "isComplete": is_complete(batch, t),
        "totalCalls": batch.total_calls,
        "progress": progress(batch, t, recent),
        "timestamp": now,
        # extensions
        "agentId": batch.agent_id,
        "createdAt": batch.created_at,
        "scheduledAt": batch.scheduled_at,
        "cancelledAt": batch.cancelled_at,
        "callingWindow": batch.calling_window,
    }


def progress_response(batch: Batch, t: Tally, recent: list[CallRow]) -> dict[str, Any]:
    return {
        "status": batch.status,
        "isComplete": is_complete(batch, t),
        **progress(batch, t, recent),
    }


def _times(row: CallRow) -> dict[str, Any]:
    status = row.status
    finished = status in (CallState.COMPLETED, CallState.FAILED, CallState.CANCELLED)
    out: dict[str, Any] = {
        "startTime": row.started_at if status != CallState.WAITING else None,
        "endTime": row.ended_at if finished else None,
    }
    if status == CallState.COMPLETED:
        out["duration"] = row.duration_s
    if status in (CallState.FAILED, CallState.CANCELLED):
        out["error"] = row.error or ("Batch cancelled" if status == CallState.CANCELLED else None)
    return out


def call_item(row: CallRow) -> dict[str, Any]:
    return _drop_none(
        {
            "jobId": job_id(row.batch_id, row.seq),
            "status": wire_status(row.status),
            "phone_number": row.phone_number,
            **_times(row),
            "metadata": json.loads(row.metadata),
        }
    )


def call_detail(row: CallRow) -> dict[str, Any]:
    detail = _drop_none(
        {
            "jobId": job_id(row.batch_id, row.seq),
            "status": wire_status(row.status),
            "phone_number": row.phone_number,
            **_times(row),
            "result": row.result if row.status == CallState.COMPLETED else None,
        }
    )
    detail["attempts"] = row.attempt
    return detail


def pagination(page: int, limit: int, total: int) -> dict[str, Any]:
    pages = (total + limit - 1) // limit
    return {
        "page": page,
        "limit": limit,
        "total": total,
        "totalPages": pages,
        "hasNext": page < pages,
        "hasPrev": page > 1,
    }


class RateLimitError(_Model):
    code: str = Field(description='"rate_limit_exceeded"')
    message: str
    reset_at: str = Field(description="when a request is admitted again, ISO 8601 UTC")


class RateLimitBody(BaseModel):
    """429, in Trillet's shape (not the `{"error", "message"}` of other errors)."""

    model_config = ConfigDict(extra="forbid")

    error: RateLimitError
