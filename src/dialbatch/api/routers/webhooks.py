"""Outbound webhook endpoints (extension): where a workspace's events are sent, and the log
of every delivery (events/webhooks.py delivers them; docs/webhooks.md)."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from dialbatch.api import schemas
from dialbatch.api.agent_auth import agent_secrets
from dialbatch.api.auth import Db, Workspace
from dialbatch.api.errors import BadRequest, Conflict, NotFound
from dialbatch.domain.webhooks import MAX_URL_LENGTH, WEBHOOK_EVENTS, unknown_events
from dialbatch.events import signing
from dialbatch.events.webhooks import AddressRefused, resolve_checked
from dialbatch.store import webhooks as store

router = APIRouter(prefix="/v1/api/webhooks", tags=["webhooks"])

MAX_ENDPOINTS = 20
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorBody},
    401: {"model": schemas.ErrorBody},
    404: {"model": schemas.ErrorBody},
}


class WebhookNotFound(NotFound):
    error = "Webhook not found"

    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"No webhook with id {webhook_id!r} in this workspace", id=webhook_id)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH, description="http(s) URL")
    events: list[str] = Field(
        min_length=1, max_length=len(WEBHOOK_EVENTS), description=", ".join(WEBHOOK_EVENTS)
    )
    description: str = Field("", max_length=200)


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str
    createdAt: int


class CreatedWebhookOut(WebhookOut):
    secret: str = Field(
        description="Signs every delivery (Standard Webhooks `whsec_...`); shown only here"
    )


def _out(e: store.Endpoint) -> WebhookOut:
    return WebhookOut(
        id=e.id, url=e.url, events=e.events, description=e.description, createdAt=e.created_at
    )


async def _check_url(raw: str, allow_private: bool) -> str:
    try:
        url = httpx.URL(raw.strip())
    except httpx.InvalidURL as exc:
        raise BadRequest(f"url {raw[:100]!r} is not a valid URL: {exc}") from exc
    if url.scheme not in ("http", "https"):
        raise BadRequest(f"url must start with http:// or https://, not {url.scheme or 'nothing'}")
    if not url.host:
        raise BadRequest("url has no host")
    if url.fragment:
        raise BadRequest("url must not have a #fragment")
    try:
        await resolve_checked(
            url.host,
            url.port or (443 if url.scheme == "https" else 80),
            allow_private=allow_private,
        )
    except AddressRefused as exc:
        raise BadRequest(f"url refused: {exc}") from exc
    return str(url)


@router.post("", summary="Add a webhook endpoint (extension)", status_code=201, responses=_ERRORS)
async def create_webhook(
    body: WebhookIn, request: Request, workspace: Workspace, db: Db
) -> CreatedWebhookOut:
    unknown = unknown_events(body.events)
    if unknown:
        raise BadRequest(
            f"Unknown event(s) {', '.join(map(repr, unknown))}; use any of: "
            + ", ".join(WEBHOOK_EVENTS)
        )
    url = await _check_url(body.url, request.app.state.settings.webhooks_allow_private)
    async with db.write() as conn:
        if await store.count_endpoints(conn, workspace) >= MAX_ENDPOINTS:
            raise Conflict(f"A workspace may have {MAX_ENDPOINTS} webhooks; remove one first")
        endpoint = await store.create_endpoint(
            conn, workspace, url=url, events=body.events, description=body.description
        )
    secret = signing.webhook_secret(
        agent_secrets(request).master_key, workspace, endpoint.id, endpoint.secret_version
    )
    return CreatedWebhookOut(**_out(endpoint).model_dump(), secret=secret)


@router.get("", summary="List webhook endpoints (extension)", responses=_ERRORS)
async def list_webhooks(workspace: Workspace, db: Db) -> dict[str, list[WebhookOut]]:
    async with db.read() as conn:
        found = await store.list_endpoints(conn, workspace)
    return {"webhooks": [_out(e) for e in found]}


@router.get("/{webhookId}", summary="A webhook endpoint (extension)", responses=_ERRORS)
async def get_webhook(webhookId: str, workspace: Workspace, db: Db) -> WebhookOut:
    async with db.read() as conn:
        found = await store.get_endpoint(conn, workspace, webhookId)
    if found is None:
        raise WebhookNotFound(webhookId)
    return _out(found)


@router.delete("/{webhookId}", summary="Remove a webhook endpoint (extension)", responses=_ERRORS)
async def delete_webhook(webhookId: str, workspace: Workspace, db: Db) -> dict[str, Any]:
    async with db.write() as conn:
        removed = await store.delete_endpoint(conn, workspace, webhookId)
    if not removed:
        raise WebhookNotFound(webhookId)
    return {"id": webhookId, "deleted": True}


def _delivery(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": d["id"],
        "eventId": d["outbox_id"],
        "event": d["event"],
        "status": d["status"],
        "attempts": d["attempts"],
        "createdAt": d["created_at"],
        "nextAttemptAt": d["next_attempt_at"] if d["status"] == store.PENDING else None,
        "deliveredAt": d["delivered_at"],
        "lastStatusCode": d["last_status_code"],
        "lastError": d["last_error"],
        "attemptLog": [
            {
                "n": a.n,
                "at": a.at,
                "statusCode": a.status_code,
                "latencyMs": a.latency_ms,
                "error": a.error,
            }
            for a in d["attempt_log"]
        ],
    }


DeliveryStatus = Annotated[
    str, Query(max_length=16, description="all, " + ", ".join(store.DELIVERY_STATUSES))
]


@router.get(
    "/{webhookId}/deliveries",
    summary="An endpoint's deliveries, newest first, with every attempt (extension)",
    responses=_ERRORS,
)
async def list_deliveries(
    webhookId: str,
    workspace: Workspace,
    db: Db,
    status: DeliveryStatus = "all",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    wanted = status.strip().lower()
    if wanted != "all" and wanted not in store.DELIVERY_STATUSES:
        raise BadRequest(
            f"Unknown status {status!r}; use one of: all, {', '.join(store.DELIVERY_STATUSES)}"
        )
    async with db.read() as conn:
        endpoint = await store.get_endpoint(conn, workspace, webhookId, include_deleted=True)
        if endpoint is None:
            raise WebhookNotFound(webhookId)
        total, rows = await store.list_deliveries(
            conn,
            webhookId,
            status=None if wanted == "all" else wanted,
            limit=limit,
            offset=(page - 1) * limit,
        )
    return {
        "deliveries": [_delivery(d) for d in rows],
        "pagination": schemas.pagination(page, limit, total),
    }


@router.post(
    "/{webhookId}/deliveries/{deliveryId}/replay",
    summary="Send a delivery again now, e.g. a dead letter (extension)",
    responses=_ERRORS,
)
async def replay_delivery(
    webhookId: str, deliveryId: str, workspace: Workspace, db: Db
) -> dict[str, Any]:
    if not deliveryId.isdigit() or len(deliveryId) > 18:
        raise NotFound(f"No delivery {deliveryId!r} of webhook {webhookId!r}")
    async with db.write() as conn:
        if await store.get_endpoint(conn, workspace, webhookId) is None:
            raise WebhookNotFound(webhookId)
        if not await store.replay(conn, webhookId, int(deliveryId)):
            raise NotFound(f"No delivery {deliveryId!r} of webhook {webhookId!r}")
        found = await store.get_delivery(conn, webhookId, int(deliveryId))
    assert found is not None
    return _delivery(found)
