"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from dialbatch.api.auth import Db

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The process can reach its database", response_model=None)
async def readyz(request: Request, db: Db) -> JSONResponse | dict[str, Any]:
    try:
        async with db.read() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except Exception:
        return JSONResponse({"status": "unavailable", "error": "database unreachable"}, 503)
    # which providers this process loaded (the others' settings are missing here)
    return {"status": "ready", "providers": sorted(request.app.state.providers)}
