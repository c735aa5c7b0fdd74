"""A local stand-in for Twilio's Calls REST API, for the adapter's end-to-end tests.

It serves what the official SDK uses (create, fetch and update a Call, under
`<prefix>/2010-04-01/Accounts/<sid>/Calls`), with Basic auth and Twilio's JSON shapes; it
lives each call out on a plan decided per number (the truth the tests compare against),
and reports to the call's StatusCallback the way Twilio documents it: form-encoded
CallSid, AccountSid, CallStatus, From, To, Direction, ApiVersion, CallbackSource,
SequenceNumber, Timestamp, plus CallDuration, SipResponseCode and AnsweredBy where they
apply, signed with `RequestValidator(token).compute_signature(url, params)`.

The network between it and dialbatch is made unreliable on purpose (`Faults`): callbacks
duplicated, delivered after their successor, dropped (dialbatch must then ask, through
fetch), and forged ones sent beside the real ones, which must be refused.

The same server with `prefix="/api/laml"` and `signature_header="X-SignalWire-Signature"`
stands in for SignalWire's Compatibility API. With `dialect="telnyx-texml"` it speaks Telnyx
TeXML as documented instead: `<prefix>/Accounts/<sid>/Calls[/<sid>]` without `2010-04-01`
and `.json`, Bearer auth with the API key, a JSON create body (`StatusCallbackEvent`
space-separated, `ApplicationSid` required, Timeout 5..120, TimeLimit 30..14400) answered
`{"call_sid", "from", "to", "status"}`, form-encoded updates, Telnyx's error envelope, ISO
8601 callback timestamps, `AnsweredBy` `machine`/`human`, and callbacks signed with Ed25519
over `timestamp|body` in `telnyx-signature-ed25519` / `telnyx-timestamp`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import secrets
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import uvicorn
from nacl.signing import SigningKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
OUTCOMES = ("completed", "busy", "no-answer", "failed", "machine")
# What dialbatch must record for each planned outcome (the attempt's outcome).
EXPECTED_OUTCOME = {
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "machine": "voicemail",
}
SIP_CODES = {"busy": "486", "no-answer": "487", "failed": "404", "canceled": "487"}
LIVE = ("queued", "initiated", "ringing", "in-progress")
SENDERS = 16  # callbacks in flight at once, as from a few of Twilio's webhook senders
TEXML = "telnyx-texml"


@dataclass(frozen=True)
class Plan:
    """How one dial goes: its outcome, how long it rings, how long the talk lasts."""

    outcome: str
    ring_s: float = 0.05
    talk_s: float = 0.1


@dataclass(frozen=True)
class Faults:
    """Shares of callbacks duplicated, delivered after their successor, and dropped; the
    share of calls that also receive a forged final callback."""

    duplicate: float = 0.0
    reorder: float = 0.0
    drop: float = 0.0
    forge: float = 0.0
    drop_final: float = 0.0  # of final callbacks only (the chaos bench's lossy network)


def mixed_plans(
    seed: int = 1,
    weights: dict[str, float] | None = None,
    ring_s: tuple[float, float] = (0.02, 0.15),
    talk_s: tuple[float, float] = (0.05, 0.3),
) -> Callable[[str], Plan]:
    """Outcomes drawn per number, reproducibly: every dial to one number goes the same way."""
    chosen = weights or {o: 1.0 for o in OUTCOMES}

    def plan(to: str) -> Plan:
        rng = random.Random(f"{seed}:{to}")
        outcome = rng.choices(list(chosen), weights=list(chosen.values()))[0]
        return Plan(outcome, ring_s=rng.uniform(*ring_s), talk_s=rng.uniform(*talk_s))

    return plan


@dataclass
class SimCall:
    sid: str
    to: str
    from_: str
    plan: Plan
    status_callback: str | None
    events: tuple[str, ...]
    amd: bool
    params: dict[str, Any]  # the create request, as sent (Twiml, Timeout, ...)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = "queued"
    answered_by: str | None = None
    started: datetime | None = None
    answered_mono: float | None = None
    ended: datetime | None = None
    duration: int | None = None
    sequence: int = 0
    updates: list[str] = field(default_factory=list)
    interrupt: asyncio.Event = field(default_factory=asyncio.Event)
    held: list[dict[str, str]] = field(default_factory=list)  # callbacks delivered late


class TwilioStandIn:
    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        plan_for: Callable[[str], Plan] | None = None,
        faults: Faults | None = None,
        seed: int = 7,
        prefix: str = "",
        signature_header: str = "X-Twilio-Signature",
        signing_key: str | None = None,
        dialect: str = "twilio",
    ) -> None:
        self.dialect = dialect
        self.texml = dialect == TEXML
        self.ed25519 = SigningKey.generate()
        self.ed25519_forger = SigningKey.generate()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.plan_for = plan_for or mixed_plans(seed)
        self.faults = faults or Faults()
        self.prefix = prefix.rstrip("/")
        self.signature_header = signature_header
        self._rng = random.Random(seed)
        self._validator = RequestValidator(signing_key or auth_token)
        self._forger = RequestValidator("not-the-auth-token")
        self.calls: dict[str, SimCall] = {}
        self.stats: Counter[str] = Counter()
        self.forged_replies: list[int] = []
        self.callback_errors: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        # httpcore's pool rescans every queued request whenever one finishes: with hundreds
        # queued that costs more CPU than the test itself, so queue here instead.
        self._sending = asyncio.Semaphore(SENDERS)
        self.base_url = ""
        if self.texml:
            root, ext = f"{self.prefix}/Accounts/{{account}}", ""
        else:
            root, ext = f"{self.prefix}/{API_VERSION}/Accounts/{{account}}", ".json"
        self.app = Starlette(
            routes=[
                Route(f"{root}/Calls{ext}", self._create, methods=["POST"]),
                Route(f"{root}/Calls{ext}", self._list, methods=["GET"]),
                Route(f"{root}/Calls/{{sid}}{ext}", self._call, methods=["GET", "POST"]),
            ]
        )

    @property
    def public_key(self) -> str:
        """The Ed25519 public key TeXML callbacks verify against (base64)."""
        return base64.b64encode(bytes(self.ed25519.verify_key)).decode()

    # --- the REST API -----------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        if self.texml:
            return request.headers.get("authorization") == f"Bearer {self.auth_token}"
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    def _refuse(self, request: Request) -> Response | None:
        if not self._authorized(request):
            return self._error(401, 20003, "Authenticate")
        if request.path_params["account"] != self.account_sid:
            return self._error(404, 20404, "The requested resource was not found")
        return None

    def _error(self, status: int, code: int, message: str) -> JSONResponse:
        if self.texml:
            error = {"code": str(code), "title": message, "detail": message}
            return JSONResponse({"errors": [error]}, status_code=status)
        return _error(status, code, message)

    async def _create_form(self, request: Request) -> tuple[dict[str, str], tuple[str, ...]]:
        """The create request's fields, and the callback events it asks for."""
        raw = (await request.body()).decode()
        if self.texml:
            assert request.headers.get("content-type") == "application/json"
            body = json.loads(raw)
            assert isinstance(body, dict)
            for name in ("Timeout", "TimeLimit"):
                assert name not in body or isinstance(body[name], int), (name, body[name])
            form = {k: str(v) for k, v in body.items()}
            return form, tuple(form.get("StatusCallbackEvent", "").split())
        pairs = parse_qsl(raw, keep_blank_values=True)
        return dict(pairs), tuple(v for k, v in pairs if k == "StatusCallbackEvent")

    async def _create(self, request: Request) -> Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        form, events = await self._create_form(request)
        events = events or ("completed",)
        if not form.get("To"):
            return self._error(400, 21201, "No 'To' number is specified")
        if not form.get("From"):
            return self._error(400, 21213, "No 'From' number is specified")
        if not (form.get("Url") or form.get("Twiml") or form.get("ApplicationSid")):
            return self._error(400, 21205, "Url parameter is required")
        if len(form.get("Twiml", "")) > 4000:
            return self._error(400, 32018, "Twiml size exceeded maximum allowed value")
        if self.texml:
            if not form.get("ApplicationSid"):
                return self._error(422, 10015, "ApplicationSid is required")
            if not 5 <= int(form.get("Timeout", "30")) <= 120:
                return self._error(422, 10015, "Timeout must be from 5 to 120")
            if not 30 <= int(form.get("TimeLimit", "14400")) <= 14400:
                return self._error(422, 10015, "TimeLimit must be from 30 to 14400")
        call = SimCall(
            sid=("v3:" + secrets.token_urlsafe(24)) if self.texml else "CA" + secrets.token_hex(16),
            to=form["To"],
            from_=form["From"],
            plan=self.plan_for(form["To"]),
            status_callback=form.get("StatusCallback"),
            events=events,
            amd=form.get("MachineDetection") in ("Enable", "DetectMessageEnd"),
            params=form,
        )
        self.calls[call.sid] = call
        self.stats["created"] += 1
        self._spawn(self._live(call))
        if self.texml:
            reply = {"call_sid": call.sid, "from": call.from_, "to": call.to, "status": "queued"}
            return JSONResponse(reply)
        return JSONResponse(self._resource(call), status_code=201)

    async def _call(self, request: Request) -> Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        call = self.calls.get(request.path_params["sid"])
        if call is None:
            return self._error(404, 20404, "The requested resource was not found")
        if request.method == "POST":
            form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
            wanted = form.get("Status")
            if wanted:
                call.updates.append(wanted)
                if call.status not in LIVE:
                    return self._error(400, 21220, "Call is not in-progress. Cannot redirect.")
                self._end_on_request(call, wanted)
        else:
            self.stats["fetched"] += 1
        return JSONResponse(self._resource(call))

    async def _list(self, request: Request) -> Response:
        """Twilio's Calls list, newest first, filtered as documented: `To`, `From`,
        `Status`, and the start time (`StartTime>=` / `StartTime<=`, sent by the SDK as
        `StartTime>` / `StartTime<`; a date, or a date and time in UTC). A call not started
        yet (queued) has no start time, so a start-time filter leaves it out."""
        refused = self._refuse(request)
        if refused is not None:
            return refused
        q = request.query_params
        after, before = _when(q.get("StartTime>")), _when(q.get("StartTime<"))
        found = [
            call
            for call in sorted(self.calls.values(), key=lambda c: c.created, reverse=True)
            if (not q.get("To") or call.to == q["To"])
            and (not q.get("From") or call.from_ == q["From"])
            and (not q.get("Status") or call.status == q["Status"])
            and (after is None or (call.started is not None and after(call.started, ">=")))
            and (before is None or (call.started is not None and before(call.started, "<=")))
        ]
        self.stats["listed"] += 1
        size = int(q.get("PageSize", "50"))
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls.json"
        return JSONResponse(
            {
                "calls": [self._resource(call) for call in found[:size]],
                "end": min(size, len(found)) - 1,
                "first_page_uri": uri,
                "next_page_uri": None,
                "page": 0,
                "page_size": size,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri,
            }
        )

    def _end_on_request(self, call: SimCall, wanted: str) -> None:
        """Twilio's rules: `canceled` ends a call not yet answered and is ignored for an
        answered one; `completed` hangs up whatever the state."""
        if call.status == "in-progress":
            if wanted == "completed":
                self._set(call, "completed")
        elif wanted in ("canceled", "completed"):
            self._set(call, "canceled")
        if call.status not in LIVE:
            call.interrupt.set()  # the call's own life stops here

    def _resource(self, call: SimCall) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{call.sid}.json"
        return {
            "sid": call.sid,
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "annotation": None,
            "answered_by": call.answered_by,
            "caller_name": None,
            "date_created": _rfc2822(call.created),
            "date_updated": _rfc2822(datetime.now(UTC)),
            "direction": "outbound-api",
            "duration": str(call.duration) if call.duration is not None else None,
            "end_time": _rfc2822(call.ended),
            "forwarded_from": None,
            "from": call.from_,
            "from_formatted": call.from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "start_time": _rfc2822(call.started),
            "status": call.status,
            "to": call.to,
            "to_formatted": call.to,
            "trunk_sid": None,
            "uri": uri,
            "subresource_uris": {"notifications": uri.replace(".json", "/Notifications.json")},
        }

    # --- living a call out -------------------------------------------------------------

    async def _live(self, call: SimCall) -> None:
        plan = call.plan
        steps: list[tuple[float, str]] = [(0.0, "initiated")]
        if plan.outcome in ("completed", "machine"):
            steps += [(0.005, "ringing"), (plan.ring_s, "in-progress"), (plan.talk_s, "completed")]
        elif plan.outcome == "busy":
            steps += [(0.005, "ringing"), (plan.ring_s, "busy")]
        elif plan.outcome == "no-answer":
            steps += [(0.005, "ringing"), (plan.ring_s, "no-answer")]
        else:
            steps += [(plan.ring_s, "failed")]
        for delay, status in steps:
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(call.interrupt.wait(), delay)
            if call.status not in LIVE:
                return  # ended on request: _set already reported it
            self._set(call, status)

    def _set(self, call: SimCall, status: str) -> None:
        """Move the call (what fetch shows at once), then report the change."""
        now = datetime.now(UTC)
        call.status = status
        if status == "initiated":
            call.started = now
        if status == "in-progress":
            call.answered_mono = time.monotonic()
            if call.amd:
                machine = "machine" if self.texml else "machine_start"
                call.answered_by = machine if call.plan.outcome == "machine" else "human"
        if status not in LIVE:
            call.ended = now
            talked = call.answered_mono is not None
            call.duration = (
                max(1, round(time.monotonic() - (call.answered_mono or 0))) if talked else 0
            )
        self._report(call, status)

    def _callback_params(self, call: SimCall, status: str) -> dict[str, str]:
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": status,
            "Called": call.to,
            "Caller": call.from_,
            "CallbackSource": "call-progress-events",
            "Direction": "outbound-api",
            "From": call.from_,
            "To": call.to,
            "SequenceNumber": str(call.sequence),
            "Timestamp": _rfc2822(datetime.now(UTC)) or "",
        }
        if self.texml:
            params["Timestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        call.sequence += 1
        if status in SIP_CODES:
            params["SipResponseCode"] = SIP_CODES[status]
        if status == "completed":
            params["CallDuration"] = str(call.duration or 0)
            params["Duration"] = str(max(1, -(-(call.duration or 0) // 60)))
            params["SipResponseCode"] = "200"
        if call.answered_by and status in ("in-progress", "completed"):
            params["AnsweredBy"] = call.answered_by
        return params

    def _report(self, call: SimCall, status: str) -> None:
        event = "answered" if status == "in-progress" else status
        final = status not in LIVE
        wanted = "completed" if final else event
        if call.status_callback is None or wanted not in call.events:
            return
        params = self._callback_params(call, status)
        if final and self._rng.random() < self.faults.forge:
            self._spawn(self._forge(call, params))
        held, call.held = call.held, []
        lost_final = (
            final and self.faults.drop_final and self._rng.random() < self.faults.drop_final
        )
        if lost_final or self._rng.random() < self.faults.drop:
            self.stats["dropped"] += 1
            if final:
                self.stats["dropped_final"] += 1
        elif not final and self._rng.random() < self.faults.reorder:
            self.stats["reordered"] += 1
            call.held.append(params)  # goes out right after the next one
        else:
            late = final and self._rng.random() < self.faults.reorder
            if late:
                self.stats["reordered"] += 1
            self._spawn(self._send(call.status_callback, params, delay=0.03 if late else 0.0))
        for params_held in held:
            self._spawn(self._send(call.status_callback, params_held, delay=0.005))
        if final:
            for params_held in call.held:
                self._spawn(self._send(call.status_callback, params_held, delay=0.005))
            call.held = []

    async def _send(self, url: str, params: dict[str, str], *, delay: float = 0.0) -> None:
        if delay:
            await asyncio.sleep(delay)
        copies = 2 if self._rng.random() < self.faults.duplicate else 1
        if copies == 2:
            self.stats["duplicated"] += 1
        for n in range(copies):
            if n:
                await asyncio.sleep(self._rng.uniform(0.0, 0.05))
            status = await self._post(url, params, self._sign(url, params))
            self.stats["sent"] += 1
            if status != 200:
                self.callback_errors.append(f"{params['CallStatus']} -> HTTP {status}")

    async def _forge(self, call: SimCall, real: dict[str, str]) -> None:
        """A callback that did not come from us, claiming an outcome the call did not have:
        signed with the wrong key, or tampered with after signing, or unsigned."""
        assert call.status_callback is not None
        lie = dict(real)
        lie["CallStatus"] = "busy" if real["CallStatus"] == "completed" else "completed"
        lie["CallDuration"] = "42"
        kind = self.stats["forged"] % 3
        self.stats["forged"] += 1
        url = call.status_callback
        if kind == 0:
            headers = self._sign(url, lie, forger=True)
        elif kind == 1:
            headers = self._sign(url, real)
        else:
            headers = {}
        self.forged_replies.append(await self._post(url, lie, headers))

    def _sign(self, url: str, params: dict[str, str], *, forger: bool = False) -> dict[str, str]:
        """The signature headers for a callback with these fields (sent as `urlencode`d)."""
        if self.texml:
            stamp = str(int(time.time()))
            key = self.ed25519_forger if forger else self.ed25519
            signed = key.sign(stamp.encode() + b"|" + urlencode(params).encode())
            return {
                "telnyx-signature-ed25519": base64.b64encode(signed.signature).decode(),
                "telnyx-timestamp": stamp,
            }
        validator = self._forger if forger else self._validator
        return {self.signature_header: validator.compute_signature(url, params)}

    async def _post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> int:
        assert self._http is not None
        try:
            async with self._sending:
                r = await self._http.post(
                    url,
                    content=urlencode(params).encode(),
                    headers={**headers, "content-type": "application/x-www-form-urlencoded"},
                )
        except httpx.HTTPError as exc:
            self.callback_errors.append(f"{params['CallStatus']} -> {exc!r}")
            return 0
        return r.status_code

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- what the tests read -----------------------------------------------------------

    def truth(self) -> dict[str, str]:
        """Planned outcome by number, for every number dialed."""
        return {call.to: call.plan.outcome for call in self.calls.values()}

    def by_number(self, to: str) -> list[SimCall]:
        return [c for c in self.calls.values() if c.to == to]

    async def settle(self) -> None:
        """Wait for every callback under way to be delivered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- serving -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[TwilioStandIn]:
        async with (
            httpx.AsyncClient(
                timeout=15, limits=httpx.Limits(max_connections=SENDERS)
            ) as self._http,
            serve(self.app) as url,
        ):
            self.base_url = url + self.prefix
            try:
                yield self
            finally:
                for call in self.calls.values():
                    call.interrupt.set()
                await self.settle()


def bound_socket() -> socket.socket:
    """A listening socket on 127.0.0.1 with a port of the system's choosing."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def serve(app: Any, sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Serve an ASGI app over real HTTP on loopback in this event loop; yields its URL."""
    sock = sock or bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


def _rfc2822(value: datetime | None) -> str | None:
    return format_datetime(value) if value is not None else None


def _when(value: str | None) -> Callable[[datetime, str], bool] | None:
    """A StartTime filter's bound: a date compares by day, a date and time to the second."""
    if not value:
        return None
    if "T" not in value:
        day = datetime.strptime(value, "%Y-%m-%d").date()
        return lambda t, op: t.date() >= day if op == ">=" else t.date() <= day
    at = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return lambda t, op: (
        t.replace(microsecond=0) >= at if op == ">=" else t.replace(microsecond=0) <= at
    )
