"""The errors every route can answer, declared in the OpenAPI document from the operation's
own description, so that a route added anywhere is documented without a line of its own:

- an operation behind the API key (it has `security`): 401, and 429 (its key's, or its
  address's, rate limit, api/ratelimit.py);
- an operation with parameters or a body: 400, which is what a malformed one gets here
  (api/errors.py), in place of FastAPI's default 422, which this app never sends.

Provider callbacks and agent results declare their own 429 on their routers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from dialbatch.api import schemas

RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before the next request (whole seconds, at least 1)",
        "schema": {"type": "integer"},
    }
}
# For a router's `responses=`.
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": schemas.RateLimitBody,
        "description": "Rate limit exceeded",
        "headers": RETRY_AFTER,
    }
}


def document_errors(app: FastAPI) -> None:
    """Wrap `app.openapi` so that the document, built on first use (after every router was
    included), declares each operation's common errors."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            error = _ref(components, schemas.ErrorBody)
            limited = _ref(components, schemas.RateLimitBody)
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    _declare(operation, error, limited)
            for unused in ("HTTPValidationError", "ValidationError"):
                components.pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _declare(operation: dict[str, Any], error: dict[str, Any], limited: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    if operation.get("parameters") or operation.get("requestBody"):
        responses.setdefault("400", _response("Bad request", error))
    if operation.get("security"):
        responses.setdefault("401", _response("Missing or wrong API key", error))
        responses.setdefault(
            "429", {**_response("Rate limit exceeded", limited), "headers": RETRY_AFTER}
        )


def _response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(components: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """A reference to `model` in the document's components, adding it (and what it uses)."""
    generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in generated.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault(model.__name__, generated)
    return {"$ref": f"#/components/schemas/{model.__name__}"}
