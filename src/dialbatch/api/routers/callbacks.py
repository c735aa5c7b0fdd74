"""Provider callbacks: `POST /v1/providers/<name>/callbacks[/<path>]`.

Not under the API key: providers authenticate by signature, which the provider's adapter
checks before anything is read (403 on a bad one, nothing changed). Events are applied
forward-only, so duplicated, reordered or late callbacks are harmless; whatever API process
receives a callback applies it, workers need not be reachable.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request, Response

from dialbatch.api.errors import Forbidden, NotFound, PayloadTooLarge
from dialbatch.api.openapi import RATE_LIMITED
from dialbatch.api.ratelimit import limit_callbacks
from dialbatch.api.schemas import ErrorBody
from dialbatch.providers.base import CallbackProvider, CallbackRequest, InvalidSignature

log = logging.getLogger(__name__)

# Not the clients' limits: their own, higher, per-address limit (api/ratelimit.py).
router = APIRouter(
    prefix="/v1/providers",
    tags=["provider callbacks"],
    dependencies=[Depends(limit_callbacks)],
    responses={
        **RATE_LIMITED,
        403: {"model": ErrorBody, "description": "Invalid or missing callback signature"},
        404: {"model": ErrorBody, "description": "No such provider takes callbacks here"},
        413: {"model": ErrorBody, "description": "Callback body too large"},
    },
)

MAX_CALLBACK_BYTES = 64 * 1024


@router.post("/{provider}/callbacks", summary="Provider status callback", include_in_schema=True)
async def callback_root(provider: str, request: Request) -> Response:
    return await _handle(provider, "", request)


@router.post("/{provider}/callbacks/{path:path}", summary="Provider callback (sub-path)")
async def callback_path(provider: str, path: str, request: Request) -> Response:
    return await _handle(provider, path, request)


async def _handle(name: str, path: str, request: Request) -> Response:
    adapter = request.app.state.providers.get(name)
    if not isinstance(adapter, CallbackProvider):
        raise NotFound(f"No provider {name!r} takes callbacks here")
    body = await _read_limited(request)
    public = request.app.state.settings.effective_public_url
    url = public + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    inbound = CallbackRequest(
        method=request.method,
        url=url,
        path=path,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
        body=body,
    )
    try:
        reply = await adapter.parse_callback(inbound)
    except InvalidSignature as exc:
        log.warning("rejected a %s callback: %s", name, exc)
        raise Forbidden("Invalid or missing callback signature") from exc
    changed = False
    for event in reply.events:
        applied = await request.app.state.events.apply(event)
        changed = changed or (applied.changed and applied.status is not None)
    if changed:
        request.app.state.wake()  # a slot was freed or a retry is due
    return Response(reply.body, status_code=reply.status_code, media_type=reply.media_type)


async def _read_limited(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_CALLBACK_BYTES:
        raise PayloadTooLarge(f"Callback body over {MAX_CALLBACK_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_CALLBACK_BYTES:
            raise PayloadTooLarge(f"Callback body over {MAX_CALLBACK_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
