"""Dialing through Twilio's REST API (or a Twilio-compatible one: SignalWire, ...).

Calls are placed with the SDK's Calls resource and followed by status callbacks to
`/v1/providers/twilio/callbacks/status?dk=<dial_key>`: the dial key rides in the callback
URL, which Twilio signs, so a callback names its attempt and cannot be redirected to
another. The SDK runs on its aiohttp client (`AsyncTwilioHttpClient`): a batch places
hundreds of calls at once, and a thread per request (the requests-based client behind
`asyncio.to_thread`) would cap that at the default pool's few workers.

Twilio has no idempotency key, so `start_call` is idempotent within this process (a dial
key seen before returns its CallSid, a concurrent twin waits for the first). A dial whose
CallSid was never recorded (the worker died between Twilio's answer and our write) cannot
be found again: Twilio's call records do not keep our callback URL, so no search can tell
our call from another to the same number. `fetch_status` answers OutcomeUnknowable for it
and the engine fails it without dialing again.

With `dialect = "telnyx-texml"` the same code dials through Telnyx's TeXML API: texml.py
rewrites the SDK's requests at the HTTP client and checks Telnyx's Ed25519 callbacks.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp
from twilio.base.exceptions import TwilioRestException  # type: ignore[import-untyped]
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]
from twilio.http.response import Response  # type: ignore[import-untyped]
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from dialbatch.domain.ids import now_ms
from dialbatch.domain.outcomes import CallEvent
from dialbatch.providers.base import (
    CallbackReply,
    CallbackRequest,
    DialLookup,
    DialMaybePlaced,
    DialNotFound,
    DialRequest,
    EventSink,
    InvalidSignature,
    Live,
    OutcomeUnknowable,
    ProviderError,
)
from dialbatch.providers.dial_once import DialOnce
from dialbatch.providers.twilio import statuses, texml
from dialbatch.providers.twilio.config import TwilioSettings, agent_settings
from dialbatch.providers.twilio.signature import Form, verified_form
from dialbatch.providers.twilio.twiml import stream_twiml

log = logging.getLogger(__name__)

NAME = "twilio"
CALLBACK_EVENTS = ["initiated", "ringing", "answered", "completed"]
MAX_REMEMBERED = 100_000  # dial key -> CallSid; the engine records the sid right after
MAX_IN_FLIGHT = 64  # REST requests at once
CALL_NOT_LIVE = 21220  # Twilio: "Call is not in-progress", i.e. it has already ended
# Looking a dial up in the Calls list: the window opens this long before the intent (clocks
# differ a little); Twilio has listed a call this long after its create was answered; more
# candidates than this and the answer would be unknowable anyway.
WINDOW_BEFORE_MS = 2_000
LIST_SETTLE_S = 30.0
LIST_LIMIT = 20

T = TypeVar("T")


class TwilioProvider:
    name = NAME

    def __init__(self, settings: TwilioSettings, public_url: str, sink: EventSink) -> None:
        self._settings = settings
        self._public_url = public_url.rstrip("/")
        self._sink = sink  # unused: Twilio reports through callbacks, applied by the route
        self._validator = RequestValidator(settings.callback_key())
        self._client: Any = None
        self._http: Any = None
        self._limit = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._dials = DialOnce(MAX_REMEMBERED)
        # Who is named in an outcome's detail (`No answer (Telnyx TeXML status no-answer)`).
        self._label = "Telnyx TeXML" if settings.texml else "Twilio"

    # --- placing and ending calls ---------------------------------------------------------

    async def start_call(self, request: DialRequest) -> str:
        return await self._dials.place(request.dial_key, lambda: self._create(request))

    async def _create(self, request: DialRequest) -> str:
        settings, twiml_url = agent_settings(request.agent_config)
        caller = request.from_ or self._settings.from_number
        if not caller:
            raise ProviderError(
                "no caller ID: set the agent's fromNumbers or DIALBATCH_TWILIO_FROM_NUMBER"
            )
        query = {"dk": request.dial_key}
        if settings.machine_detection:
            query["amd"] = "1"
        options: dict[str, Any] = {
            "to": request.to,
            "from_": caller,
            "status_callback": f"{self.callback_url('status')}?{urlencode(query)}",
            "status_callback_event": CALLBACK_EVENTS,
            "status_callback_method": "POST",
            "timeout": self._settings.ring_timeout_s(settings.ring_timeout_s),
            "time_limit": self._settings.time_limit_s(settings.max_duration_s),
        }
        if self._settings.texml:
            options["application_sid"] = self._settings.application_sid
        if settings.machine_detection:
            options["machine_detection"] = self._settings.machine_detection_mode
        if twiml_url is not None:
            options.update(url=twiml_url, method="POST")
        elif settings.agent_url is not None:
            options["twiml"] = stream_twiml(settings.agent_url, request.job_id, request.metadata)
        else:
            raise ProviderError("the agent has neither agentUrl nor twimlUrl")
        call = await self._rest(
            lambda c: c.calls.create_async(**options), "create a call", placing=True
        )
        sid: str | None = call.sid
        if not sid:
            # Telnyx documents no CallSid in this reply (texml.py maps `call_sid` when it
            # comes): the call was placed, but nothing can follow it.
            raise DialMaybePlaced("the provider accepted the call but returned no CallSid")
        return sid

    async def hangup(self, provider_call_id: str) -> None:
        """Cancel a call still queued or ringing; hang up one that was answered.

        Twilio ignores `canceled` for an answered call (the reply still reads in-progress),
        so that reply is what tells us to send `completed` instead.
        """
        try:
            call = await self._rest(
                lambda c: c.calls(provider_call_id).update_async(status="canceled"), "cancel"
            )
            if call.status == "in-progress":
                await self._rest(
                    lambda c: c.calls(provider_call_id).update_async(status="completed"),
                    "hang up",
                )
        except _Gone:
            return  # already over, or unknown to Twilio: nothing to end

    async def fetch_status(self, dial_key: str, provider_call_id: str | None) -> CallEvent | Live:
        sid = provider_call_id or self._dials.known(dial_key)
        if sid is None:
            raise OutcomeUnknowable(
                "no CallSid was recorded for this dial and Twilio cannot be searched by dial key"
            )
        try:
            call = await self._rest(lambda c: c.calls(sid).fetch_async(), "fetch a call")
        except _Gone as exc:
            raise OutcomeUnknowable(f"Twilio has no call {sid}") from exc
        event = statuses.translate(
            str(call.status or ""),
            dial_key=dial_key,
            call_sid=sid,
            answered_by=call.answered_by,
            duration=call.duration,
            at_ms=_epoch_ms(call.end_time),
            provider=self._label,
        )
        if isinstance(event, CallEvent):
            return event
        return Live(sid)

    async def find_dial(self, lookup: DialLookup) -> CallEvent | Live:
        """A dial whose CallSid we never recorded (the worker died between the intent and
        Twilio's answer, or before writing it): Twilio's create has no idempotency key,
        but its Calls list can be filtered by To, From and start time.

        The window opens just before the intent and closes once the create request must
        have been answered; calls still queued (no start time yet) are listed apart. One
        call in it: that is the dial, followed by its CallSid. None, once Twilio has had
        LIST_SETTLE_S to list it: the create never reached Twilio (retried by policy, as
        never placed). Several: which one is ours cannot be told (unknowable).
        """
        if lookup.provider_call_id is not None:
            raise OutcomeUnknowable(f"Twilio has no call {lookup.provider_call_id}")
        if self._settings.texml:
            raise OutcomeUnknowable("Telnyx TeXML's call list is not searched")
        caller = lookup.from_ or self._settings.from_number
        if lookup.started_at_ms is None or not caller:
            raise OutcomeUnknowable("the dial's start time or caller ID is not known")
        opens = lookup.started_at_ms - WINDOW_BEFORE_MS
        closes = lookup.started_at_ms + int(self._settings.request_timeout_s * 1000) + 5_000
        after, before = _utc(opens), _utc(closes)
        started = await self._rest(
            lambda c: c.calls.list_async(
                to=lookup.to,
                from_=caller,
                start_time_after=after,
                start_time_before=before,
                limit=LIST_LIMIT,
            ),
            "list calls",
        )
        queued = await self._rest(
            lambda c: c.calls.list_async(
                to=lookup.to, from_=caller, status="queued", limit=LIST_LIMIT
            ),
            "list queued calls",
        )
        sids = {
            str(call.sid)
            for call in [*started, *queued]
            if opens - 1000 <= (_epoch_ms(call.date_created) or opens) <= closes + 1000
        }
        if len(sids) == 1:
            sid = sids.pop()
            self._dials.remember(lookup.dial_key, sid)
            return await self.fetch_status(lookup.dial_key, sid)
        if sids:
            raise OutcomeUnknowable(
                f"{len(sids)} calls to {lookup.to} from {caller} started within the dial's "
                "window; which one is this dial cannot be told"
            )
        if now_ms() - closes < LIST_SETTLE_S * 1000:
            raise ProviderError("too soon to tell whether Twilio received the dial")
        raise DialNotFound(f"Twilio lists no call to {lookup.to} from {caller} at that time")

    # --- callbacks ------------------------------------------------------------------------

    def callback_url(self, path: str) -> str:
        return f"{self._public_url}/v1/providers/{NAME}/callbacks/{path}"

    async def parse_callback(self, request: CallbackRequest) -> CallbackReply:
        """Signature first; then the status callback as an event (a progress step or the
        end of the dial). Anything else that is validly signed is acknowledged and ignored."""
        form = self._verified(request)
        if request.path not in ("status", ""):
            return CallbackReply()
        dial_key = request.query.get("dk") or None
        if self._settings.texml and dial_key is not None:
            dial_key = await self._confirmed_dial_key(dial_key, form.get("CallSid") or None)
        event = statuses.from_callback(form, dial_key, provider=self._label)
        if event is None:
            return CallbackReply()
        if (
            isinstance(event, CallEvent)
            and form.get("CallStatus") == "completed"
            and request.query.get("amd") == "1"
            and not form.get("AnsweredBy")
        ):
            # Placed with machine detection but the callback does not say who answered:
            # ask the call resource rather than guess a person.
            return CallbackReply(events=[await self._resolve_answered_by(dial_key, event)])
        return CallbackReply(events=[event])

    def _verified(self, request: CallbackRequest) -> Form:
        if self._settings.texml:
            return texml.verified_form(request, self._settings.telnyx_public_key or "")
        return verified_form(request, self._validator)

    async def _confirmed_dial_key(self, dial_key: str, call_sid: str | None) -> str | None:
        """Telnyx signs the body, not the URL, so the URL's dial key is believed only when
        it is this process's dial and its CallSid is the signed one; a key naming another
        call is refused. A dial this process did not place is matched by CallSid alone."""
        known = self._dials.known(dial_key)
        pending = self._dials.pending(dial_key)
        if known is None and pending is not None:
            try:
                async with asyncio.timeout(self._settings.request_timeout_s):
                    known = await asyncio.shield(pending)
            except Exception:  # the dial failed or is slow: match by CallSid alone
                known = None
        if known is None:
            return None
        if known != call_sid:
            raise InvalidSignature("the callback's CallSid is not its dial key's call")
        return dial_key

    async def _resolve_answered_by(self, dial_key: str | None, event: CallEvent) -> CallEvent:
        """The call resource's word on who answered; the callback's own reading (a person)
        when Twilio cannot be asked."""
        try:
            fetched = await self.fetch_status(dial_key or "", event.provider_call_id)
        except (ProviderError, OutcomeUnknowable) as exc:
            log.warning("cannot learn who answered %s: %s", event.provider_call_id, exc)
            return event
        return fetched if isinstance(fetched, CallEvent) else event

    # --- plumbing ---------------------------------------------------------------------------

    def _sdk(self) -> Any:
        """The SDK client, made on first use: its aiohttp session belongs to this loop."""
        if self._client is None:
            self._http = _HttpClient(self._settings.token() if self._settings.texml else None)
            client = Client(
                username=self._settings.account_sid,
                password=self._settings.token(),
                account_sid=self._settings.account_sid,
                http_client=self._http,
            )
            # Only what we were told: never TWILIO_EDGE / TWILIO_REGION from the environment.
            client.edge = self._settings.edge
            client.region = self._settings.region
            client.api.base_url = self._settings.base_url
            self._client = client
        return self._client

    async def _rest(
        self, action: Callable[[Any], Awaitable[T]], what: str, *, placing: bool = False
    ) -> T:
        """One REST request, bounded in time and in concurrency; errors in our terms.

        Twilio's create has no idempotency key: when `placing` and the request may have
        reached Twilio (a timeout, a dropped connection, a 5xx), the call may exist, so we
        raise DialMaybePlaced and the engine looks it up instead of dialing again.
        """
        async with self._limit:
            try:
                async with asyncio.timeout(self._settings.request_timeout_s):
                    return await action(self._sdk())
            except TwilioRestException as exc:
                if exc.status == 404 or exc.code == CALL_NOT_LIVE:
                    raise _Gone(str(exc)) from exc
                message = (
                    f"Twilio refused to {what}: HTTP {exc.status}, error {exc.code}: {exc.msg}"
                )
                if placing and exc.status >= 500:
                    raise DialMaybePlaced(message) from exc
                raise ProviderError(message) from exc
            except aiohttp.ClientConnectorError as exc:  # never connected: nothing was sent
                raise ProviderError(f"could not reach Twilio to {what}: {exc!r}") from exc
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if placing:
                    raise DialMaybePlaced(f"no answer from Twilio to {what}: {exc!r}") from exc
                raise ProviderError(f"could not reach Twilio to {what}: {exc!r}") from exc

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._client = self._http = None


class _HttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The SDK's aiohttp client, sending Basic credentials as a header: aiohttp 3.14
    deprecates the `auth=` argument the SDK would otherwise pass on every request.

    Given a TeXML API key, it speaks Telnyx TeXML instead (texml.py)."""

    def __init__(self, texml_api_key: str | None = None) -> None:
        super().__init__()
        self._texml_key = texml_api_key

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the SDK's signature)
        allow_redirects: bool = False,
    ) -> Any:
        if self._texml_key is not None:
            return await self._texml_request(method, url, params, data, headers, timeout)
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers = {**(headers or {}), "Authorization": f"Basic {token}"}
        return await super().request(
            method, url, params, data, headers, None, timeout, allow_redirects
        )

    async def _texml_request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None,
        data: dict[str, object] | None,
        headers: dict[str, str] | None,
        timeout: float | None,  # noqa: ASYNC109 (the SDK's signature)
    ) -> Any:
        assert self._texml_key is not None
        sent, creating = texml.rewrite_request(method, url, data, headers, self._texml_key)
        reply = await super().request(
            method, sent.url, params, sent.data, sent.headers, None, timeout, False
        )
        text = texml.rewrite_reply(reply.status_code, reply.text, created=creating)
        return Response(reply.status_code, text, reply.headers)


class _Gone(ProviderError):
    """Twilio has no such call, or it has already ended."""


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _epoch_ms(value: Any) -> int | None:
    timestamp = getattr(value, "timestamp", None)
    return int(timestamp() * 1000) if callable(timestamp) else None
