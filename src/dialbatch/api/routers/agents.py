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
from dialbatch.domain.caller_pool import CallerLimit, InvalidPool, parse_limits
from dialbatch.domain.phone import InvalidPhoneNumber, PhoneNormalizer
from dialbatch.providers.registry import KNOWN_PROVIDERS, validate_agent_config
from dialbatch.store import agent_secrets as secret_versions
from dialbatch.store import workspaces

router = APIRouter(prefix="/v1/api/agents", tags=["agents"])

LIMITS_DESCRIPTION = (
    'caller number (one of fromNumbers, E.164) -> its own limits {"callsPerSecond": 1-1000, '
    '"perDay": 1-1000000}, kept exactly across workers; a dial whose number is busy waits '
    "for it (docs/caller-numbers.md)"
)


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    provider: str = Field("simulated", max_length=32)
    providerConfig: dict[str, Any] = Field(default_factory=dict)
    fromNumbers: list[str] = Field(default_factory=list, max_length=50)
    callerNumberLimits: dict[str, dict[str, Any]] | None = Field(
        None, description=LIMITS_DESCRIPTION, max_length=50
    )


class PoolIn(BaseModel):
    """extension: PATCH /v1/api/agents/{agentId}."""

    model_config = ConfigDict(extra="forbid")

    fromNumbers: list[str] | None = Field(
        None, max_length=50, description="the new pool, in order; absent: keep the pool"
    )
    callerNumberLimits: dict[str, dict[str, Any]] | None = Field(
        None,
        max_length=50,
        description=LIMITS_DESCRIPTION + "; absent: keep those of numbers still in the pool; "
        "{} removes every limit",
    )


class AgentOut(BaseModel):
    id: str
    name: str
    provider: str
    providerConfig: dict[str, Any]
    fromNumbers: list[str]
    callerNumberLimits: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="extension: " + LIMITS_DESCRIPTION
    )
    createdAt: int


class AgentDetailOut(AgentOut):
    """extension: GET /v1/api/agents/{agentId}."""

    warnings: list[str] = Field(
        default_factory=list,
        description="what may hold the agent's calls back: a pool of caller numbers smaller "
        "than the workspace's concurrency cap",
    )


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
    numbers = _pool_numbers(body.fromNumbers)
    limits = _pool_limits(body.callerNumberLimits, numbers)
    async with db.write() as conn:
        agent = await workspaces.create_agent(
            conn,
            workspace,
            name=body.name,
            provider=body.provider,
            provider_config=body.providerConfig,
            from_numbers=numbers,
        )
        if limits:
            agent = await workspaces.set_pool(conn, workspace, agent.id, numbers, limits) or agent
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


@router.get(
    "/{agentId}",
    summary="One agent, with its caller-number pool and warnings (extension)",
    responses={404: {"model": schemas.ErrorBody}},
)
async def get_agent(agentId: str, workspace: Workspace, db: Db) -> AgentDetailOut:
    async with db.read() as conn:
        agent = await workspaces.get_agent(conn, workspace, agentId)
        cap = await workspaces.max_concurrent_calls(conn, workspace)
    if agent is None:
        raise AgentNotFound(agentId)
    return AgentDetailOut(**agent.as_json(), warnings=_warnings(agent, cap))


@router.patch(
    "/{agentId}",
    summary="Change the agent's caller numbers and their limits (extension)",
    description=(
        "`fromNumbers` replaces the pool (in order); `callerNumberLimits` replaces the "
        "limits. Dials already started keep their number; the next ones use the new pool "
        "(within a few seconds: each worker keeps agents for a moment). A retry whose first "
        "number left the pool takes another by the pool's rule. 400 naming the field for a "
        "bad number or limit."
    ),
    responses={404: {"model": schemas.ErrorBody}, 400: {"model": schemas.ErrorBody}},
)
async def change_pool(agentId: str, body: PoolIn, workspace: Workspace, db: Db) -> AgentDetailOut:
    async with db.write() as conn:
        agent = await workspaces.get_agent(conn, workspace, agentId)
        if agent is None:
            raise AgentNotFound(agentId)
        numbers = (
            _pool_numbers(body.fromNumbers) if body.fromNumbers is not None else agent.from_numbers
        )
        if body.callerNumberLimits is not None:
            limits = _pool_limits(body.callerNumberLimits, numbers)
        else:
            limits = {n: lim for n, lim in agent.pool.limits.items() if n in numbers}
        changed = await workspaces.set_pool(conn, workspace, agentId, numbers, limits)
        cap = await workspaces.max_concurrent_calls(conn, workspace)
    if changed is None:
        raise AgentNotFound(agentId)
    return AgentDetailOut(**changed.as_json(), warnings=_warnings(changed, cap))


def _pool_numbers(raw: list[str]) -> list[str]:
    """The pool's numbers in E.164, each once, in the order first given; 400 naming the one
    that is not a number."""
    normalizer = PhoneNormalizer()
    out: list[str] = []
    for i, n in enumerate(raw):
        try:
            e164 = normalizer.normalize(n)
        except InvalidPhoneNumber as exc:
            raise BadRequest(f"fromNumbers[{i}] {n!r}: {exc.reason}") from exc
        if e164 not in out:  # a number written twice is one number of the pool
            out.append(e164)
    return out


def _pool_limits(
    raw: dict[str, dict[str, Any]] | None, numbers: list[str]
) -> dict[str, CallerLimit]:
    """The limits, keyed by the pool's E.164 numbers (a key may be written in any form the
    pool's numbers could be); 400 naming the field for a bad one."""
    if not raw:
        return {}
    normalizer = PhoneNormalizer()
    keyed: dict[str, Any] = {}
    for key, spec in raw.items():
        try:
            keyed[normalizer.normalize(key)] = spec
        except InvalidPhoneNumber as exc:
            raise BadRequest(f"callerNumberLimits.{key}: {exc.reason}") from exc
    try:
        return parse_limits(keyed, numbers, "callerNumberLimits")
    except InvalidPool as exc:
        raise BadRequest(str(exc)) from exc


def _warnings(agent: workspaces.Agent, max_concurrent: int | None) -> list[str]:
    pool = len(agent.from_numbers)
    if pool and max_concurrent is not None and pool < max_concurrent:
        return [
            f"the pool has {pool} caller number{'s' if pool != 1 else ''} for a workspace "
            f"cap of {max_concurrent} concurrent calls: each number carries several calls "
            "at once, and its own limits (callerNumberLimits) may hold calls back"
        ]
    return []
