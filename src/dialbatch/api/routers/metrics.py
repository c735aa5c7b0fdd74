"""`GET /metrics`: Prometheus's text format (dialbatch/metrics.py says what is in it).

Open by default, like /healthz: Prometheus scrapes without credentials and the default
bind address is 127.0.0.1. The figures name workspaces and their volumes, so a server
reachable by others sets DIALBATCH_METRICS_TOKEN, and /metrics then asks for
`Authorization: Bearer <token>` (Prometheus: `authorization: {credentials: ...}`).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dialbatch import metrics
from dialbatch.api.auth import Db
from dialbatch.api.errors import Unauthorized

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (extension)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def prometheus_metrics(request: Request, db: Db) -> Response:
    token: str | None = request.app.state.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credentials.strip().encode(), token.encode()
        ):
            raise Unauthorized("GET /metrics needs Authorization: Bearer <DIALBATCH_METRICS_TOKEN>")
    return Response(await metrics.exposition(db), media_type=metrics.CONTENT_TYPE)
