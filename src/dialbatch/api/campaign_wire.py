"""Wire pieces of the campaign extensions: the OpenAPI description of the JSON create body
and of the Idempotency-Key header, and the batch fields a pause or a retry adds.

A paused batch reads `status: "paused"` (its stored status, queued or processing, comes
back on resume), keeps `isComplete: false`, and carries `pausedAt` (ms; the workspace's
pause time when only the workspace is paused), `workspacePaused` and `pauseReason` (set when
it paused itself on a failure spike). GET batch shows the `failureStop` rule it runs
under. A retry batch names its `parentBatchId`; a parent lists its `retryBatchIds`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.api.retry_wire import SCHEMA as RETRY_POLICY_SCHEMA
from dialbatch.domain import failure_stop as failure_stop_rules
from dialbatch.domain.compliance import PROFILES
from dialbatch.domain.states import RUNNING_BATCH_STATES
from dialbatch.store import failure_stop, gate_settings, number_dials, pauses, retry_failed
from dialbatch.store.batches import Batch

PAUSED = "paused"

IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": (
        "extension: a repeat within 24 h answers the first response (same batchId and "
        "status code, header Idempotent-Replayed: true) instead of creating another batch; "
        "the same key with a different request answers 422; while the first is still being "
        "handled a repeat waits up to 30 s, then answers 409"
    ),
}

CALLING_WINDOW_DESCRIPTION = (
    "extension: when calls may start, in the recipient's local time. "
    '{"timezone": "recipient" (default: every candidate zone of the number must be inside; '
    'a number with no known zone is never called) or an IANA zone, "days": {"mon": '
    '[["09:00", "17:00"]], ...} (a missing day is closed; end <= start crosses midnight), '
    '"skipDates": ["2026-12-25"]}. A call outside it stays waiting until the next opening. '
    "Invalid windows answer 400 naming the field. See docs/compliance.md"
)
COMPLIANCE_PROFILE_DESCRIPTION = (
    "extension: the rule pack the batch obeys (none, us, ca); only as strict as the "
    "workspace's or stricter (400 otherwise); left out: the workspace's. See docs/compliance.md"
)
COMPLIANCE_PROFILE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "enum": list(PROFILES),
    "description": COMPLIANCE_PROFILE_DESCRIPTION,
}
CALLING_WINDOW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": CALLING_WINDOW_DESCRIPTION,
    "required": ["days"],
    "additionalProperties": False,
    "properties": {
        "timezone": {"type": "string", "default": "recipient"},
        "days": {
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "items": {
                    "type": "array",
                    "items": {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}$"},
                    "minItems": 2,
                    "maxItems": 2,
                },
            },
        },
        "skipDates": {"type": "array", "items": {"type": "string", "format": "date"}},
    },
}

MAX_CONCURRENCY_DESCRIPTION = (
    "extension: at most this many of the batch's calls are live (claimed, ringing or talking) "
    "at once, across every worker, so that other batches keep the rest of the workspace's "
    "cap; a value above the workspace's cap means the workspace's cap. Default: no cap of "
    "its own. Not a whole number >= 1: 400 naming the field"
)
PRIORITY_DESCRIPTION = (
    "extension: -100 to 100 (default 0). The workspace's capacity goes to the due calls of "
    "its highest-priority running batches first; a lower priority gets only what they leave "
    "and may wait until they are done. Equal priorities share fairly. Out of range or not a "
    "whole number: 400 naming the field"
)

JSON_CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "extension: the rows as JSON instead of a CSV file",
    "required": ["agentId", "calls"],
    "additionalProperties": False,
    "properties": {
        "agentId": {"type": "string"},
        "calls": {
            "type": "array",
            "minItems": 1,
            "description": (
                "one object per call: phone_number plus row variables (strings, numbers, "
                "booleans or null; stored as text); timezone, consent_basis and consent_at "
                "are kept on the call, not in metadata, as in a CSV; problems name the "
                "element calls[i], "
                "i counted from 0"
            ),
            "items": {
                "type": "object",
                "required": ["phone_number"],
                "properties": {"phone_number": {"type": "string"}},
                "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
            },
        },
        "scheduledAt": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}]},
        "smartCallbackConfig": {
            "type": "object",
            "properties": {
                "enabled": {"type": "boolean"},
                "maxAttempts": {"type": "integer"},
                "gaps": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"days": {"type": "number"}, "hours": {"type": "number"}},
                    },
                },
            },
        },
        "defaultCountry": {"type": "string"},
        "failureStop": {"$ref": "#/components/schemas/FailureStop"},
        "skipInvalid": {"type": "boolean"},
        "dedupe": {"type": "boolean"},
        "callingWindow": CALLING_WINDOW_SCHEMA,
        "retryPolicy": RETRY_POLICY_SCHEMA,
        "requireConsent": {
            "type": "boolean",
            "description": "extension: refuse rows without consent_basis and consent_at; the "
            "workspace's requireConsent is a floor",
        },
        "complianceProfile": COMPLIANCE_PROFILE_SCHEMA,
        "maxConcurrency": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1_000_000,
            "description": MAX_CONCURRENCY_DESCRIPTION,
        },
        "priority": {
            "type": "integer",
            "minimum": -100,
            "maximum": 100,
            "default": 0,
            "description": PRIORITY_DESCRIPTION,
        },
    },
}


def wire_batch_status(batch: Batch, workspace_paused_at: int | None) -> str:
    """The status a client reads: `paused` while a running batch may not dial."""
    running = batch.status in RUNNING_BATCH_STATES
    if running and (batch.paused_at is not None or workspace_paused_at is not None):
        return PAUSED
    return batch.status


async def overlay(
    conn: AsyncConnection, batch: Batch, body: dict[str, Any], *, links: bool = True
) -> dict[str, Any]:
    """Add the pause and retry fields to a batch (or progress) body, in place."""
    ws_paused = await pauses.workspace_paused_at(conn, batch.workspace_id)
    status = wire_batch_status(batch, ws_paused)
    body["status"] = status
    body["pausedAt"] = (batch.paused_at or ws_paused) if status == PAUSED else None
    body["workspacePaused"] = ws_paused is not None
    # Why it paused itself (the automatic stop on failure spikes); null after a pause by
    # hand, and once resumed.
    body["pauseReason"] = batch.pause_reason if status == PAUSED else None
    if links:
        ws_rule = await failure_stop.workspace_rule(conn, batch.workspace_id)
        rule = failure_stop_rules.parse(batch.failure_stop) if batch.failure_stop else ws_rule
        body["failureStop"] = rule.to_json()
        body["parentBatchId"] = batch.parent_batch_id
        body["retryBatchIds"] = await retry_failed.retry_batch_ids(
            conn, batch.workspace_id, batch.id
        )
    return body


async def workspace_rules(conn: AsyncConnection, workspace: str) -> dict[str, Any]:
    """The workspace's dialing rules as GET and PATCH /v1/api/workspace show them."""
    caps = await number_dials.get_caps(conn, workspace)
    gate = await gate_settings.get(conn, workspace)
    return {
        "frequencyCaps": caps.to_json() or None,
        "complianceProfile": gate.compliance_profile,  # extension: docs/compliance.md
        "callingWindow": gate.calling_window,  # the default of batches without their own
    }
