"""The shapes of the API's responses, as `TypedDict`s: plain dicts at run time, checked
by type checkers. Timestamps are milliseconds since the epoch; durations are seconds.

Fields marked `NotRequired` may be absent: the contract omits unknown values from call
objects, and dialbatch's extensions are absent from other servers of the same API.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class StartBatchResult(TypedDict):
    """`POST /v1/api/batch-calls`."""

    batchId: str
    totalCalls: int
    status: str
    message: str
    skipped: NotRequired[int]
    duplicatesRemoved: NotRequired[int]
    skippedRows: NotRequired[list[dict[str, Any]]]
    parentBatchId: NotRequired[str]  # extension: retry-failed's new batch names its parent


class RecentCall(TypedDict):
    """An item of `recent_calls`: a call that finished lately."""

    jobId: str
    status: str
    phone_number: str
    completedAt: NotRequired[int]
    failedAt: NotRequired[int]
    error: NotRequired[str]
    duration: NotRequired[float]


class Progress(TypedDict):
    """Counts and timings of a batch's calls."""

    waiting: int
    active: int
    completed: int
    failed: int
    total: int
    cancelled: NotRequired[int]
    startTime: int | None
    lastCompletedTime: int | None
    completedTime: int | None
    averageCallDuration: float
    recent_calls: list[RecentCall]


class BatchProgress(Progress):
    """`GET /v1/api/batch-calls/{batchId}/status`: the progress, flat, with the status."""

    status: str
    isComplete: bool
    # extension: set while the batch (or its whole workspace) is paused
    pausedAt: NotRequired[int | None]
    workspacePaused: NotRequired[bool]
    pauseReason: NotRequired[str | None]  # set when it paused itself on a failure spike


class FailureStop(TypedDict):
    """The automatic stop on failure spikes (extension): see docs/api.md."""

    enabled: bool
    lastDials: int
    failedShare: float
    withinSeconds: int


class GateCounts(TypedDict):
    """What the pre-dial gate holds back in a batch now (extension; docs/compliance.md)."""

    waitingForWindow: int
    waitingForCap: int
    refused: dict[str, int]  # by kind: suppressed, no_zone, ...


class Batch(TypedDict):
    """`GET /v1/api/batch-calls/{batchId}`."""

    id: str
    status: str
    isComplete: bool
    totalCalls: int
    progress: Progress
    timestamp: int
    agentId: NotRequired[str]
    createdAt: NotRequired[int]
    scheduledAt: NotRequired[int | None]
    cancelledAt: NotRequired[int | None]
    # extensions: `status` reads "paused" while the batch or its workspace is paused
    pausedAt: NotRequired[int | None]
    workspacePaused: NotRequired[bool]
    pauseReason: NotRequired[str | None]
    failureStop: NotRequired[FailureStop]
    parentBatchId: NotRequired[str | None]
    retryBatchIds: NotRequired[list[str]]
    callingWindow: NotRequired[dict[str, Any] | None]  # extension: docs/compliance.md
    # extension: the rule each outcome follows, {"busy": {"retry", "maxDials",
    # "gapsSeconds", "counting"}, ...} (docs/retries.md)
    retryPolicy: NotRequired[dict[str, Any] | None]
    requireConsent: NotRequired[bool]  # extension: rows without consent were refused
    complianceProfile: NotRequired[str]  # extension: the profile it was created under
    gate: NotRequired[GateCounts]  # extension: docs/compliance.md
    maxConcurrency: NotRequired[int | None]  # extension: its own cap on live calls
    priority: NotRequired[int]  # extension: -100..100, higher first


class Call(TypedDict):
    """An item of a calls listing; `metadata` holds the CSV row's other columns."""

    jobId: str
    status: str
    phone_number: str
    startTime: NotRequired[int]
    endTime: NotRequired[int]
    duration: NotRequired[float]
    error: NotRequired[str]
    metadata: dict[str, Any]
    attempts: NotRequired[int]  # extension, with include_result=True
    result: NotRequired[dict[str, Any]]  # extension, with include_result=True (completed)
    attemptHistory: NotRequired[list[AttemptEntry]]  # extension, with include_attempts=True


