"""Live events (extension): Server-Sent Events from the outbox (events/stream.py).

Authenticated like every endpoint, by the `x-api-key` / `x-workspace-id` headers, or by a
short-lived signed `token` query parameter for browsers' EventSource, which cannot send
headers (`POST /v1/api/events/token`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Security
from fastapi.responses import StreamingResponse
from fastapi.security import APIKeyHeader

from dialbatch.api import schemas
from dialbatch.api.agent_auth import agent_secrets
from dialbatch.api.auth import Db, Workspace, authenticated_workspace
from dialbatch.api.errors import BadRequest, BatchNotFound, Unauthorized
from dialbatch.events import signing
from dialbatch.events.stream import OutboxPoller, stream
from dialbatch.store import batches, calls, counters

router = APIRouter(prefix="/v1/api", tags=["live events"])

_key_header = APIKeyHeader(name="x-api-key", auto_error=False)
_workspace_header = APIKeyHeader(name="x-workspace-id", auto_error=False)
MAX_EVENT_ID_DIGITS = 18

_STREAM_DOC: dict[str, Any] = {
    "response_class": StreamingResponse,
    "responses": {
        200: {"content": {"text/event-stream": {}}, "description": "An event stream"},
        400: {"model": schemas.ErrorBody},
        401: {"model": schemas.ErrorBody},
        404: {"model": schemas.ErrorBody},
    },
}


@router.post("/events/token", summary="A short-lived token for EventSource (extension)")
async def stream_token(request: Request, workspace: Workspace) -> dict[str, Any]:
    token, expires_ms = signing.issue_stream_token(agent_secrets(request).master_key, workspace)
    return {"token": token, "expiresAt": expires_ms}


async def stream_workspace(
    request: Request,
    db: Db,
    api_key: Annotated[str | None, Security(_key_header)] = None,
    workspace_id: Annotated[str | None, Security(_workspace_header)] = None,
    token: Annotated[str | None, Query(max_length=512, description="from /events/token")] = None,
) -> str:
    if token is not None and not (api_key or workspace_id):
        found = signing.read_stream_token(agent_secrets(request).master_key, token)
        if found is None:
            raise Unauthorized(
                "Invalid or expired token: get a new one from POST /v1/api/events/token"
            )
        return found
    return await authenticated_workspace(request, db, api_key, workspace_id)


StreamWorkspace = Annotated[str, Depends(stream_workspace)]


def _last_event_id(header: str | None, query: str | None) -> int | None:
    raw = header if header is not None else query
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.isdigit() or not raw.isascii() or len(raw) > MAX_EVENT_ID_DIGITS:
        raise BadRequest(
            f"Last-Event-ID {raw[:40]!r} is not a non-negative integer: send the id of the "
            "last event this stream gave you, or none to start from now"
        )
    return int(raw)


def _response(body: Any) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


LastEventIdHeader = Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)]
LastEventIdQuery = Annotated[
    str | None, Query(alias="lastEventId", max_length=64, description="as Last-Event-ID")
]


@router.get("/events", summary="The workspace's live events (extension)", **_STREAM_DOC)
async def workspace_events(
    request: Request,
    db: Db,
    workspace: StreamWorkspace,
    last_event_id: LastEventIdHeader = None,
    last_event_id_query: LastEventIdQuery = None,
) -> StreamingResponse:
    after = _last_event_id(last_event_id, last_event_id_query)
    poller: OutboxPoller = request.app.state.event_poller

    async def snapshot() -> Any:
        return None  # {"lastEventId": ...}, filled in by the stream

    return _response(
        stream(
            poller,
            workspace,
            None,
            last_event_id=after,
            snapshot=snapshot,
            heartbeat_s=request.app.state.settings.sse_heartbeat_s,
        ),
    )


@router.get(
    "/batch-calls/{batchId}/events", summary="A batch's live events (extension)", **_STREAM_DOC
)
async def batch_events(
    request: Request,
    batchId: str,
    db: Db,
    workspace: StreamWorkspace,
    last_event_id: LastEventIdHeader = None,
    last_event_id_query: LastEventIdQuery = None,
) -> StreamingResponse:
    after = _last_event_id(last_event_id, last_event_id_query)
    async with db.read() as conn:
        if await batches.get_batch(conn, workspace, batchId) is None:
            raise BatchNotFound(batchId)
    poller: OutboxPoller = request.app.state.event_poller

    async def snapshot() -> Any:
        async with db.read() as conn:
            batch = await batches.get_batch(conn, workspace, batchId)
            if batch is None:
                raise BatchNotFound(batchId)
            tally = await counters.tally(conn, batchId)
            recent = await calls.recent_finished(conn, batchId)
        return schemas.progress_response(batch, tally, recent)

    return _response(
        stream(
            poller,
            workspace,
            batchId,
            last_event_id=after,
            snapshot=snapshot,
            heartbeat_s=request.app.state.settings.sse_heartbeat_s,
        ),
    )
