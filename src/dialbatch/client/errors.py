"""Errors the SDK raises when the server refuses a request.

Every refusal is a `DialbatchError` carrying the HTTP status, the body's short `error`
title, its human `message` and the parsed body; the common statuses have subclasses so
that callers can catch exactly what they handle. Network failures are not refusals: they
surface as `httpx.TransportError` (for example `httpx.ConnectError`).
"""

from __future__ import annotations

from typing import Any

import httpx


class DialbatchError(Exception):
    """The server answered with an error status.

    Attributes:
        status_code: the HTTP status, such as 404.
        error: the short title, such as "Batch not found" (the body's `error`, or its
            `status` for the `{"status": "not_found", "error": ...}` shape).
        message: the sentence meant for people; also `str(exc)`.
        body: the parsed JSON body (or the raw text when the body was not JSON).
    """

    def __init__(self, status_code: int, error: str, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.message = message
        self.body = body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status_code}, {self.error!r}, {self.message!r})"


class BadRequest(DialbatchError):
    """400: a missing field, a CSV that failed validation (see `body["problems"]`), an
    unknown status filter."""


class Unauthorized(DialbatchError):
    """401: missing or wrong `x-api-key`, or a key of another workspace."""


class NotFound(DialbatchError):
    """404: no such batch, call or agent in this workspace."""


class Conflict(DialbatchError):
    """409: the request does not fit the batch's state (cancelling a finished batch)."""


class PayloadTooLarge(DialbatchError):
    """413: the CSV is over the server's upload limit (20 MB by default)."""


class RateLimited(DialbatchError):
    """429: too many requests for this API key (or too many wrong keys from this address).

    Attributes (besides DialbatchError's):
        retry_after: seconds to wait before the next request (the `Retry-After` header).
        reset_at: when a request is admitted again, ISO 8601 UTC (the body's `reset_at`).
    """

    retry_after: float | None = None
    reset_at: str | None = None


class ServerError(DialbatchError):
    """5xx: the server (or a proxy in front of it) failed."""


_BY_STATUS: dict[int, type[DialbatchError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    429: RateLimited,
}


def error_from_response(response: httpx.Response) -> DialbatchError:
    """Read an error response in any of the contract's shapes (or none, from a proxy)."""
    status = response.status_code
    reason = response.reason_phrase or f"HTTP {status}"
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = response.text
    error, message = reason, reason
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        # Trillet's rate-limit shape: {"error": {"code", "message", "reset_at"}}.
        nested = body["error"]
        error = str(nested.get("code") or reason)
        message = str(nested.get("message") or reason)
    elif isinstance(body, dict):
        title, text = body.get("error"), body.get("message")
        if isinstance(text, str) and text:
            error, message = (title if isinstance(title, str) and title else reason), text
        elif isinstance(title, str) and title:
            # {"status": "not_found", "error": "..."}: here `error` is the sentence.
            error, message = str(body.get("status") or reason), title
    elif isinstance(body, str) and body.strip():
        message = body.strip()[:300]
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else DialbatchError)
    exc = cls(status, error, message, body)
    if isinstance(exc, RateLimited):
        retry_after = response.headers.get("retry-after", "")
        exc.retry_after = float(retry_after) if retry_after.isdigit() else None
        nested = body.get("error") if isinstance(body, dict) else None
        exc.reset_at = str(nested.get("reset_at")) if isinstance(nested, dict) else None
    return exc
