"""The workspace's dialing rules (extension): `PATCH /v1/api/workspace`.

Frequency caps (at most N dials to one number per rolling 24 hours and per rolling 30 days
across every batch of the workspace), the compliance profile every batch obeys at least,
the default calling window of batches without their own, and `requireConsent`, a floor
under every batch's own flag (docs/compliance.md); the default retry policy per outcome
that new batches take (docs/retries.md). `GET /v1/api/workspace` (routers/campaign.py)
shows them beside the pause state.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request

from dialbatch.api import retry_wire, schemas
from dialbatch.api.auth import Db, Workspace
from dialbatch.api.campaign_wire import CALLING_WINDOW_SCHEMA, workspace_rules
from dialbatch.api.errors import BadRequest
from dialbatch.domain.caps import Caps, InvalidCaps, parse_caps
from dialbatch.domain.compliance import PROFILES, InvalidProfile, parse_profile
from dialbatch.domain.windows import InvalidCallingWindow, parse_calling_window
from dialbatch.store import gate_settings, number_dials, retry_policies, workspaces

router = APIRouter(prefix="/v1/api", tags=["campaign (extension)"])

MAX_BODY_BYTES = 32 * 1024
SETTINGS = (
    "frequencyCaps",
    "complianceProfile",
    "callingWindow",
    "retryPolicy",
    "requireConsent",
)
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorBody},
    401: {"model": schemas.ErrorBody},
}
_BODY_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "frequencyCaps": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "description": "At most N dials per number per rolling period, across batches; "
            "null removes the caps",
            "properties": {
                "per24h": {"type": "integer", "minimum": 1, "maximum": 10000},
                "per30d": {"type": "integer", "minimum": 1, "maximum": 10000},
            },
        },
        "retryPolicy": {
            "oneOf": [retry_wire.SCHEMA, {"type": "null"}],
            "description": "The default retry rule per outcome that each new batch takes "
            "(unless it sends smartCallbackConfig; its own retryPolicy wins per outcome); "
            "null removes it; running batches keep theirs",
        },
        "requireConsent": {
            "type": "boolean",
            "description": "Every batch refuses rows without consent_basis and consent_at; "
            "a batch cannot turn it off",
        },
        "complianceProfile": {
            "type": "string",
            "enum": list(PROFILES),
            "description": "The rule pack every batch obeys at least: none (the default), us "
            "(8:00-21:00 recipient-local; FL, OK, MD: 8:00-20:00 and 3 dials per number per "
            "24 h), ca (9:00-21:30 weekdays, 10:00-18:00 weekends). Applies to running "
            "batches at their next dial. See docs/compliance.md",
        },
        "callingWindow": {
            "oneOf": [CALLING_WINDOW_SCHEMA, {"type": "null"}],
            "description": "The window of every batch that has none of its own, read at dial "
            "time; null clears it",
        },
    },
}


@router.patch(
    "/workspace",
    responses=_ERRORS,
    summary="Change the workspace's dialing rules (extension)",
    description="Fields left out keep their value. frequencyCaps: at most per24h / per30d "
    "dials to one number across every batch; a capped call waits until the cap allows a dial. "
    "complianceProfile: the rule pack every batch obeys at least. callingWindow: the default "
    "window of batches without their own (null clears it). "
    "retryPolicy: the default retry rules per outcome of new batches (null removes it). "
    "requireConsent: rows without consent_basis and consent_at are refused in every batch "
    "created from now on. All fields are checked before any is written.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _BODY_SCHEMA}},
        }
    },
)
async def patch_workspace(request: Request, workspace: Workspace, db: Db) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"The body is at most {MAX_BODY_BYTES // 1024} KB")
    try:
        body = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict) or not body:
        raise BadRequest(f"Send a JSON object with any of: {', '.join(SETTINGS)}")
    unknown = sorted(set(body) - set(SETTINGS))
    if unknown:
        raise BadRequest(f"Unknown field(s) {unknown}; the settings are: {', '.join(SETTINGS)}")
    caps, profile, window = _parse(body)
    consent = body.get("requireConsent")
    if "requireConsent" in body and not isinstance(consent, bool):
        raise BadRequest("requireConsent must be true or false")
    rules = retry_wire.parse_field(body.get("retryPolicy"))
    async with db.write() as conn:
        if caps is not None:
            await number_dials.set_caps(conn, workspace, caps)
        if profile is not None or "callingWindow" in body:
            await gate_settings.update(
                conn,
                workspace,
                compliance_profile=profile,
                **({"calling_window": window} if "callingWindow" in body else {}),
            )
        if "retryPolicy" in body:
            await retry_policies.set_workspace_default(conn, workspace, rules)
        if isinstance(consent, bool):
            await workspaces.set_require_consent(conn, workspace, consent)
        shown = await workspace_rules(conn, workspace)
        rules = await retry_policies.workspace_default(conn, workspace)
        required = await workspaces.requires_consent(conn, workspace)
    request.app.state.wake()  # calls deferred by an old cap or window may be due now
    return {
        "workspaceId": workspace,
        **shown,
        "retryPolicy": None if rules is None else rules.to_json(),
        "requireConsent": required,
    }


def _parse(body: dict[str, Any]) -> tuple[Caps | None, str | None, dict[str, Any] | None]:
    """Every field given, validated (400 naming the field): caps, profile, window."""
    caps = profile = window = None
    try:
        if "frequencyCaps" in body:
            caps = parse_caps(body["frequencyCaps"])
        if "complianceProfile" in body:
            profile = parse_profile(body["complianceProfile"])
        if body.get("callingWindow") is not None:
            window = parse_calling_window(body["callingWindow"]).to_json()
    except (InvalidCaps, InvalidProfile, InvalidCallingWindow) as exc:
        raise BadRequest(str(exc)) from exc
    return caps, profile, window
