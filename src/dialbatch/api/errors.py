"""Typed API errors and the one place that turns any failure into the contract's shape.

Bodies are `{"error", "message"}` (plus `id` for a missing batch; a missing call answers
`{"status": "not_found", "error"}` as the contract shows). No 500 leaks a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    status_code = 400
    error = "Bad request"
    headers: dict[str, str] | None = None

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "message": self.message, **self.extra}


class BadRequest(ApiError):
    status_code = 400
    error = "Bad request"


class ValidationFailed(ApiError):
    status_code = 400
    error = "Validation failed"


class Unauthorized(ApiError):
    status_code = 401
    error = "Unauthorized"


class Forbidden(ApiError):
    status_code = 403
    error = "Forbidden"


class NotFound(ApiError):
    status_code = 404
    error = "Not found"


class BatchNotFound(NotFound):
    error = "Batch not found"

    def __init__(self, batch_id: str) -> None:
        super().__init__(f"No batch with id {batch_id!r} in this workspace", id=batch_id)


class AgentNotFound(NotFound):
    error = "Agent not found"

    def __init__(self, agent_id: str) -> None:
        super().__init__(f"No agent with id {agent_id!r} in this workspace", id=agent_id)


class CallNotFound(NotFound):
    def __init__(self, batch_id: str, job_id: str) -> None:
        super().__init__(f"No call {job_id!r} in batch {batch_id!r}")

    def body(self) -> dict[str, Any]:
        return {"status": "not_found", "error": self.message}


class Conflict(ApiError):
    status_code = 409
    error = "Conflict"


class PayloadTooLarge(ApiError):
    status_code = 413
    error = "Payload too large"


class RateLimited(ApiError):
    """429 in Trillet's shape, `{"error": {"code", "message", "reset_at"}}`, with
    `Retry-After` in whole seconds (api/ratelimit.py)."""

    status_code = 429
    error = "rate_limit_exceeded"

    def __init__(self, message: str, *, reset_at: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.reset_at = reset_at
        self.headers = {"Retry-After": str(retry_after_s)}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.error, "message": self.message, "reset_at": self.reset_at}}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [_describe(e) for e in exc.errors()]
        body = {"error": "Bad request", "message": "; ".join(problems), "details": problems}
        return JSONResponse(body, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed"}
        body = {"error": titles.get(exc.status_code, "Error"), "message": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {"error": "Internal error", "message": "The server failed to handle the request"}
        return JSONResponse(body, status_code=500)


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "body", "path"))
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg"))
