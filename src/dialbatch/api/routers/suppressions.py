"""The workspace's suppression (do-not-call) list (extension; docs/compliance.md).

Numbers are added one by one or in bulk as JSON, or imported from a CSV with a
`phone_number` column (and an optional `reason` column); every number is normalised to
E.164, so `(212) 555-0100` with `defaultCountry=US` and `+12125550100` are one entry. A
request with any invalid number writes nothing and lists the problems by row (CSV) or index
(JSON). Suppressed numbers are refused at ingest and never dialed, even by batches uploaded
before they were added (the intent step checks the list in its transaction).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from dialbatch import ingest
from dialbatch.api import batch_create, schemas
from dialbatch.api.auth import Db, Workspace
from dialbatch.api.errors import BadRequest, NotFound, ValidationFailed
from dialbatch.api.upload import read_upload
from dialbatch.domain.ids import now_ms
from dialbatch.domain.phone import InvalidPhoneNumber, PhoneNormalizer, is_known_region
from dialbatch.domain.schedule import InvalidSchedule, parse_scheduled_at
from dialbatch.store import suppressions as store

router = APIRouter(prefix="/v1/api/suppressions", tags=["suppressions"])

MAX_JSON_NUMBERS = 10_000  # per JSON request; a CSV import takes up to the upload limit
MAX_REASON_CHARS = 200
MAX_PROBLEMS = 100
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorBody},
    401: {"model": schemas.ErrorBody},
    404: {"model": schemas.ErrorBody},
    413: {"model": schemas.ErrorBody},
}


class SuppressionIn(BaseModel):
    """The JSON body of POST /v1/api/suppressions."""

    model_config = ConfigDict(extra="forbid")

    phoneNumbers: list[str] = Field(
        min_length=1, max_length=MAX_JSON_NUMBERS, description="Numbers to suppress"
    )
    reason: str = Field("", max_length=MAX_REASON_CHARS)
    expiresAt: str | int | None = Field(None, description="ISO 8601 or epoch ms; absent: for good")
    defaultCountry: str | None = Field(
        None, description="ISO 3166 code for numbers written without +"
    )


class SuppressionOut(BaseModel):
    phoneNumber: str
    reason: str
    source: str = Field(description="api, import or agent")
    jobId: str | None = Field(None, description="the call an agent's opt-out came from")
    createdAt: int
    expiresAt: int | None


class SuppressionPage(BaseModel):
    suppressions: list[SuppressionOut]
    pagination: schemas.Pagination


class SuppressionNotFound(NotFound):
    error = "Suppression not found"

    def __init__(self, number: str) -> None:
        super().__init__(f"{number} is not on this workspace's suppression list")


def _out(e: store.Entry) -> SuppressionOut:
    return SuppressionOut(
        phoneNumber=e.phone_number,
        reason=e.reason,
        source=e.source,
        jobId=e.job_id,
        createdAt=e.created_at,
        expiresAt=e.expires_at,
    )


def _region(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    code = raw.strip().upper()
    if not is_known_region(code):
        raise BadRequest(f"defaultCountry {raw!r} is not a known ISO 3166 country code")
    return code


def _expiry(raw: str | int | None) -> int | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    now = now_ms()
    try:
        when = parse_scheduled_at(str(raw), now, name="expiresAt", max_ahead_ms=None)
    except InvalidSchedule as exc:
        raise BadRequest(str(exc)) from exc
    if when <= now:
        raise BadRequest("expiresAt must be in the future")
    return when


def _reason(raw: str | None) -> str:
    text = (raw or "").strip()
    if len(text) > MAX_REASON_CHARS:
        raise BadRequest(f"reason must be at most {MAX_REASON_CHARS} characters")
    return text


@router.post(
    "",
    summary="Suppress numbers: JSON, or a CSV import (extension)",
    status_code=201,
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": SuppressionIn.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {
                                "type": "string",
                                "format": "binary",
                                "description": "CSV with a phone_number column and an "
                                "optional reason column",
                            },
                            "reason": {"type": "string"},
                            "expiresAt": {"type": "string"},
                            "defaultCountry": {"type": "string"},
                        },
                    }
                },
            },
            "required": True,
        }
    },
)
async def add_suppressions(request: Request, workspace: Workspace, db: Db) -> dict[str, Any]:
    settings = request.app.state.settings
    if batch_create.is_json(request):
        raw, _ = await batch_create.read_json_body(request, settings.max_upload_bytes)
        try:
            body = SuppressionIn.model_validate(raw)
        except ValueError as exc:
            raise BadRequest(_first_error(exc)) from exc
        entries, expires, source = _from_json(body), _expiry(body.expiresAt), "api"
    else:
        upload = await read_upload(request, settings.max_upload_bytes)
        try:
            entries = _from_csv(upload.file, upload.fields)
            expires, source = _expiry(upload.fields.get("expiresAt")), "import"
        finally:
            await upload.aclose()
    async with db.write() as conn:
        added = await store.add(conn, workspace, entries, source=source, expires_at=expires)
    return {"added": added, "expiresAt": expires}


def _from_json(body: SuppressionIn) -> list[tuple[str, str]]:
    normalize = PhoneNormalizer(_region(body.defaultCountry)).normalize
    reason = _reason(body.reason)
    entries: list[tuple[str, str]] = []
    problems: list[dict[str, Any]] = []
    for i, raw in enumerate(body.phoneNumbers):
        try:
            entries.append((normalize(raw), reason))
        except InvalidPhoneNumber as exc:
            problems.append({"index": i, "reason": exc.reason, "value": raw[:100]})
    if problems:
        raise ValidationFailed(
            f"{len(problems)} of the numbers are not valid phone numbers; nothing was added",
            problems=problems[:MAX_PROBLEMS],
            problemCount=len(problems),
        )
    return entries


def _from_csv(file: Any, fields: dict[str, str]) -> list[tuple[str, str]]:
    if file is None:
        raise BadRequest("No file: send the CSV in the `file` field, or send JSON")
    reason = _reason(fields.get("reason"))
    options = ingest.IngestOptions(
        default_region=_region(fields.get("defaultCountry")), dedupe=True
    )
    try:
        scan = ingest.scan(file, options)
    except ingest.CsvRejected as exc:
        raise ValidationFailed(
            f"{exc.message}; nothing was added",
            problems=[p.as_dict() for p in exc.problems[:MAX_PROBLEMS]],
            problemCount=exc.problem_count,
        ) from exc
    entries: list[tuple[str, str]] = []
    for chunk in ingest.iter_calls(file, scan):
        for row in chunk:
            number, metadata = row[1], row[2]
            own = json.loads(metadata).get("reason") if "reason" in scan.header else None
            entries.append((number, _reason(own) if isinstance(own, str) and own else reason))
    return entries


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return str(exc)


@router.get("", summary="The suppression list, newest first (extension)", responses=_ERRORS)
async def list_suppressions(
    workspace: Workspace,
    db: Db,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SuppressionPage:
    async with db.read() as conn:
        total, rows = await store.page(conn, workspace, limit=limit, offset=(page - 1) * limit)
    return SuppressionPage(
        suppressions=[_out(e) for e in rows],
        pagination=schemas.Pagination(**schemas.pagination(page, limit, total)),
    )


def _number(raw: str, country: str | None) -> str:
    try:
        return PhoneNormalizer(_region(country)).normalize(raw)
    except InvalidPhoneNumber as exc:
        raise BadRequest(f"{raw[:100]!r} is not a valid phone number: {exc.reason}") from exc


@router.get("/{phoneNumber}", summary="One suppressed number (extension)", responses=_ERRORS)
async def get_suppression(
    phoneNumber: str,
    workspace: Workspace,
    db: Db,
    defaultCountry: Annotated[str | None, Query(max_length=2)] = None,
) -> SuppressionOut:
    number = _number(phoneNumber, defaultCountry)
    async with db.read() as conn:
        found = await store.get(conn, workspace, number)
    if found is None:
        raise SuppressionNotFound(number)
    return _out(found)


@router.delete(
    "/{phoneNumber}", summary="Remove a number from the list (extension)", responses=_ERRORS
)
async def remove_suppression(
    phoneNumber: str,
    workspace: Workspace,
    db: Db,
    defaultCountry: Annotated[str | None, Query(max_length=2)] = None,
) -> dict[str, Any]:
    number = _number(phoneNumber, defaultCountry)
    async with db.write() as conn:
        removed = await store.remove(conn, workspace, number)
    if not removed:
        raise SuppressionNotFound(number)
    return {"phoneNumber": number, "deleted": True}
