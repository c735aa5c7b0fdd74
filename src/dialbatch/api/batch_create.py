"""Creating a batch: from a multipart CSV upload (the contract) or from a JSON body of rows
(extension), both read into one `NewBatch` and created by one function, once per
`Idempotency-Key` (api/idempotency.py).

The JSON body is read as it streams in, counted against the same limit as an upload, and
hashed on the way for its idempotency key; its rows go through the CSV pipeline
(ingest/json_rows.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch import ingest
from dialbatch.api import idempotency, retry_wire
from dialbatch.api.errors import AgentNotFound, BadRequest, PayloadTooLarge, ValidationFailed
from dialbatch.api.producer import ThreadProducer
from dialbatch.api.upload import Upload
from dialbatch.domain import batch_limits, compliance, failure_stop
from dialbatch.domain.ids import new_batch_id, now_ms
from dialbatch.domain.phone import is_known_region
from dialbatch.domain.retry import InvalidCallbackPolicy, parse_callback_policy, policy_to_json
from dialbatch.domain.retry_policy import RetryPolicy, for_new_batch
from dialbatch.domain.schedule import InvalidSchedule, parse_scheduled_at
from dialbatch.domain.windows import InvalidCallingWindow, parse_calling_window
from dialbatch.ingest import json_rows
from dialbatch.ingest.csv_reader import Chunk
from dialbatch.store import batches, gate_settings, retry_policies, suppressions, workspaces
from dialbatch.store.engine import Database

# Rows per insert statement: large enough that thread hand-offs are rare, small enough
# that the chunks in flight stay a few MB.
INGEST_CHUNK_ROWS = 10_000
JSON_FIELDS = (
    "agentId",
    "calls",
    "scheduledAt",
    "smartCallbackConfig",
    "defaultCountry",
    "skipInvalid",
    "dedupe",
    "failureStop",
    "callingWindow",
    "retryPolicy",
    "requireConsent",
    "complianceProfile",
    "maxConcurrency",
    "priority",
)

Producer = Callable[[ingest.IngestOptions, Callable[[Chunk], None]], ingest.ScanResult]


@dataclass(frozen=True)
class NewBatch:
    """A creation request, read and checked, whichever body it came in."""

    agent_id: str
    scheduled_at: int | None
    callback_policy: dict[str, Any]
    calling_window: dict[str, Any] | None  # extension: validated, as stored
    source_name: str | None
    produce: Producer
    problem: Callable[[ingest.RowProblem], dict[str, object]]
    message: Callable[[ingest.CsvRejected], str]
    options: ingest.IngestOptions
    failure_stop: dict[str, Any] | None = None  # its own rule; None: the workspace's
    # extension: refuse rows without consent. The workspace's setting is a floor: a batch
    # can ask for it, never turn it off (see `with_workspace_rules`).
    require_consent: bool = False
    compliance_profile: str | None = None  # extension: its own; None: the workspace's
    max_concurrency: int | None = None  # extension: its own cap on live calls
    priority: int = batch_limits.DEFAULT_PRIORITY  # extension: higher first
    # Validate the rows under other options, writing nothing (POST .../validate).
    scan: Callable[[ingest.IngestOptions], ingest.ScanResult] | None = None
    # Its own retry rules per outcome (api/retry_wire.py); a smartCallbackConfig sent means
    # the workspace's default retryPolicy is not taken.
    retry_policy: RetryPolicy | None = None
    smart_callback_sent: bool = False


# -- the two bodies -------------------------------------------------------------------------


def from_form(upload: Upload) -> NewBatch:
    f = upload.fields
    if upload.file is None:
        raise BadRequest("No file: send the CSV in the `file` field")
    file: BinaryIO = upload.file
    agent_id = _agent_id(f.get("agentId"))
    scheduled_at = _scheduled(f.get("scheduledAt"))
    policy = _policy(_json_field(f.get("smartCallbackConfig"), "smartCallbackConfig"))
    stop = _failure_stop(_json_field(f.get("failureStop"), "failureStop"))
    window = _window(_json_field(f.get("callingWindow"), "callingWindow"))
    profile = _profile(f.get("complianceProfile"))
    max_concurrency, priority = _limits(f.get("maxConcurrency"), f.get("priority"))
    options = ingest.IngestOptions(
        default_region=_region(f.get("defaultCountry")),
        skip_invalid=_flag(f.get("skipInvalid"), "skipInvalid"),
        dedupe=_flag(f.get("dedupe"), "dedupe"),
    )
    require_consent = _flag(f.get("requireConsent"), "requireConsent")
    return NewBatch(
        agent_id=agent_id,
        scheduled_at=scheduled_at,
        callback_policy=policy,
        calling_window=window,
        source_name=(upload.filename or "")[:255] or None,
        produce=lambda opts, emit: ingest.stream(file, opts, emit, chunk_size=INGEST_CHUNK_ROWS),
        problem=lambda p: p.as_dict(),
        message=lambda exc: exc.message,
        options=options,
        failure_stop=stop,
        compliance_profile=profile,
        max_concurrency=max_concurrency,
        priority=priority,
        scan=lambda opts: _scan_file(file, opts),
        retry_policy=retry_wire.parse_field(f.get("retryPolicy")),
        smart_callback_sent=bool((f.get("smartCallbackConfig") or "").strip()),
        require_consent=require_consent,
    )


def from_json(body: Any, max_calls: int) -> NewBatch:
    """The JSON body: `{"agentId", "calls": [{"phone_number", ...}], ...}`; every other
    field as in the form, with booleans and an object where the form has text."""
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object with `agentId` and `calls`")
    unknown = sorted(set(body) - set(JSON_FIELDS))
    if unknown:
        raise BadRequest(f"Unknown field(s) {unknown}; the fields are: {', '.join(JSON_FIELDS)}")
    calls = body.get("calls")
    if not isinstance(calls, list):
        raise BadRequest("calls must be an array of objects, one per call")
    scheduled = body.get("scheduledAt")
    if scheduled is not None and (
        isinstance(scheduled, bool) or not isinstance(scheduled, str | int)
    ):
        raise BadRequest("scheduledAt must be an ISO 8601 string or epoch milliseconds")
    policy = body.get("smartCallbackConfig")
    if isinstance(policy, str):  # as the form sends it
        policy = _json_field(policy, "smartCallbackConfig")
    stop = body.get("failureStop")
    if isinstance(stop, str):  # as the form sends it
        stop = _json_field(stop, "failureStop")
    window = body.get("callingWindow")
    if isinstance(window, str):  # as the form sends it
        window = _json_field(window, "callingWindow")
    profile = body.get("complianceProfile")
    if profile is not None and not isinstance(profile, str):
        raise BadRequest('complianceProfile must be a string: "none", "us" or "ca"')
    max_concurrency, priority = _limits(body.get("maxConcurrency"), body.get("priority"))
    country = body.get("defaultCountry")
    if country is not None and not isinstance(country, str):
        raise BadRequest('defaultCountry must be a string such as "US"')
    options = ingest.IngestOptions(
        default_region=_region(country),
        skip_invalid=_json_flag(body, "skipInvalid"),
        dedupe=_json_flag(body, "dedupe"),
        max_rows=max_calls,
    )
    agent = body.get("agentId")
    if agent is not None and not isinstance(agent, str):
        raise BadRequest("agentId must be a string")
    return NewBatch(
        agent_id=_agent_id(agent),
        scheduled_at=_scheduled(None if scheduled is None else str(scheduled)),
        callback_policy=_policy(policy),
        calling_window=_window(window),
        source_name=None,
        produce=lambda opts, emit: json_rows.stream(calls, opts, emit, INGEST_CHUNK_ROWS),
        problem=json_rows.problem_dict,
        message=json_rows.message,
        options=options,
        failure_stop=_failure_stop(stop),
        compliance_profile=_profile(profile),
        max_concurrency=max_concurrency,
        priority=priority,
        scan=lambda opts: json_rows.stream(calls, opts, _discard, INGEST_CHUNK_ROWS),
        retry_policy=retry_wire.parse_field(body.get("retryPolicy")),
        smart_callback_sent=policy is not None,
        require_consent=_json_flag(body, "requireConsent"),
    )


def _scan_file(file: BinaryIO, options: ingest.IngestOptions) -> ingest.ScanResult:
    file.seek(0)
    return ingest.scan(file, options)


def _discard(chunk: Chunk) -> None:
    """Rows validated for a preview are not kept."""


async def read_json_body(
    request: Request, max_bytes: int, *, allow_empty: bool = False
) -> tuple[Any, str]:
    """The parsed body and its idempotency hash; 413 past `max_bytes`, as an upload. With
    `allow_empty`, an empty body reads as None."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    hasher = idempotency.body_hasher(request.url.path)
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > max_bytes:
            raise _too_large(max_bytes)
        hasher.update(chunk)
    if allow_empty and not data.strip():
        return None, hasher.hexdigest()
    try:
        body = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = (
            f" at line {exc.lineno}, column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise BadRequest(f"The body is not valid JSON{where}") from exc
    return body, hasher.hexdigest()


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The body is larger than the {max_bytes / (1024 * 1024):g} MB limit")


def is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


async def form_digest(request: Request, upload: Upload) -> str:
    return await asyncio.to_thread(
        idempotency.form_hash, request.url.path, upload.fields, upload.file
    )


# -- creating it -------------------------------------------------------------------------


async def with_workspace_rules(conn: AsyncConnection, workspace: str, new: NewBatch) -> NewBatch:
    """`new` under the workspace's floor: its requireConsent holds for every batch, whatever
    the batch asked."""
    if new.require_consent or not await workspaces.requires_consent(conn, workspace):
        return _consent(new, new.require_consent)
    return _consent(new, True)


def _consent(new: NewBatch, required: bool) -> NewBatch:
    return replace(
        new, require_consent=required, options=replace(new.options, require_consent=required)
    )


async def create(
    request: Request,
    workspace: str,
    db: Database,
    new: NewBatch,
    complete: idempotency.Complete,
) -> dict[str, Any]:
    """Validate the rows while inserting them, in one transaction that a rejection rolls
    back; the response body is stored with the idempotency key in that transaction."""
    async with db.read() as conn:
        if await workspaces.get_agent(conn, workspace, new.agent_id) is None:
            raise AgentNotFound(new.agent_id)
        new = await with_workspace_rules(conn, workspace, new)
        profile = await batch_profile(conn, workspace, new.compliance_profile)
        # Rows to suppressed numbers are refused (or skipped) like invalid ones; numbers
        # suppressed after this read are caught before their dial (store/queue.begin_dials).
        options = replace(
            new.options, suppressed=await suppressions.active_numbers(conn, workspace)
        )
        rules = for_new_batch(
            new.retry_policy,
            await retry_policies.workspace_default(conn, workspace),
            smart_callback_sent=new.smart_callback_sent,
        )
    producer: ThreadProducer[Chunk, ingest.ScanResult] = ThreadProducer(
        lambda emit: new.produce(options, emit)
    )
    batch_id = new_batch_id()
    now = now_ms()
    try:
        async with db.write() as conn:
            total = await batches.insert_batch(
                conn,
                batch_id=batch_id,
                workspace_id=workspace,
                agent_id=new.agent_id,
                scheduled_at=new.scheduled_at,
                callback_policy=new.callback_policy,
                calling_window=new.calling_window,
                source_name=new.source_name,
                rows=producer,
                failure_stop=new.failure_stop,
                retry_policy=None if rules is None else rules.to_json(),
                require_consent=new.require_consent,
                compliance_profile=profile,
                max_concurrency=new.max_concurrency,
                priority=new.priority,
            )
            scan = producer.result
            assert scan is not None
            when = "at the scheduled time" if new.scheduled_at and new.scheduled_at > now else "now"
            body = {
                "batchId": batch_id,
                "totalCalls": total,
                "status": "queued",
                "message": f"Batch created with {total} calls; dialing starts {when}",
                "skipped": scan.skipped_count,
                "duplicatesRemoved": scan.duplicates_removed,
                "skippedRows": [new.problem(p) for p in scan.skipped],
            }
            await complete(conn, body)
    except ingest.CsvRejected as exc:
        accept = _accepting_options(exc.problems, new.options)
        hint = "; ".join(_OPTION_WORDS[o] for o in accept)
        message = new.message(exc)
        raise ValidationFailed(
            f"{message}. To accept the file: {hint}" if hint else message,
            problems=[new.problem(p) for p in exc.problems],
            problemCount=exc.problem_count,
            # extension: the form fields that would accept the file, for clients to offer
            acceptWith=accept,
        ) from exc
    request.app.state.wake()
    return body


async def create_once(
    request: Request, workspace: str, db: Database, new: NewBatch, digest: str
) -> dict[str, Any] | JSONResponse:
    key = idempotency.read_key(request)
    return await idempotency.run_once(
        db, workspace, key, digest, lambda complete: create(request, workspace, db, new, complete)
    )


# -- fields ----------------------------------------------------------------------------------


def _agent_id(raw: str | None) -> str:
    agent_id = (raw or "").strip()
    if not agent_id:
        raise BadRequest("No agentId: name the agent that makes the calls")
    return agent_id


def _scheduled(raw: str | None) -> int | None:
    if raw is None or not raw.strip():
        return None
    try:
        return parse_scheduled_at(raw, now_ms())
    except InvalidSchedule as exc:
        raise BadRequest(str(exc)) from exc


def _policy(raw: Any) -> dict[str, Any]:
    try:
        return policy_to_json(parse_callback_policy(raw))
    except InvalidCallbackPolicy as exc:
        raise BadRequest(str(exc)) from exc


def _failure_stop(raw: Any) -> dict[str, Any] | None:
    """The batch's own failureStop rule, validated and complete; None: not given."""
    if raw is None:
        return None
    try:
        return failure_stop.parse(raw).to_json()
    except failure_stop.InvalidFailureStop as exc:
        raise BadRequest(str(exc)) from exc


def _window(raw: Any) -> dict[str, Any] | None:
    """The batch's calling window, validated, in the form it is stored and shown in; None
    (no window: any hour, as before) when the field is absent or empty."""
    if raw is None:
        return None
    try:
        return parse_calling_window(raw).to_json()
    except InvalidCallingWindow as exc:
        raise BadRequest(str(exc)) from exc


def _profile(raw: str | None) -> str | None:
    """The batch's own complianceProfile, a known name; None (the workspace's) when absent."""
    if raw is None or not raw.strip():
        return None
    try:
        return compliance.parse_profile(raw.strip())
    except compliance.InvalidProfile as exc:
        raise BadRequest(str(exc)) from exc


async def batch_profile(conn: AsyncConnection, workspace: str, asked: str | None) -> str:
    """The profile a new batch is stored with: its own if it asked for one at least as
    strict as the workspace's (else 400), otherwise the workspace's at this moment. At dial
    time it obeys this and the workspace's profile of then, both (store/gating.py)."""
    current = (await gate_settings.get(conn, workspace)).compliance_profile
    if asked is None:
        return current
    try:
        return compliance.effective_policy(current, batch_profile=asked).profile
    except compliance.ProfileNotStricter as exc:
        raise BadRequest(str(exc)) from exc


def _limits(max_concurrency: object, priority: object) -> tuple[int | None, int]:
    """The batch's own `maxConcurrency` (None: only the workspace's cap) and `priority`."""
    try:
        return (
            batch_limits.parse_max_concurrency(max_concurrency),
            batch_limits.parse_priority(priority),
        )
    except batch_limits.InvalidBatchLimit as exc:
        raise BadRequest(str(exc)) from exc


def _json_field(raw: str | None, name: str) -> Any:
    text = (raw or "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{name} is not valid JSON: {exc.msg}") from exc


# The spellings a boolean form field accepts: the same words FastAPI takes in a query
# string (hangupActive), so that every flag of the API reads alike.
_TRUE = frozenset(("true", "1", "on", "yes"))
_FALSE = frozenset(("", "false", "0", "off", "no"))


def _flag(raw: str | None, name: str) -> bool:
    text = (raw or "").strip().lower()
    if text in _FALSE:
        return False
    if text in _TRUE:
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


def _json_flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false")
    return value


def _region(raw: str | None) -> str | None:
    if not raw or not raw.strip():
        return None
    code = raw.strip().upper()
    if not is_known_region(code):
        raise BadRequest(f"defaultCountry {raw!r} is not a known ISO 3166 country code")
    return code