class Pagination(TypedDict):
    page: int
    limit: int
    total: int
    totalPages: int
    hasNext: bool
    hasPrev: bool


class Summary(TypedDict):
    """Counts over the whole batch, whatever the listing's filter."""

    total: int
    waiting: int
    active: int
    completed: int
    failed: int
    cancelled: NotRequired[int]


class CallPage(TypedDict):
    """`GET /v1/api/batch-calls/{batchId}/calls`."""

    calls: list[Call]
    pagination: Pagination
    summary: Summary


class CallResult(TypedDict, total=False):
    """What the agent reported for a completed call."""

    callId: str
    transcript: str
    outcome: str
    metadata: dict[str, Any]


class AttemptEntry(TypedDict):
    """One dial of a call (extension): from the attempts ledger, first dial first."""

    attempt: int
    startTime: int
    endTime: int | None
    outcome: str | None
    duration: float | None
    provider: str
    providerCallId: str | None
    providerCode: str | None
    fromNumber: str | None
    # the pre-dial gate's holds since the dial before (each as gateDecision, with afterDials)
    gateBefore: NotRequired[list[dict[str, Any]]]


class Consent(TypedDict):
    """A recipient's consent record from the upload (extension)."""

    basis: str | None
    at: int | None  # epoch ms


class CallDetail(TypedDict):
    """`GET /v1/api/batch-calls/{batchId}/calls/{jobId}`."""

    jobId: str
    status: str
    phone_number: str
    startTime: NotRequired[int]
    endTime: NotRequired[int]
    duration: NotRequired[float]
    error: NotRequired[str]
    result: NotRequired[CallResult]
    attempts: NotRequired[int]
    # extension: the pre-dial gate's last hold or refusal ({kind, message, rule?, until?, at})
    gateDecision: NotRequired[dict[str, Any]]
    # extension: the row's own IANA zone and consent record ({basis, at}) from the upload
    timezone: NotRequired[str]
    consent: NotRequired[Consent]

    attemptHistory: NotRequired[list[AttemptEntry]]  # extension
    # extension: every hold and refusal of the gate, oldest first, each with afterDials
    gateHistory: NotRequired[list[dict[str, Any]]]


class CancelDetails(TypedDict):
    completedCalls: int
    failedCalls: int
    cancelledCalls: int
    totalCalls: int


class CancelResult(TypedDict):
    """`DELETE /v1/api/batch-calls/{batchId}`."""

    batchId: str
    status: str
    message: str
    details: CancelDetails
    # extension: hang-ups requested, only with hangup_active=True
    hungUpCalls: NotRequired[int]


class BatchSummary(TypedDict):
    """An item of the batches listing (extension)."""

    id: str
    status: str
    agentId: str
    totalCalls: int
    createdAt: int
    scheduledAt: int | None
    startTime: int | None
    completedTime: int | None


class BatchPage(TypedDict):
    """`GET /v1/api/batch-calls` (extension), newest first."""

    batches: list[BatchSummary]
    pagination: Pagination


class Agent(TypedDict):
    """An agent (extension): who makes the calls, through which provider."""

    id: str
    name: str
    provider: str
    providerConfig: dict[str, Any]
    fromNumbers: list[str]
    # extension: limits of some caller numbers: {"+1212...": {"callsPerSecond": 1, "perDay": 500}}
    callerNumberLimits: dict[str, dict[str, int]]
    createdAt: int
    # only in create_agent's answer: signs the agent's result reports (dialbatch.client.sign_result)
    signingSecret: NotRequired[str]


class AgentDetail(Agent):
    """`GET`/`PATCH /v1/api/agents/{agentId}` (extension): the agent with its warnings."""

    warnings: list[str]  # e.g. a pool of caller numbers smaller than the workspace's cap


class BatchLimits(TypedDict):
    """`PATCH /v1/api/batch-calls/{batchId}` (extension): the batch's limits now."""

    batchId: str
    maxConcurrency: int | None
    priority: int
    message: str


class PauseResult(TypedDict):
    """`POST /v1/api/batch-calls/{batchId}/pause` and `/resume` (extension)."""

    batchId: str
    status: str
    pausedAt: int | None
    workspacePaused: bool
    pauseReason: NotRequired[str | None]
    changed: bool
    message: str


