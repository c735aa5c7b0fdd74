"""Authentication: `x-api-key` must be a live key of the workspace named by
`x-workspace-id`. Every failure reads the same, so nothing tells a guesser whether a
workspace exists."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from dialbatch.api import ratelimit
from dialbatch.api.errors import Unauthorized
from dialbatch.store import workspaces
from dialbatch.store.engine import Database

_key_header = APIKeyHeader(name="x-api-key", auto_error=False, description="API key secret")
_workspace_header = APIKeyHeader(
    name="x-workspace-id", auto_error=False, description="Workspace identifier"
)


async def get_db(request: Request) -> Database:
    """Async on purpose: a plain def dependency costs a threadpool hop per request."""
    db: Database = request.app.state.db
    return db


async def authenticated_workspace(
    request: Request,
    db: Annotated[Database, Depends(get_db)],
    api_key: Annotated[str | None, Security(_key_header)] = None,
    workspace_id: Annotated[str | None, Security(_workspace_header)] = None,
) -> str:
    """The workspace, once the key is proven; every request then draws from its key's rate
    limit, and every failure from its address's (api/ratelimit.py)."""
    limits = ratelimit.limiter(request)
    address = ratelimit.client_address(request)
    limits.refuse_if_blocked(address)
    problem = None
    if not api_key:
        problem = "Missing x-api-key header"
    elif not workspace_id:
        problem = "Missing x-workspace-id header"
    elif len(workspace_id) > 64:
        problem = "Invalid API key or workspace"
    else:
        async with db.read() as conn:
            if not await workspaces.verify_api_key(conn, workspace_id, api_key):
                problem = "Invalid API key or workspace"
    if problem is not None or not api_key or not workspace_id:
        await limits.failed(address)
        raise Unauthorized(problem or "Invalid API key or workspace")
    await limits.admit_key(api_key)
    return workspace_id


Workspace = Annotated[str, Depends(authenticated_workspace)]
Db = Annotated[Database, Depends(get_db)]
