"""The wire contract: response models (for OpenAPI) and the functions that build the
payloads. Field names, units (ms timestamps, seconds) and status words follow Trillet's
batch-calls API; fields marked "extension" are dialbatch's additive ones.

Absent values are omitted from call objects, as the contract's examples show; the
progress object keeps `completedTime: null`, as its example does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dialbatch.domain.ids import job_id
from dialbatch.domain.states import CallState, wire_status
from dialbatch.store.attempt_history import AttemptRecord
from dialbatch.store.batches import Batch
from dialbatch.store.calls import CallRow
from dialbatch.store.counters import Tally
from dialbatch.store.gate_summary import GateSummary


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


class FailureStop(BaseModel):
    """extension: the automatic stop on failure spikes. The batch pauses itself when at
    least `failedShare` of its last `lastDials` dials (ended within `withinSeconds`, after
    its last resume) failed at the network or provider. Fields left out take the default."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    lastDials: int = Field(20, ge=1, le=1000)
    failedShare: float = Field(0.5, gt=0, le=1)
    withinSeconds: int = Field(120, ge=1, le=86400)


class TimeZoneCount(_Model):
    zones: list[str] = Field(description="the candidate IANA zones of these numbers")
    calls: int


class RunEstimate(_Model):
    startAt: int = Field(description="scheduledAt, or now (ms)")
    finishAt: int = Field(description="when the last call would end (ms)")
    durationSeconds: float
    callsPerSecond: float = Field(description="the pace the run would go at")
    limitedBy: str = Field(
        description='"rate", "concurrency" (the workspace\'s cap) or "batchConcurrency" '
        "(the batch's maxConcurrency)"
    )
    maxConcurrentCalls: int = Field(description="the workspace's concurrency cap")
    maxConcurrency: int | None = Field(None, description="the batch's own cap, if sent")
    waitingSeconds: float = Field(
        0.0,
        description="of durationSeconds, the time the calling window is closed for every "
        "call left (0 without a window)",
    )
    neverInWindow: int = Field(
        0,
        description="calls the calling window never opens for (no known zone under a "
        "recipient window): never dialed, left out of the time",
    )
    workspaceCallsPerSecond: float = Field(description="the workspace's calls-per-second rate")
    callSeconds: float = Field(description="a dial's typical length, start to end")
    slotSeconds: float = Field(
        0.0,
        description="how long a call holds a slot in the estimate: callSeconds, or longer "
        "when the agent's latest batch went below its rate (cap / latestPace)",
    )
    latestPace: float | None = Field(
        None, description="dials per second the agent's latest batch achieved (pauses left out)"
    )
    callSecondsFrom: str = Field(description='"history" (the agent\'s latest dials) or "default"')
    historyDials: int = Field(description="how many of the agent's dials it was learned from")


class ValidateResponse(_Model):
    """extension: POST /v1/api/batch-calls/validate."""

    valid: bool = Field(description="whether the same create request would be accepted")
    message: str
    totalRows: int
    validRows: int
    invalidRows: int
    duplicateRows: int
    suppressedRows: int = Field(
        0,
        description="extension: rows whose number is on the workspace's suppression list "
        "(counted in invalidRows too: the create refuses or skips them like invalid rows)",
    )
    callsToCreate: int = Field(description="calls the create would make (0 if refused)")
    problems: list[dict[str, Any]] = Field(
        description="the first 100 invalid or repeated rows, numbered as the create numbers them"
    )
    problemCount: int
    timeZones: list[TimeZoneCount]
    unknownTimeZone: int = Field(description="valid numbers no time zone is known for")
    outsideWindowAtStart: int = Field(
        0,
        description="valid calls whose callingWindow is closed at estimate.startAt: they "
        "wait for its opening (0 without a window)",
    )
    windowCannotPlace: int = Field(
        0,
        description="valid calls the recipient-zone callingWindow cannot place (no known "
        "time zone): the gate would end them failed, never dialed",
    )
    estimate: RunEstimate


class GateCounts(_Model):
    """extension: what the pre-dial gate holds back in the batch now (docs/compliance.md)."""

    waitingForWindow: int = Field(
        description="waiting calls held until their calling window opens (kind outside_window)"
    )
    waitingForCap: int = Field(
        description="waiting calls held until a frequency cap allows a dial (kind capped)"
    )
    refused: dict[str, int] = Field(
        description="calls the gate ended failed, never dialed, by kind (suppressed, no_zone, "
        "no_consent, undecidable; outside_window or capped when nothing opens within a year)"
    )


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
    pauseReason: str | None = Field(
        None, description="extension: why the batch paused itself (a failure spike)"
    )
    failureStop: FailureStop | None = Field(
        None, description="extension: the automatic-stop rule the batch runs under"
    )
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
    retryPolicy: dict[str, Any] | None = Field(
        None,
        description=(
            "extension: the retry rule each outcome (busy, no-answer, voicemail, failed, "
            "provider-error) of the batch's calls follows, with its own retryPolicy, "
            "smartCallbackConfig and the connection retries resolved. See docs/retries.md"
        ),
    )
    requireConsent: bool = Field(
        False,
        description="extension: rows without consent_basis and consent_at were refused "
        "(the batch's requireConsent or the workspace's)",
    )
    complianceProfile: str = Field(
        "none",
        description=(
            "extension: the rule pack the batch was created under (none, us, ca): its own or"
            " its workspace's at the time. At dial time it obeys this and its workspace's"
            " current profile, both. See docs/compliance.md"
        ),
    )
    gate: GateCounts | None = Field(
        None, description="extension: what the pre-dial gate holds back or refused, counted now"
    )
    maxConcurrency: int | None = Field(
        None,
        description=(
            "extension: at most this many of the batch's calls are live at once (a value "
            "above the workspace's cap means the workspace's cap); null: only the "
            "workspace's cap"
        ),
    )
    priority: int = Field(
        0,
        description=(
            "extension: -100 to 100, higher first: the workspace's capacity goes to the due "
            "calls of its highest-priority batches first (a lower priority may wait until "
            "they are done); equal priorities share fairly"
        ),
    )