class WorkspacePause(TypedDict):
    """`GET /v1/api/workspace`, `POST /v1/api/workspace/pause` and `/resume` (extension)."""

    workspaceId: str
    paused: bool
    pausedAt: int | None
    failureStop: NotRequired[FailureStop]  # the workspace's rule (GET only)
    changed: NotRequired[bool]
    message: NotRequired[str]
    # dialing rules: {"per24h"?, "per30d"?} or None (GET and PATCH only)
    frequencyCaps: NotRequired[dict[str, int] | None]
    # the default retry rule per outcome of new batches, or None (GET and PATCH only)
    retryPolicy: NotRequired[dict[str, Any] | None]
    complianceProfile: NotRequired[str]  # "none", "us" or "ca"
    callingWindow: NotRequired[dict[str, Any] | None]  # default of batches without one


class WorkspaceRules(TypedDict):
    """`PATCH /v1/api/workspace` (extension): the workspace's dialing rules after it."""

    workspaceId: str
    frequencyCaps: dict[str, int] | None
    retryPolicy: dict[str, Any] | None
    requireConsent: bool
    complianceProfile: str
    callingWindow: dict[str, Any] | None


class Webhook(TypedDict):
    """A webhook endpoint (extension): where the workspace's events are POSTed."""

    id: str
    url: str
    events: list[str]
    description: str
    createdAt: int
    # only in create_webhook's answer: verifies the deliveries' signatures; shown once
    secret: NotRequired[str]


class WebhookAttempt(TypedDict):
    n: int
    at: int
    statusCode: int | None
    latencyMs: int | None
    error: str | None


class WebhookDelivery(TypedDict):
    """One event for one endpoint: pending, delivered, dead (retries ran out) or cancelled."""

    id: int
    eventId: int
    event: str
    status: str
    attempts: int
    createdAt: int
    nextAttemptAt: int | None
    deliveredAt: int | None
    lastStatusCode: int | None
    lastError: str | None
    attemptLog: list[WebhookAttempt]


class WebhookDeliveryPage(TypedDict):
    deliveries: list[WebhookDelivery]
    pagination: Pagination


class Suppression(TypedDict):
    """A number on the workspace's suppression (do-not-call) list (extension)."""

    phoneNumber: str  # E.164
    reason: str
    source: str  # api, import or agent
    jobId: str | None  # the call an agent's opt-out came from
    createdAt: int
    expiresAt: int | None  # epoch ms; None: for good


class SuppressionPage(TypedDict):
    suppressions: list[Suppression]
    pagination: Pagination


class SuppressionsAdded(TypedDict):
    added: int
    expiresAt: int | None


class TimeZoneCount(TypedDict):
    """Numbers of a previewed batch by their candidate time zones (extension)."""

    zones: list[str]
    calls: int


class RunEstimate(TypedDict):
    """How long a previewed batch would run (extension); see docs/api.md."""

    startAt: int
    finishAt: int
    durationSeconds: float
    callsPerSecond: float
    limitedBy: str  # "rate", "concurrency" or "batchConcurrency"
    maxConcurrentCalls: int
    maxConcurrency: NotRequired[int | None]  # the batch's own cap, if sent
    workspaceCallsPerSecond: float
    waitingSeconds: NotRequired[float]  # the calling window closed for every call left
    neverInWindow: NotRequired[int]  # calls the window never opens for
    callSeconds: float
    slotSeconds: NotRequired[float]  # callSeconds, or cap / latestPace when that is longer
    latestPace: NotRequired[float | None]  # dials/s the agent's latest batch achieved
    callSecondsFrom: str
    historyDials: int


class ValidateResult(TypedDict):
    """`POST /v1/api/batch-calls/validate` (extension): a batch checked, not created."""

    valid: bool
    message: str
    totalRows: int
    validRows: int
    invalidRows: int
    duplicateRows: int
    suppressedRows: NotRequired[int]  # extension: counted in invalidRows too
    callsToCreate: int
    problems: list[dict[str, Any]]
    problemCount: int
    timeZones: list[TimeZoneCount]
    unknownTimeZone: int
    outsideWindowAtStart: NotRequired[int]
    windowCannotPlace: NotRequired[int]
    estimate: RunEstimate
