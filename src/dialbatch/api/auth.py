"""Authentication: `x-api-key` must be a live key of the workspace named by
`x-workspace-id`. Every failure reads the same, so nothing tells a guesser whether a
workspace exists."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

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
    db: Annotated[Database, Depends(get_db)],
    api_key: Annotated[str | None, Security(_key_header)] = None,
    workspace_id: Annotated[str | None, Security(_workspace_header)] = None,
) -> str:
    if not api_key:
        raise Unauthorized("Missing x-api-key header")
    if not workspace_id:
        raise Unauthorized("Missing x-workspace-id header")
    if len(workspace_id) > 64:
        raise Unauthorized("Invalid API key or workspace")
    async with db.read() as conn:
        ok = await workspaces.verify_api_key(conn, workspace_id, api_key)
    if not ok:
        raise Unauthorized("Invalid API key or workspace")
    return workspace_id


Workspace = Annotated[str, Depends(authenticated_workspace)]
Db = Annotated[Database, Depends(get_db)]