class BatchLimitsResponse(_Model):
    """extension: PATCH /v1/api/batch-calls/{batchId}."""

    batchId: str
    maxConcurrency: int | None = Field(description="the batch's own cap; null: none")
    priority: int
    message: str


class ProgressResponse(Progress):
    status: str
    isComplete: bool
    pausedAt: int | None = Field(None, description="extension: when the batch was paused")
    workspacePaused: bool = Field(False, description="extension: the whole workspace is paused")
    pauseReason: str | None = Field(
        None, description="extension: why the batch paused itself (a failure spike)"
    )


class AttemptEntry(_Model):
    """One dial of a call, from the attempts ledger (extension)."""

    attempt: int = Field(description="the dial's number, from 1")
    startTime: int = Field(description="when the dial was started (ms)")
    endTime: int | None = Field(None, description="when it ended (ms); null while live")
    outcome: str | None = Field(
        None,
        description="completed, busy, no-answer, voicemail, failed or canceled; null while live",
    )
    duration: float | None = Field(None, description="talk time in seconds, when answered")
    provider: str
    providerCallId: str | None = None
    providerCode: str | None = Field(None, description="SIP code or provider status")
    fromNumber: str | None = Field(None, description="the caller number the dial used")
    gateBefore: list[dict[str, Any]] = Field(
        default_factory=list,
        description="extension: the pre-dial gate's holds between the previous dial (or the "
        "upload) and this one, oldest first, each as gateDecision with afterDials",
    )


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
    attemptHistory: list[AttemptEntry] | None = Field(
        None, description="extension: every dial of the call (include=attempts)"
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


class Consent(_Model):
    basis: str | None = Field(None, description="the upload's consent_basis")
    at: int | None = Field(None, description="the upload's consent_at, epoch milliseconds")


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
    attemptHistory: list[AttemptEntry] = Field(
        default_factory=list, description="extension: every dial, first first"
    )
    gateDecision: dict[str, Any] | None = Field(
        None,
        description="extension: the pre-dial gate's last decision when it held the call back "
        "or refused it: {kind, message, rule?, source?, zone?, until?, at}; kept after a later "
        "dial (docs/compliance.md)",
    )
    gateHistory: list[dict[str, Any]] = Field(
        default_factory=list,
        description="extension: every hold and refusal of the pre-dial gate, oldest first "
        "(the latest 100), each as gateDecision plus afterDials, the dials made before it: "
        "the ones before a dial are also that dial's gateBefore; the ones after the last "
        "dial say why the call waits now",
    )
    timezone: str | None = Field(
        None,
        description="extension: the recipient's own IANA zone from the upload's timezone "
        "column; the gate uses it instead of the number's zones. Absent: inferred",
    )
    consent: Consent | None = Field(
        None, description="extension: the consent record from the upload; absent: none given"
    )


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
        "requireConsent": batch.require_consent,
        "complianceProfile": batch.compliance_profile,
        "maxConcurrency": batch.max_concurrency,
        "priority": batch.priority,
    }


def gate_counts(summary: GateSummary) -> dict[str, Any]:
    return {
        "waitingForWindow": summary.waiting_for_window,
        "waitingForCap": summary.waiting_for_cap,
        "refused": summary.refused,
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


def attempt_entry(a: AttemptRecord, gate_log: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """One dial, with the gate's decisions taken since the dial before it (`gate_log`: the
    call's, each with `afterDials`)."""
    return {
        "attempt": a.n,
        "startTime": a.started_at,
        "endTime": a.ended_at,
        "outcome": a.outcome,
        "duration": a.duration_s,
        "provider": a.provider,
        "providerCallId": a.provider_call_id,
        "providerCode": a.provider_code,
        "fromNumber": a.from_number,
        "gateBefore": [dict(d) for d in gate_log if d["afterDials"] == a.n - 1],
    }


def call_detail(
    row: CallRow,
    history: list[AttemptRecord] | None = None,
    gate_log: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
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
    if row.gate_decision is not None:
        detail["gateDecision"] = row.gate_decision
    if row.timezone is not None:
        detail["timezone"] = row.timezone
    if row.consent_basis is not None or row.consent_at is not None:
        detail["consent"] = {"basis": row.consent_basis, "at": row.consent_at}
    detail["attemptHistory"] = [attempt_entry(a, gate_log) for a in history or []]
    detail["gateHistory"] = [dict(d) for d in gate_log]
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
