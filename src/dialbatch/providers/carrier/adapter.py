"""The adapter for the carrier process: REST to place, look up and hang up calls, signed
callbacks for progress and outcomes.

Placing is idempotent on dial_key, so a POST that may or may not have arrived is simply
sent again. If the carrier still cannot be reached, the adapter asks for the dial by its
key before giving up: a key the carrier reports absent is fenced there (a late POST with
it is refused), so "never placed" is then true for good and the engine may retry safely.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx

from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.providers.base import (
    CallbackReply,
    CallbackRequest,
    CallProgress,
    DialLookup,
    DialNotFound,
    DialRequest,
    InvalidSignature,
    Live,
    ProviderError,
    ProviderEvent,
    Stage,
)
from dialbatch.providers.carrier import signing
from dialbatch.providers.simulated import outcome_detail

log = logging.getLogger(__name__)

POST_TRIES = 3
RETRY_DELAYS_S = (0.2, 0.5)
_STAGES = {"dialing": Stage.DIALING, "ringing": Stage.RINGING, "answered": Stage.ANSWERED}


class CarrierProvider:
    name = "carrier"

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._secret = secret
        self._client = httpx.AsyncClient(
            base_url=url.rstrip("/"), timeout=timeout_s, transport=transport
        )

    async def start_call(self, request: DialRequest) -> str:
        body = {
            "dial_key": request.dial_key,
            "to": request.to,
            "from": request.from_,
            "workspace_id": request.workspace_id,
            "agent_id": request.agent_id,
            "job_id": request.job_id,
            "agent_config": request.agent_config,
            "metadata": request.metadata,
        }
        problem = ""
        for attempt in range(POST_TRIES):
            if attempt:
                await asyncio.sleep(RETRY_DELAYS_S[attempt - 1])
            try:
                response = await self._client.post("/calls", json=body)
            except httpx.HTTPError as exc:
                problem = f"carrier unreachable: {exc!r}"
                continue
            if response.status_code in (200, 201):
                return str(response.json()["id"])
            if response.status_code == 503 or 400 <= response.status_code < 500:
                # Refused outright (or fenced, 409): the carrier placed nothing.
                raise ProviderError(f"carrier refused the dial ({response.status_code})")
            problem = f"carrier answered {response.status_code}"
        return await self._settle_unsure_post(request.dial_key, problem)

    async def _settle_unsure_post(self, key: str, problem: str) -> str:
        """The POST may have arrived: the dial's own record decides, and fences if absent."""
        try:
            found = await self._lookup(key)
        except DialNotFound:
            raise ProviderError(f"{problem}; the carrier has no such dial") from None
        if isinstance(found, Live):
            return found.provider_call_id
        assert found.provider_call_id is not None
        return found.provider_call_id

    async def hangup(self, provider_call_id: str) -> None:
        try:
            response = await self._client.post(f"/calls/{provider_call_id}/hangup")
        except httpx.HTTPError as exc:
            raise ProviderError(f"carrier unreachable: {exc!r}") from exc
        if response.status_code >= 500:
            raise ProviderError(f"carrier answered {response.status_code}")

    async def fetch_status(self, dial_key: str, provider_call_id: str | None) -> CallEvent | Live:
        return await self._lookup(dial_key)

    async def find_dial(self, lookup: DialLookup) -> CallEvent | Live:
        """The carrier is searched by dial key: fetch_status already asked it."""
        return await self._lookup(lookup.dial_key)

    async def _lookup(self, dial_key: str) -> CallEvent | Live:
        try:
            response = await self._client.get("/calls", params={"dial_key": dial_key})
        except httpx.HTTPError as exc:
            raise ProviderError(f"carrier unreachable: {exc!r}") from exc
        if response.status_code == 404:
            raise DialNotFound(f"the carrier never received {dial_key}")
        if response.status_code != 200:
            raise ProviderError(f"carrier answered {response.status_code}")
        call: dict[str, Any] = response.json()
        if call["status"] == "live":
            return Live(str(call["id"]))
        return _ended(call)

    async def parse_callback(self, request: CallbackRequest) -> CallbackReply:
        problem = signing.verify(self._secret, request.header(signing.HEADER), request.body)
        if problem is not None:
            raise InvalidSignature(problem)
        try:
            payload = json.loads(request.body)
            events: list[ProviderEvent] = [_translate(payload)]
        except (ValueError, KeyError, TypeError) as exc:
            # Signed by the carrier but not understood: nothing to apply, and no point in
            # the carrier sending it again.
            log.error("carrier callback not understood: %s", exc)
            events = []
        return CallbackReply(events=events)

    async def aclose(self) -> None:
        await self._client.aclose()


def _translate(payload: dict[str, Any]) -> ProviderEvent:
    kind = payload["type"]
    if kind == "call.progress":
        return CallProgress(
            stage=_STAGES[payload["stage"]],
            dial_key=payload.get("dial_key"),
            provider_call_id=payload.get("id"),
            at_ms=payload.get("at"),
        )
    if kind == "call.ended":
        return _ended(payload)
    raise ValueError(f"unknown callback type {kind!r}")


def _ended(call: dict[str, Any]) -> CallEvent:
    duration = call.get("duration_s")
    outcome = Outcome(call["outcome"])
    return CallEvent(
        outcome=outcome,
        dial_key=call.get("dial_key"),
        provider_call_id=str(call["id"]),
        duration_s=float(duration) if duration is not None else None,
        ended_at=call.get("ended_at"),
        provider_code=call.get("code"),
        detail=outcome_detail(outcome, call.get("code")),
        result=call.get("result"),
    )
