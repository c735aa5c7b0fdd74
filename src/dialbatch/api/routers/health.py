"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from dialbatch.api.auth import Db
from dialbatch.store import workers

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The process can reach its database", response_model=None)
async def readyz(request: Request, db: Db) -> JSONResponse | dict[str, Any]:
    try:
        async with db.read() as conn:
            await conn.execute(sa.text("SELECT 1"))
            alive = await workers.alive(conn)
    except Exception:
        return JSONResponse({"status": "unavailable", "error": "database unreachable"}, 503)
    return {
        "status": "ready",
        # which providers this process loaded (the others' settings are missing here)
        "providers": sorted(request.app.state.providers),
        # Processes that dispatch, seen in the last minute: none means queued batches
        # stay queued (start `dialbatch worker`, or `dialbatch serve` without
        # --no-dispatch).
        "workers": [{"id": w.id, "host": w.host, "pid": w.pid, "seenAt": w.seen_at} for w in alive],
    }
