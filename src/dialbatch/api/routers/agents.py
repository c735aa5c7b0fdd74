"""Agents: who makes the calls, and through which provider (an extension of the contract,
which assumes agents exist)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from dialbatch.api import schemas
from dialbatch.api.agent_auth import agent_secrets
from dialbatch.api.auth import Db, Workspace
from dialbatch.api.errors import AgentNotFound, BadRequest
from dialbatch.domain.phone import InvalidPhoneNumber, PhoneNormalizer
from dialbatch.providers.registry import KNOWN_PROVIDERS, validate_agent_config
from dialbatch.store import agent_secrets as secret_versions
from dialbatch.store import workspaces

router = APIRouter(prefix="/v1/api/agents", tags=["agents"])


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    provider: str = Field("simulated", max_length=32)
    providerConfig: dict[str, Any] = Field(default_factory=dict)
    fromNumbers: list[str] = Field(default_factory=list, max_length=50)


class AgentOut(BaseModel):
    id: str
    name: str
    provider: str
    providerConfig: dict[str, Any]
    fromNumbers: list[str]
    createdAt: int


class CreatedAgentOut(AgentOut):
    signingSecret: str = Field(
        description="extension: signs the agent's result reports; shown only here and on rotation"
    )


class SigningSecretOut(BaseModel):
    agentId: str
    signingSecret: str = Field(description="The new secret; the previous one stops working now")


@router.get("", summary="List agents")
async def list_agents(workspace: Workspace, db: Db) -> dict[str, list[AgentOut]]:
    async with db.read() as conn:
        found = await workspaces.list_agents(conn, workspace)
    return {"agents": [AgentOut(**a.as_json()) for a in found]}


@router.post("", summary="Create an agent", status_code=201)
async def create_agent(
    body: AgentIn, request: Request, workspace: Workspace, db: Db
) -> CreatedAgentOut:
    if body.provider not in KNOWN_PROVIDERS:
        raise BadRequest(f"Unknown provider {body.provider!r}; known: {', '.join(KNOWN_PROVIDERS)}")
    if len(str(body.providerConfig)) > 16_384:
        raise BadRequest("providerConfig is too large (16 KB at most)")
    try:
        validate_agent_config(body.provider, body.providerConfig)
    except ValueError as exc:
        raise BadRequest(f"providerConfig: {exc}") from exc
    normalizer = PhoneNormalizer()
    try:
        numbers = [normalizer.normalize(n) for n in body.fromNumbers]
    except InvalidPhoneNumber as exc:
        raise BadRequest(f"fromNumbers: {exc.reason}") from exc
    async with db.write() as conn:
        agent = await workspaces.create_agent(
            conn,
            workspace,
            name=body.name,
            provider=body.provider,
            provider_config=body.providerConfig,
            from_numbers=numbers,
        )
        version = await secret_versions.secret_version(conn, workspace, agent.id)
    secret = agent_secrets(request).secret_for(workspace, agent.id, version or 1)
    return CreatedAgentOut(**agent.as_json(), signingSecret=secret)


@router.post(
    "/{agentId}/secret",
    summary="Rotate the agent's signing secret (extension)",
    responses={404: {"model": schemas.ErrorBody}},
)
async def rotate_secret(
    agentId: str, request: Request, workspace: Workspace, db: Db
) -> SigningSecretOut:
    async with db.write() as conn:
        version = await secret_versions.rotate(conn, workspace, agentId)
    if version is None:
        raise AgentNotFound(agentId)
    secret = agent_secrets(request).secret_for(workspace, agentId, version)
    return SigningSecretOut(agentId=agentId, signingSecret=secret)
