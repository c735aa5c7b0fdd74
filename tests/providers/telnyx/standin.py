"""A local stand-in for Telnyx's Call Control API (v2), for tests.

It serves what the adapter calls through the official SDK (`POST /calls`,
`GET /calls/{id}`, `POST /calls/{id}/actions/hangup`, `GET /call_events`) and plays each
call out as Telnyx would, POSTing documented webhook payloads (`{"data": {"event_type",
"id", "occurred_at", "payload": {...}, "record_type": "event"}, "meta": {...}}`) signed
with an Ed25519 key made for the test, over `f"{timestamp}|{body}"`, in the
`telnyx-signature-ed25519` and `telnyx-timestamp` headers.

Fates are chosen per called number. Knobs make delivery as unreliable as the real thing:
duplicates, reordering (random delays), lost webhooks (still in the call-event log, as at
Telnyx: it records a webhook whether or not it was delivered) and forged ones (a lying
final webhook signed with another key, sent first).
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from nacl.signing import SigningKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

# What each fate ends as in dialbatch (with machine detection on, for `voicemail`).
EXPECTED = {
    "completed": "completed",
    "busy": "busy",
    "rejected": "busy",
    "no-answer": "no-answer",
    "voicemail": "voicemail",
    "failed": "failed",
    "not-found": "failed",
}


@dataclass(frozen=True)
class Fate:
    """How the called party behaves. Seconds are simulated (see TelnyxStandIn.scale)."""

    kind: str  # a key of EXPECTED
    ring_s: float = 2.0
    talk_s: float = 5.0  # answered calls: until the callee hangs up (a machine: greeting)


@dataclass
class Knobs:
    duplicate_rate: float = 0.0  # a webhook is delivered twice
    reorder_s: float = 0.0  # each delivery waits uniform(0, reorder_s) real seconds
    drop_rate: float = 0.0  # a webhook is never delivered
    drop_types: frozenset[str] | None = None  # only these event types are dropped
    forge_rate: float = 0.0  # a call also gets a forged, lying hangup webhook
    seed: int = 1


@dataclass
class Delivery:
    event_type: str
    call_control_id: str
    status: int | None  # None: could not connect
    forged: bool = False
    seq: int = 0  # the webhook's place among its call's webhooks, as generated


@dataclass
class SimCall:
    call_control_id: str
    call_leg_id: str
    call_session_id: str
    connection_id: str
    to: str
    from_: str
    client_state: str | None
    webhook_url: str | None
    params: dict[str, Any]
    fate: Fate
    started_at: float = field(default_factory=time.time)
    answered_at: float | None = None
    ended_at: float | None = None
    log: list[dict[str, Any]] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def alive(self) -> bool:
        return self.ended_at is None


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error(status: int, code: str, title: str) -> JSONResponse:
    return JSONResponse({"errors": [{"code": code, "title": title}]}, status_code=status)


class TelnyxStandIn:
    def __init__(
        self,
        *,
        api_key: str,
        connection_id: str,
        fate_of: Callable[[str], Fate],
        knobs: Knobs | None = None,
        scale: float = 0.01,
        webhook_url: str | None = None,
    ) -> None:
        self.api_key = api_key
        self.connection_id = connection_id
        self.fate_of = fate_of
        self.knobs = knobs or Knobs()
        self.scale = scale  # real seconds per simulated second
        self.webhook_url = webhook_url  # the Call Control app's URL (a dial may override)
        self.signing_key = SigningKey.generate()
        self.forger_key = SigningKey.generate()
        self.rng = random.Random(self.knobs.seed)
        self.calls: dict[str, SimCall] = {}
        self.by_command: dict[str, str] = {}
        self.deliveries: list[Delivery] = []
        self.dropped: list[tuple[str, str]] = []  # (event_type, call_control_id)
        self.hangup_commands: list[str] = []
        self.dial_requests = 0
        self.status_reads = 0
        self.log_reads = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._http = httpx.AsyncClient(timeout=10)
        self.app = Starlette(
            routes=[
                Route("/v2/calls", self.dial, methods=["POST"]),
                Route("/v2/calls/{call_control_id}", self.status, methods=["GET"]),
                Route("/v2/calls/{call_control_id}/actions/hangup", self.hangup, methods=["POST"]),
                Route("/v2/call_events", self.call_events, methods=["GET"]),
            ]
        )

    @property
    def public_key(self) -> str:
        return base64.b64encode(bytes(self.signing_key.verify_key)).decode()

    # --- REST ----------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    async def dial(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return _error(401, "10009", "Authentication failed")
        self.dial_requests += 1
        body = await request.json()
        for name in ("connection_id", "to", "from"):
            if not body.get(name):
                return _error(422, "10015", f"Missing required parameter: {name}")
        if body["connection_id"] != self.connection_id:
            return _error(422, "10015", "Invalid connection_id")
        command = body.get("command_id")
        if command and command in self.by_command:
            return JSONResponse({"data": self._call_data(self.calls[self.by_command[command]])})
        call = SimCall(
            call_control_id="v3:" + secrets.token_urlsafe(24),
            call_leg_id=str(uuid.uuid4()),
            call_session_id=str(uuid.uuid4()),
            connection_id=body["connection_id"],
            to=body["to"],
            from_=body["from"],
            client_state=body.get("client_state"),
            webhook_url=body.get("webhook_url") or self.webhook_url,
            params=body,
            fate=self.fate_of(body["to"]),
        )
        self.calls[call.call_control_id] = call
        if command:
            self.by_command[command] = call.call_control_id
        self._spawn(self._play(call))
        data = self._call_data(call)
        data["is_alive"] = False  # documented: always false in the dial response
        return JSONResponse({"data": data})

    async def status(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return _error(401, "10009", "Authentication failed")
        self.status_reads += 1
        call = self.calls.get(request.path_params["call_control_id"])
        if call is None:
            return _error(404, "10005", "Resource not found")
        return JSONResponse({"data": self._call_data(call)})

    async def hangup(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return _error(401, "10009", "Authentication failed")
        call = self.calls.get(request.path_params["call_control_id"])
        if call is None:
            return _error(404, "10005", "Resource not found")
        body = await request.json() if await request.body() else {}
        self.hangup_commands.append(call.call_control_id)
        if not call.alive:
            return _error(422, "90018", "Call has already ended")
        if body.get("client_state"):
            call.client_state = body["client_state"]
        if call.answered_at is None:
            await self._end(call, "originator_cancel", "487", "caller")
        else:
            await self._end(call, "normal_clearing", "200", "caller")
        return JSONResponse({"data": {"result": "ok"}})

    async def call_events(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return _error(401, "10009", "Authentication failed")
        self.log_reads += 1
        q = request.query_params
        leg = q.get("filter[leg_id]")
        kind = q.get("filter[type]")
        to, from_ = q.get("filter[to]"), q.get("filter[from]")
        since = q.get("filter[occurred_at][gte]")
        records = [
            r
            for c in self.calls.values()
            if (leg is None or c.call_leg_id == leg)
            and (to is None or c.to == to)
            and (from_ is None or c.from_ == from_)
            for r in c.log
            if (kind is None or r["type"] == kind)
            and (since is None or _epoch(r["event_timestamp"]) >= _epoch(since))
        ]
        size = int(q.get("page[size]", "20"))
        number = int(q.get("page[number]", "1"))
        pages = max(1, -(-len(records) // size))
        page = records[(number - 1) * size : number * size]
        meta = {
            "page_number": number,
            "page_size": size,
            "total_pages": pages,
            "total_results": len(records),
        }
        return JSONResponse({"data": page, "meta": meta})

    def _call_data(self, call: SimCall) -> dict[str, Any]:
        data: dict[str, Any] = {
            "record_type": "call",
            "call_control_id": call.call_control_id,
            "call_leg_id": call.call_leg_id,
            "call_session_id": call.call_session_id,
            "client_state": call.client_state,
            "is_alive": call.alive,
            "start_time": iso(call.started_at),
        }
        if call.ended_at is not None:
            data["end_time"] = iso(call.ended_at)
            data["call_duration"] = int(call.ended_at - call.started_at)
        return data

    # --- playing a call out ----------------------------------------------------------------

    async def _play(self, call: SimCall) -> None:
        fate = call.fate
        await self._emit(call, "call.initiated", {"state": "bridging", "direction": "outgoing"})
        timeout = float(call.params.get("timeout_secs") or 30)
        # Nobody answers a no-answer call: it rings until timeout_secs.
        ring = timeout if fate.kind == "no-answer" else min(fate.ring_s, timeout)
        if await self._wait(call, ring):
            return  # we cancelled it while it rang
        if fate.kind == "no-answer":
            await self._end(call, "timeout", "487", "unknown")
            return
        unanswered = {
            "busy": ("user_busy", "486"),
            "rejected": ("call_rejected", "603"),
            "failed": ("unspecified", "503"),
            "not-found": ("not_found", "404"),
        }
        if fate.kind in unanswered:
            cause, sip = unanswered[fate.kind]
            await self._end(call, cause, sip, "callee")
            return
        call.answered_at = time.time()
        await self._emit(call, "call.answered", {"state": "answered"})
        talk = fate.talk_s
        amd = call.params.get("answering_machine_detection") not in (None, "disabled")
        if amd:
            if await self._wait(call, min(1.0, talk)):
                return
            talk -= min(1.0, talk)
            result = "machine" if fate.kind == "voicemail" else "human"
            await self._emit(call, "call.machine.detection.ended", {"result": result})
        limit = float(call.params.get("time_limit_secs") or 14_400)
        if await self._wait(call, min(talk, limit)):
            return  # we hung up
        if talk > limit:
            await self._end(call, "time_limit", "200", "unknown")
        else:
            await self._end(call, "normal_clearing", "200", "callee")

    async def _wait(self, call: SimCall, seconds: float) -> bool:
        """Let `seconds` (simulated) pass; True if the call ended meanwhile (our hangup)."""
        try:
            await asyncio.wait_for(call.ended.wait(), max(0.0, seconds) * self.scale)
        except TimeoutError:
            return False
        return True

    async def _end(self, call: SimCall, cause: str, sip: str, source: str) -> None:
        if not call.alive:
            return
        call.ended_at = time.time()
        call.ended.set()
        extra = {
            "state": "hangup",
            "hangup_cause": cause,
            "hangup_source": source,
            "sip_hangup_cause": sip,
            "end_time": iso(call.ended_at),
        }
        if self.rng.random() < self.knobs.forge_rate:
            self._forge(call)
        await self._emit(call, "call.hangup", extra)

    def _payload(self, call: SimCall, extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "call_control_id": call.call_control_id,
            "call_leg_id": call.call_leg_id,
            "call_session_id": call.call_session_id,
            "client_state": call.client_state,
            "connection_id": call.connection_id,
            "from": call.from_,
            "to": call.to,
            "start_time": iso(call.started_at),
            **extra,
        }

    def _envelope(self, event_type: str, payload: dict[str, Any], url: str) -> dict[str, Any]:
        return {
            "data": {
                "event_type": event_type,
                "id": str(uuid.uuid4()),
                "occurred_at": iso(time.time()),
                "payload": payload,
                "record_type": "event",
            },
            "meta": {"attempt": 1, "delivered_to": url},
        }

    async def _emit(self, call: SimCall, event_type: str, extra: dict[str, Any]) -> None:
        url = call.webhook_url or ""
        body = self._envelope(event_type, self._payload(call, extra), url)
        k = self.knobs
        droppable = k.drop_types is None or event_type in k.drop_types
        dropped = droppable and self.rng.random() < k.drop_rate
        call.log.append(
            {
                "record_type": "call_event",
                "call_leg_id": call.call_leg_id,
                "call_session_id": call.call_session_id,
                "event_timestamp": body["data"]["occurred_at"],
                "name": event_type,
                "type": "webhook",
                "metadata": {"raw_event": body["data"], "delivery_failed": dropped or not url},
            }
        )
        if not url:
            return
        if dropped:
            self.dropped.append((event_type, call.call_control_id))
            return
        raw = json.dumps(body).encode()
        copies = 2 if self.rng.random() < k.duplicate_rate else 1
        seq = len(call.log)
        for _ in range(copies):
            delay = self.rng.uniform(0, k.reorder_s)
            self._spawn(self._send(url, raw, event_type, call.call_control_id, delay, seq=seq))

    def _forge(self, call: SimCall) -> None:
        """A hangup that claims a completed call, signed by someone else, sent first."""
        url = call.webhook_url
        if not url:
            return
        extra = {"hangup_cause": "normal_clearing", "sip_hangup_cause": "200"}
        body = self._envelope("call.hangup", self._payload(call, extra), url)
        raw = json.dumps(body).encode()
        self._spawn(self._send(url, raw, "call.hangup", call.call_control_id, 0, forged=True))

    def sign(
        self, raw: bytes, timestamp: int | None = None, key: SigningKey | None = None
    ) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signed = (key or self.signing_key).sign(stamp.encode() + b"|" + raw)
        return {
            "content-type": "application/json",
            "telnyx-signature-ed25519": base64.b64encode(signed.signature).decode(),
            "telnyx-timestamp": stamp,
        }

    async def _send(
        self,
        url: str,
        raw: bytes,
        event_type: str,
        pcid: str,
        delay: float,
        *,
        forged: bool = False,
        seq: int = 0,
    ) -> None:
        if delay:
            await asyncio.sleep(delay)
        headers = self.sign(raw, key=self.forger_key if forged else None)
        status: int | None = None
        for attempt in range(3):  # Telnyx retries a webhook that failed
            try:
                status = (await self._http.post(url, content=raw, headers=headers)).status_code
            except httpx.HTTPError:
                status = None
            if status is not None and (status < 500 or forged):
                break
            await asyncio.sleep(0.05 * (attempt + 1))
        self.deliveries.append(Delivery(event_type, pcid, status, forged, seq))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until every call has ended and every delivery was attempted."""
        deadline = time.monotonic() + timeout
        while self._tasks or any(c.alive for c in self.calls.values()):
            if time.monotonic() > deadline:
                raise AssertionError("the stand-in's calls never all ended")
            await asyncio.sleep(0.02)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._http.aclose()
