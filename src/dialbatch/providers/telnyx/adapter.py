"""The Telnyx Call Control adapter: dial, hang up and look up calls with the official SDK,
and turn signed webhooks into dial events.

Webhooks can land on any API process, duplicated, reordered or not at all, so the mapping
(events.py) needs nothing but the webhook itself. Two things are remembered per call in
this process to do better when they can: when the answer was heard (durations count talk
time, not ringing) and whether machine detection reported (see `_hold`). A dial that goes
quiet is settled by fetch_status from Telnyx's own record of the call.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import telnyx
from telnyx import AsyncTelnyx
from telnyx.types.call_event_list_params import Filter as CallEventFilter

from dialbatch.domain.ids import now_ms
from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.providers.base import (
    CallbackReply,
    CallbackRequest,
    CallProgress,
    DialLookup,
    DialMaybePlaced,
    DialNotFound,
    DialRequest,
    EventSink,
    Live,
    OutcomeUnknowable,
    ProviderError,
    ProviderEvent,
    Stage,
)
from dialbatch.providers.call_settings import CallSettingsError
from dialbatch.providers.dial_once import DialOnce
from dialbatch.providers.telnyx import events as ev
from dialbatch.providers.telnyx import webhooks
from dialbatch.providers.telnyx.config import TelnyxSettings, dial_options

log = logging.getLogger(__name__)

MAX_TRACKED = 20_000  # calls remembered per process (answer time, detection result)
MACHINE_HANGUP_COMMAND = "dialbatch-machine-hangup"
# Searching the call-event log for a dial whose call id we never learned (find_dial).
WINDOW_BEFORE_MS = 2_000  # the log is read from just before the intent (clock skew)
LOG_SETTLE_S = 30.0  # how long Telnyx may take to log a call it accepted
LOG_KEPT_MS = 24 * 3600 * 1000  # Telnyx's call-event retention
MAX_LOG_RECORDS = 5_000  # a number called that often since the dial: not searched further


@dataclass
class _Track:
    answered_at_ms: int | None = None
    detected: bool = False  # a machine-detection result arrived (any result)
    machine: bool = False
    held: CallEvent | None = None
    held_leg: str | None = None  # the held call's call_leg_id, to read Telnyx's log
    timer: asyncio.TimerHandle | None = None


class TelnyxProvider:
    name = "telnyx"

    def __init__(
        self,
        settings: TelnyxSettings,
        sink: EventSink,
        *,
        webhook_url: str | None = None,
        client: AsyncTelnyx | None = None,
    ) -> None:
        if not settings.configured or settings.public_key is None or settings.api_key is None:
            raise ValueError("Telnyx needs api_key, public_key and connection_id")
        self.settings = settings
        self._public_key = settings.public_key
        self._sink = sink
        self._webhook_url = webhook_url
        self._client = client or AsyncTelnyx(
            api_key=settings.api_key.get_secret_value(),
            public_key=settings.public_key,
            base_url=settings.base_url,
            max_retries=settings.max_retries,
            timeout=settings.request_timeout_s,
        )
        self._dials = DialOnce(MAX_TRACKED)  # dial_key -> call_control_id
        self._tracks: OrderedDict[str, _Track] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- placing and ending calls ---------------------------------------------------------

    async def start_call(self, request: DialRequest) -> str:
        """Idempotent on dial_key: in this process by memory, at Telnyx by `command_id`
        (Telnyx ignores a second dial with the same one, e.g. the SDK's own retry)."""
        return await self._dials.place(request.dial_key, lambda: self._dial(request))

    async def _dial(self, request: DialRequest) -> str:
        try:
            agent, options = dial_options(
                request.agent_config, job_id=request.job_id, dial_key=request.dial_key
            )
        except CallSettingsError as exc:
            raise ProviderError(f"agent providerConfig: {exc}") from exc
        caller = request.from_ or self.settings.from_number
        if not caller:
            raise ProviderError("no caller number: give the agent fromNumbers")
        connection = request.agent_config.get("connectionId") or self.settings.connection_id
        state = ev.ClientState(request.dial_key, amd=agent.machine_detection)
        if self._webhook_url:
            options["webhook_url"] = self._webhook_url
        try:
            response = await self._client.calls.dial(
                connection_id=str(connection),
                from_=caller,
                to=request.to,
                client_state=state.encode(),
                command_id=request.dial_key,
                **options,
            )
        except telnyx.APIStatusError as exc:
            if exc.status_code >= 500:  # it may have been placed before the error
                raise DialMaybePlaced(f"Telnyx answered the dial {exc.status_code}") from exc
            raise ProviderError(f"Telnyx refused the dial ({exc.status_code})") from exc
        except telnyx.APITimeoutError as exc:  # sent, no answer: the person may be ringing
            raise DialMaybePlaced(f"no answer from Telnyx to the dial: {exc}") from exc
        except telnyx.APIError as exc:
            raise ProviderError(f"could not reach Telnyx: {exc}") from exc
        if response.data is None or not response.data.call_control_id:
            raise ProviderError("Telnyx accepted the dial but returned no call_control_id")
        return response.data.call_control_id

    async def hangup(self, provider_call_id: str, state: ev.ClientState | None = None) -> None:
        """Telnyx's hangup cancels a ringing call and ends an answered one. A call that
        already ended (404/422) is fine."""
        extra: dict[str, Any] = {}
        if state is not None:
            extra["client_state"] = state.encode()
            extra["command_id"] = MACHINE_HANGUP_COMMAND
        try:
            await self._client.calls.actions.hangup(provider_call_id, **extra)
        except (telnyx.NotFoundError, telnyx.UnprocessableEntityError):
            return
        except telnyx.APIError as exc:
            raise ProviderError(f"Telnyx hangup failed: {exc}") from exc

    # --- reconciliation --------------------------------------------------------------------

    async def fetch_status(self, dial_key: str, provider_call_id: str | None) -> CallEvent | Live:
        """GET /calls/{id} says whether the call is alive; if not, Telnyx's call-event log
        (GET /call_events, every webhook it generated for the leg, delivered or not) says
        how it ended. Telnyx keeps call status 10 minutes after the end: a call it no
        longer knows, or one placed without an id we heard, is OutcomeUnknowable."""
        if provider_call_id is None:
            raise OutcomeUnknowable("Telnyx was never heard to accept this dial")
        try:
            status = await self._client.calls.retrieve_status(provider_call_id)
        except telnyx.NotFoundError as exc:
            raise OutcomeUnknowable("Telnyx no longer knows this call") from exc
        except telnyx.APIError as exc:
            raise ProviderError(f"Telnyx status lookup failed: {exc}") from exc
        data = status.data
        if data is None:
            raise OutcomeUnknowable("Telnyx returned no call status")
        if data.is_alive:
            return Live(provider_call_id)
        event = await self._replay(data.call_leg_id)
        if event is None:
            raise OutcomeUnknowable("the call ended but Telnyx's log shows no hangup yet")
        if event.dial_key != dial_key:
            raise OutcomeUnknowable("Telnyx's log for this call names another dial")
        return event

    async def find_dial(self, lookup: DialLookup) -> CallEvent | Live:
        """A dial whose call is not known by id (the worker died before Telnyx's answer was
        recorded, the dial request timed out, or Telnyx dropped the call's status after 10
        minutes): search Telnyx's Call Events log, which keeps every webhook it generated for
        24 hours, delivered or not.

        `command_id` only makes Telnyx ignore a repeated command within 60 s; it is not a key
        a dial can be looked up by. But every webhook of a call carries back the
        `client_state` we dialed with, which names the dial key: the log is filtered by `to`,
        `from` and `occurred_at` (from just before the intent), and a webhook naming this dial
        key *is* this dial, however many other calls went to the same number. Found: its
        logged outcome, or, with no hangup logged yet, the call followed by its id. Not found
        once Telnyx has had LOG_SETTLE_S to log it: Telnyx generates `call.initiated` as soon
        as it accepts a dial, so the dial never reached it (retried by policy, as never
        placed), unless we heard Telnyx accept it, which makes it unknowable instead.
        """
        if lookup.started_at_ms is None:
            raise OutcomeUnknowable("the dial's start time is not known")
        if now_ms() - lookup.started_at_ms > LOG_KEPT_MS:
            raise OutcomeUnknowable("Telnyx keeps its call-event log for 24 hours only")
        opens = lookup.started_at_ms - WINDOW_BEFORE_MS
        closes = lookup.started_at_ms + int(self.settings.request_timeout_s * 1000) + 5_000
        wanted: CallEventFilter = {
            "to": lookup.to,
            "type": "webhook",
            "occurred_at": {"gte": _iso(opens)},
        }
        caller = lookup.from_ or self.settings.from_number
        if caller:
            wanted["from"] = caller
        hooks: list[ev.Webhook] = []
        seen = 0
        try:
            async for record in self._client.call_events.list(filter=wanted, page_size=50):
                seen += 1
                if seen > MAX_LOG_RECORDS:
                    raise OutcomeUnknowable(
                        f"more than {MAX_LOG_RECORDS} call events to {lookup.to} since the dial"
                    )
                hook = _find_webhook(record.metadata, record.name)
                state = hook.state if hook is not None else None
                if hook is not None and state is not None and state.dial_key == lookup.dial_key:
                    hooks.append(hook)
        except telnyx.APIError as exc:
            raise ProviderError(f"Telnyx call-event search failed: {exc}") from exc
        pcid = next((h.call_control_id for h in hooks if h.call_control_id), None)
        if pcid is None:
            if lookup.provider_call_id is not None:
                raise OutcomeUnknowable("Telnyx accepted this dial but its log has no record")
            if now_ms() - closes < LOG_SETTLE_S * 1000:
                raise ProviderError("too soon to tell whether Telnyx received the dial")
            raise DialNotFound(f"Telnyx logged no call to {lookup.to} for this dial")
        self._dials.remember(lookup.dial_key, pcid)
        event = ev.outcome_from_log(hooks)
        if event is not None:
            return event
        return await self.fetch_status(lookup.dial_key, pcid)

    async def _replay(self, call_leg_id: str) -> CallEvent | None:
        hooks: list[ev.Webhook] = []
        try:
            async for record in self._client.call_events.list(
                filter={"leg_id": call_leg_id, "type": "webhook"}, page_size=50
            ):
                hook = _find_webhook(record.metadata, record.name)
                if hook is not None:
                    hooks.append(hook)
        except telnyx.APIError as exc:
            raise ProviderError(f"Telnyx call-event lookup failed: {exc}") from exc
        return ev.outcome_from_log(hooks)

    # --- webhooks ----------------------------------------------------------------------------

    async def parse_callback(self, request: CallbackRequest) -> CallbackReply:
        """Signature first (InvalidSignature: the route answers 403, nothing applied)."""
        webhooks.verify(request, self._public_key, self.settings.webhook_tolerance_s)
        try:
            hook = ev.parse_webhook(json.loads(request.body))
        except ValueError:
            hook = None
        if hook is None:
            log.warning("telnyx: ignored a signed webhook that is not a call event")
            return CallbackReply()
        state = hook.state
        pcid = hook.call_control_id
        if state is None or pcid is None:
            return CallbackReply()  # not a call dialbatch placed
        return CallbackReply(events=self._translate(hook, state, pcid))

    def _translate(self, hook: ev.Webhook, state: ev.ClientState, pcid: str) -> list[Any]:
        track = self._track(pcid)
        if hook.event_type == ev.ANSWERED:
            track.answered_at_ms = track.answered_at_ms or hook.occurred_at_ms
            return [ev.progress(hook, state)]
        if hook.event_type in ev.MACHINE_EVENTS:
            return self._on_detection(hook, state, pcid, track)
        if hook.event_type == ev.HANGUP:
            final = ev.hangup_event(
                hook, state, answered_at_ms=track.answered_at_ms, machine=track.machine
            )
            if self._should_hold(final, state, track):
                leg = hook.payload.get("call_leg_id")
                self._hold(pcid, track, final, leg if isinstance(leg, str) else None)
                return [CallProgress(Stage.ANSWERED, state.dial_key, pcid, hook.occurred_at_ms)]
            return [final]
        return [ev.progress(hook, state)]

    def _on_detection(
        self, hook: ev.Webhook, state: ev.ClientState, pcid: str, track: _Track
    ) -> list[ProviderEvent]:
        track.detected = True
        held = self._release(track)
        if not hook.is_machine:
            return [held] if held is not None else [ev.progress(hook, state)]
        track.machine = True
        if held is not None:  # the hangup came first: it ends as voicemail, duration kept
            return [CallEvent(**{**held.__dict__, "outcome": Outcome.VOICEMAIL})]
        # A machine answered a live call: end it, saying so in the client_state its
        # hangup webhook will carry, so that webhook means voicemail too.
        marked = ev.ClientState(state.dial_key, amd=state.amd, machine=True)
        self._background(self._hangup_quietly(pcid, marked))
        return [ev.machine_event(hook, state)]

    def _should_hold(self, final: CallEvent, state: ev.ClientState, track: _Track) -> bool:
        """An answered call that ended normally while machine detection was on, with no
        detection result heard here: that result may still be on its way (reordered)."""
        return (
            final.outcome is Outcome.COMPLETED
            and state.amd
            and not track.detected
            and self.settings.amd_grace_s > 0
        )

    def _hold(self, pcid: str, track: _Track, final: CallEvent, leg: str | None) -> None:
        if track.held is not None:
            return  # a duplicate hangup: already held
        track.held, track.held_leg = final, leg
        track.timer = asyncio.get_running_loop().call_later(
            self.settings.amd_grace_s, self._deliver_held, pcid
        )

    def _release(self, track: _Track) -> CallEvent | None:
        held, track.held = track.held, None
        if track.timer is not None:
            track.timer.cancel()
            track.timer = None
        return held

    def _deliver_held(self, pcid: str) -> None:
        track = self._tracks.get(pcid)
        if track is None:
            return
        leg = track.held_leg
        held = self._release(track)
        if held is not None:
            self._background(self._settle_held(held, leg))

    async def _settle_held(self, held: CallEvent, leg: str | None) -> None:
        """No detection result came (lost?): Telnyx's log of the call says whether a
        machine answered; without it, the call completed."""
        event: CallEvent | None = None
        if leg is not None:
            try:
                event = await self._replay(leg)
            except ProviderError as exc:
                log.warning("telnyx: could not read the log of %s: %s", held.dial_key, exc)
        if event is None or event.dial_key != held.dial_key:
            event = held
        await self._deliver(event)

    async def _deliver(self, event: ProviderEvent) -> None:
        try:
            await self._sink(event)
        except Exception:  # the dial goes quiet and fetch_status settles it
            log.exception("telnyx: delivering %s failed", event.dial_key)

    async def _hangup_quietly(self, pcid: str, state: ev.ClientState) -> None:
        try:
            await self.hangup(pcid, state)
        except ProviderError as exc:  # time_limit_secs still ends the call
            log.warning("telnyx: could not hang up machine-answered call %s: %s", pcid, exc)

    def _background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _track(self, pcid: str) -> _Track:
        track = self._tracks.get(pcid)
        if track is None:
            track = _remember(self._tracks, pcid, _Track())
        return track

    async def aclose(self) -> None:
        """Deliver held outcomes now (the detection result did not come in time), let
        background work finish, and close the HTTP client."""
        for track in list(self._tracks.values()):
            held = self._release(track)
            if held is not None:
                await self._deliver(held)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._client.close()


def _remember(store: OrderedDict[str, Any], key: str, value: Any) -> Any:
    store[key] = value
    store.move_to_end(key)
    while len(store) > MAX_TRACKED:
        store.popitem(last=False)
    return value


def _find_webhook(metadata: object, name: str) -> ev.Webhook | None:
    """The webhook inside a call-event record. Telnyx documents `metadata` only as "the raw
    event and extra information", so look for the first nested object shaped like one."""
    queue: list[object] = [metadata]
    while queue:
        item = queue.pop(0)
        if isinstance(item, dict):
            hook = ev.parse_webhook(item)
            if hook is not None and hook.event_type == name:
                return hook
            queue.extend(item.values())
        elif isinstance(item, list):
            queue.extend(item)
    return None


def _iso(ms: int) -> str:
    """Epoch ms as the ISO 8601 UTC form Telnyx's filters take."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
