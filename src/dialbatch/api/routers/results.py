"""Agent results (extension): the agent runtime reports what was said on a call.

Agents hold no API key: each request is signed with the agent's own secret (see
api/agent_auth.py and docs/agent-results.md). Nothing is read from the body, and nothing
is written, before the signature is proven.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dialbatch.api import agent_auth, schemas
from dialbatch.api.auth import Db
from dialbatch.api.errors import (
    ApiError,
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from dialbatch.api.openapi import RATE_LIMITED
from dialbatch.api.ratelimit import limit_callbacks
from dialbatch.domain.ids import job_id, parse_job_id
from dialbatch.store import results, suppressions

# Agents are not API clients: their own, higher, per-address limit (api/ratelimit.py).
router = APIRouter(
    prefix="/v1/api/calls",
    tags=["agent results"],
    dependencies=[Depends(limit_callbacks)],
    responses=RATE_LIMITED,
)

MAX_BODY_BYTES = 256 * 1024
OPT_OUT_REASON = "opted out on a call"
MAX_DATA_KEYS = 200
_LABEL = r"^[A-Za-z0-9][A-Za-z0-9 _.:/-]*$"


class AgentReport(BaseModel):
    """The body of a result. Every agent field is optional: a report replaces the fields it
    carries and keeps the others, so an agent may report in several steps."""

    model_config = ConfigDict(extra="forbid")

    jobId: str = Field(
        max_length=100,
        description="The call's jobId again: it binds the signed body to this one call",
    )
    transcript: str | None = Field(None, max_length=200_000)
    outcome: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=_LABEL,
        description='The agent\'s label for how the conversation went, e.g. "not-interested"',
    )
    data: dict[str, Any] | None = Field(
        None, description="Fields the agent extracted (at most 200 keys)"
    )
    summary: str | None = Field(None, max_length=10_000)
    recordingUrl: str | None = Field(None, max_length=2048, pattern=r"^https?://\S+$")
    optOut: bool | None = Field(
        None,
        description="true: the person asked not to be called again; their number joins the "
        "workspace's suppression list at once (source `agent`, with this jobId) and no call "
        "of the workspace dials it again",
    )
    optOutReason: str | None = Field(
        None, max_length=200, description="Kept with the suppression (default: opted out on a call)"
    )

    @field_validator("data")
    @classmethod
    def _few_keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(value) > MAX_DATA_KEYS:
            raise ValueError(f"at most {MAX_DATA_KEYS} keys")
        return value


class ResultRecorded(BaseModel):
    jobId: str
    result: dict[str, Any] = Field(description="The call's result after this report")


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.ErrorBody} for code in (400, 401, 404, 409, 413)
}


@router.post(
    "/{jobId}/result",
    summary="Report a call's result from the agent runtime (extension)",
    response_model=ResultRecorded,
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": AgentReport.model_json_schema()}},
        }
    },
)
async def report_result(
    jobId: str,
    request: Request,
    db: Db,
    x_dialbatch_timestamp: Annotated[
        str | None,
        Header(alias=agent_auth.TIMESTAMP_HEADER, description="Unix time in seconds"),
    ] = None,
    x_dialbatch_signature: Annotated[
        str | None,
        Header(
            alias=agent_auth.SIGNATURE_HEADER,
            description="v1=<hex HMAC-SHA256 of '{timestamp}.{raw body}' under the agent secret>",
        ),
    ] = None,
    x_workspace_id: Annotated[
        str | None,
        Header(alias="x-workspace-id", description="Optional: the call's workspace"),
    ] = None,
) -> dict[str, Any]:
    try:
        timestamp, signature = agent_auth.check_headers(
            x_dialbatch_timestamp, x_dialbatch_signature
        )
    except agent_auth.InvalidSignature as exc:
        raise Unauthorized(str(exc)) from exc
    body = await _read_capped(request)
    parsed = parse_job_id(jobId)
    if parsed is None:
        raise _unknown(jobId)
    batch_id, seq = parsed
    async with db.read() as conn:
        who = await results.reporter(conn, batch_id, seq)
    if who is None or (x_workspace_id is not None and x_workspace_id != who.workspace_id):
        raise _unknown(jobId)
    secret = agent_auth.agent_secrets(request).secret_for(
        who.workspace_id, who.agent_id, who.secret_version
    )
    try:
        agent_auth.verify(secret, timestamp, signature, body)
    except agent_auth.InvalidSignature as exc:
        raise Unauthorized(str(exc)) from exc
    report = _parse(body)
    if report.jobId != jobId:
        raise BadRequest(f"jobId in the body ({report.jobId!r}) is not the one in the URL")
    if who.attempt == 0:
        raise Conflict(f"Call {jobId} was never dialed; there is nothing to report on")
    if report.optOutReason is not None and not report.optOut:
        raise BadRequest("optOutReason goes with optOut: true")
    async with db.write() as conn:
        merged = await results.record(
            conn,
            who.workspace_id,
            batch_id,
            seq,
            report.model_dump(exclude={"jobId", "optOut", "optOutReason"}),
        )
        if merged is not None and report.optOut:
            # In the same transaction: from its commit, no intent dials this number.
            reason = report.optOutReason or OPT_OUT_REASON
            await suppressions.add(
                conn,
                who.workspace_id,
                [(who.phone_number, reason)],
                source="agent",
                job_id=job_id(batch_id, seq),
            )
    if merged is None:
        raise _unknown(jobId)
    return {"jobId": job_id(batch_id, seq), "result": merged}


def _unknown(value: str) -> ApiError:
    return NotFound(f"No call with jobId {value[:100]!r}")


async def _read_capped(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"A result is at most {MAX_BODY_BYTES // 1024} KB")


def _parse(body: bytes) -> AgentReport:
    try:
        return AgentReport.model_validate_json(body)
    except ValidationError as exc:
        problems = [_describe(e) for e in exc.errors(include_url=False)]
        raise BadRequest("; ".join(problems)[:2000], details=problems[:50]) from exc


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()))
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg"))
