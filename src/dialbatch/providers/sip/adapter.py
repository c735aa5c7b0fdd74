"""The SIP provider: calls placed straight on a SIP trunk or PBX, audio bridged to the agent.

All call state lives here, on the asyncio loop, in memory: the UAC of a call dies with the
process, so after a restart every dial is `OutcomeUnknowable` (never re-dialed). A call
ends exactly once (`_finish`); whatever sippy reports after that is ignored, and the engine
applies events forward-only anyway.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from dialbatch.domain.ids import now_ms
from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.providers.base import (
    CallProgress,
    DialLookup,
    DialRequest,
    EventSink,
    Live,
    OutcomeUnknowable,
    ProviderError,
    ProviderEvent,
    Stage,
)
from dialbatch.providers.sip import outcome_map, sdp
from dialbatch.providers.sip.config import AgentSipConfig, SipConfigError, SipSettings, agent_config
from dialbatch.providers.sip.media_bridge import MediaBridge
from dialbatch.providers.sip.rtp import RtpSession
from dialbatch.providers.sip.uac import Invite, SipEndpoint

log = logging.getLogger(__name__)

KEEP_ENDED_S = 6 * 3600  # how long fetch_status remembers a finished call


@dataclass(eq=False)
class _Call:
    provider: SipProvider
    request: DialRequest
    call_id: str
    options: AgentSipConfig
    rtp: RtpSession
    state: str = "trying"  # trying -> ringing -> answered -> ended
    heard: bool = False  # anything from the trunk yet (a made-up 408 is not)
    answered_at: float | None = None  # monotonic
    event: CallEvent | None = None
    ended_at: float | None = None
    bridge: MediaBridge | None = None
    timers: list[asyncio.TimerHandle] = field(default_factory=list)

    # UacListener: what the far end did
    def on_progress(self, code: int) -> None:
        self.heard = True
        if self.state == "trying" and code > 100:
            self.state = "ringing"
            self.provider._report(self, Stage.RINGING)

    def on_answer(self, answer: str | None) -> None:
        self.heard = True
        if self.state in ("answered", "ended"):
            return
        self.state = "answered"
        self.answered_at = time.monotonic()
        self.provider._report(self, Stage.ANSWERED)
        self.provider._answered(self, answer)

    def on_failure(self, code: int, reason: str) -> None:
        if self.state == "ended":
            return
        final = outcome_map.for_failure(code, reason, heard_from_peer=self.heard)
        self.provider._finish(self, final.outcome, code=final.code, detail=final.detail)

    def on_remote_bye(self) -> None:
        if self.state == "answered":
            self.provider._finish(self, Outcome.COMPLETED, code="200", detail="callee hung up")

    def talk_seconds(self) -> float | None:
        if self.answered_at is None:
            return None
        return round(time.monotonic() - self.answered_at, 1)


class SipProvider:
    name = "sip"
    follows_in_memory = True  # the user agent of each call lives in this process

    def __init__(self, sink: EventSink, settings: SipSettings) -> None:
        self._sink = sink
        self.settings = settings
        password = settings.auth_password.get_secret_value() if settings.auth_password else None
        self.endpoint = SipEndpoint(
            settings.bind_host,
            settings.bind_port,
            auth_user=settings.auth_user,
            auth_password=password,
        )
        self._started = False
        self._start_lock = asyncio.Lock()
        self._calls: dict[str, _Call] = {}  # by dial_key
        self._by_id: dict[str, str] = {}  # call id -> dial_key
        self._tasks: set[asyncio.Task[None]] = set()
        self.dials = 0

    async def _ensure_started(self) -> None:
        async with self._start_lock:
            if not self._started:
                try:
                    await self.endpoint.start()
                except OSError as exc:
                    where = f"{self.settings.bind_host}:{self.settings.bind_port}"
                    raise ProviderError(f"cannot bind SIP on {where}: {exc}") from exc
                self._started = True

    async def start_call(self, request: DialRequest) -> str:
        existing = self._calls.get(request.dial_key)
        if existing is not None:
            return existing.call_id
        try:
            options = agent_config(request.agent_config)
        except SipConfigError as exc:
            raise ProviderError(f"agent providerConfig: {exc}") from exc
        target = options.trunk or self.settings.trunk_address()
        if target is None:
            raise ProviderError("no SIP trunk configured (DIALBATCH_SIP_TRUNK or agent trunk)")
        await self._ensure_started()
        address = await self._resolve(target)
        codec = options.codec or self.settings.codec
        rtp = RtpSession(sdp.PAYLOAD_TYPES[codec])
        try:
            rtp_port = await rtp.open(
                self.settings.bind_host, self.settings.rtp_port_min, self.settings.rtp_port_max
            )
        except OSError as exc:
            raise ProviderError(str(exc)) from exc
        if request.dial_key in self._calls:  # the same dial raced us while we awaited
            await rtp.close()
            return self._calls[request.dial_key].call_id
        self._prune()
        call_id = f"{secrets.token_hex(16)}@dialbatch"
        call = _Call(self, request, call_id, options, rtp)
        self._calls[request.dial_key] = call
        self._by_id[call_id] = request.dial_key
        self.dials += 1
        from_user = _sip_user(request.from_) or self.settings.from_user
        invite = Invite(
            call_id=call_id,
            to_user=_sip_user(request.to) or request.to,
            target=address,
            from_user=from_user,
            display_name=self.settings.display_name,
            sdp=sdp.offer(self.settings.bind_host, rtp_port, codec),
        )
        self.endpoint.invite(invite, call)
        loop = asyncio.get_running_loop()
        call.timers.append(loop.call_later(options.calls.ring_timeout_s, self._ring_timeout, call))
        return call_id

    async def _resolve(self, target: tuple[str, int]) -> tuple[str, int]:
        host, port = target
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host,
                port,
                family=2,
                type=2,  # AF_INET, SOCK_DGRAM
            )
        except OSError as exc:
            raise ProviderError(f"cannot resolve SIP trunk {host}: {exc}") from exc
        return str(infos[0][4][0]), port

    def _ring_timeout(self, call: _Call) -> None:
        if call.state not in ("trying", "ringing"):
            return
        self.endpoint.disconnect(call.call_id)  # CANCEL
        final = outcome_map.for_ring_timeout(
            call.options.calls.ring_timeout_s, heard_from_peer=call.heard
        )
        self._finish(call, final.outcome, code=final.code, detail=final.detail)

    def _max_duration(self, call: _Call) -> None:
        if call.state == "answered":
            self.endpoint.disconnect(call.call_id)  # BYE
            self._finish(call, Outcome.COMPLETED, code="200", detail="maximum duration reached")

    def _answered(self, call: _Call, answer: str | None) -> None:
        for timer in call.timers:
            timer.cancel()
        loop = asyncio.get_running_loop()
        call.timers = [loop.call_later(call.options.calls.max_duration_s, self._max_duration, call)]
        media = sdp.parse_answer(answer) if answer else None
        if media is not None:
            call.rtp.set_remote(media.host, media.port)
        else:
            log.warning("SIP call %s answered without usable audio in its SDP", call.call_id)
        url = call.options.calls.agent_url
        if url:
            call.bridge = MediaBridge(
                url,
                call_sid=call.call_id,
                # jobId first, as the Twilio adapter sends it: the agent reports its result
                # to POST /v1/api/calls/{jobId}/result with it.
                metadata={"jobId": call.request.job_id, **call.request.metadata},
                rtp=call.rtp,
                on_agent_gone=lambda error: self._agent_gone(call, error),
            )
            call.bridge.start()

    def _agent_gone(self, call: _Call, error: str | None) -> None:
        if call.state != "answered":
            return
        self.endpoint.disconnect(call.call_id)  # BYE: the agent ended the conversation
        if error is None:
            self._finish(call, Outcome.COMPLETED, code="200", detail="agent hung up")
        else:
            self._finish(call, Outcome.FAILED, code=None, detail=error)

    def _finish(
        self, call: _Call, outcome: Outcome, *, code: str | None, detail: str | None
    ) -> None:
        if call.state == "ended":
            return
        talk = call.talk_seconds() if outcome is Outcome.COMPLETED else None
        call.state = "ended"
        call.ended_at = time.monotonic()
        for timer in call.timers:
            timer.cancel()
        call.timers = []
        call.event = CallEvent(
            outcome=outcome,
            dial_key=call.request.dial_key,
            provider_call_id=call.call_id,
            duration_s=talk,
            ended_at=now_ms(),
            provider_code=code,
            detail=detail,
        )
        log.info("SIP call %s: %s (%s)", call.call_id, outcome.value, detail or code)
        self._spawn(self._wind_down(call, call.event))

    async def _wind_down(self, call: _Call, event: CallEvent) -> None:
        if call.bridge is not None:
            await call.bridge.stop()
        await call.rtp.close()
        await self._deliver(event)

    def _report(self, call: _Call, stage: Stage) -> None:
        progress = CallProgress(
            stage=stage,
            dial_key=call.request.dial_key,
            provider_call_id=call.call_id,
            at_ms=now_ms(),
        )
        self._spawn(self._deliver(progress))

    async def _deliver(self, event: ProviderEvent) -> None:
        try:
            await self._sink(event)
        except Exception:  # progress is advisory; outcomes are reconciled by the sweeper
            log.exception("SIP provider: delivering %s failed", event)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _prune(self) -> None:
        horizon = time.monotonic() - KEEP_ENDED_S
        stale = [k for k, c in self._calls.items() if c.ended_at and c.ended_at < horizon]
        for key in stale:
            self._by_id.pop(self._calls.pop(key).call_id, None)

    async def hangup(self, provider_call_id: str) -> None:
        key = self._by_id.get(provider_call_id)
        call = self._calls.get(key) if key else None
        if call is None or call.state == "ended":
            return
        self.endpoint.disconnect(call.call_id)
        if call.state == "answered":
            self._finish(call, Outcome.COMPLETED, code="200", detail="hung up by dialbatch")
        else:
            self._finish(call, Outcome.CANCELED, code="487", detail="SIP CANCEL sent while ringing")

    async def fetch_status(self, dial_key: str, provider_call_id: str | None) -> CallEvent | Live:
        call = self._calls.get(dial_key)
        if call is None:
            # A call's UAC lives in this process: after a restart nothing is known, and the
            # INVITE may well have left, so the dial can never be proved absent.
            raise OutcomeUnknowable("the SIP adapter has no record of this dial (restarted?)")
        if call.event is None:
            return Live(call.call_id)
        return call.event

    async def find_dial(self, lookup: DialLookup) -> CallEvent | Live:
        """A SIP trunk keeps no call records we could search: a dial this process does not
        hold can never be found again, nor proved absent."""
        return await self.fetch_status(lookup.dial_key, lookup.provider_call_id)

    async def aclose(self) -> None:
        """Hang up every live call (phones are not left connected to nobody), report those
        outcomes, and close the SIP socket."""
        for call in list(self._calls.values()):
            if call.state != "ended":
                await self.hangup(call.call_id)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._started:
            await asyncio.sleep(0.1)  # let the BYEs/CANCELs leave before the socket closes
            await self.endpoint.close()
            self._started = False


def _sip_user(number: str | None) -> str | None:
    """A phone number as the user part of a SIP URI: digits and a leading '+' only."""
    if not number:
        return None
    kept = "".join(c for c in number if c.isdigit() or c == "+")
    return kept or None
