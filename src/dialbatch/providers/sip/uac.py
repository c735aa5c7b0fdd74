"""The glue to sippy, an RFC 3261 stack with its own event loop (a process-wide singleton).

sippy's reactor runs in one daemon thread for the whole process; every sippy object is made
and touched only there (commands go in with `callFromThread`). What sippy reports comes
back to asyncio with `call_soon_threadsafe`, as plain values, to a `UacListener`: the
adapter never sees a sippy object. Each `SipEndpoint` owns one UDP socket (one
SipTransactionManager), so several providers, or tests, can run side by side.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sippy.CCEvents import (  # type: ignore[import-untyped]
    CCEventConnect,
    CCEventDisconnect,
    CCEventFail,
    CCEventRedirect,
    CCEventRing,
    CCEventTry,
)
from sippy.Core.EventDispatcher import ED2  # type: ignore[import-untyped]
from sippy.MsgBody import MsgBody  # type: ignore[import-untyped]
from sippy.SipCallId import SipCallId  # type: ignore[import-untyped]
from sippy.SipTransactionManager import SipTransactionManager  # type: ignore[import-untyped]
from sippy.SipURL import SipURL  # type: ignore[import-untyped]
from sippy.UA import UA  # type: ignore[import-untyped]

log = logging.getLogger(__name__)


def _patch_transport_case() -> None:
    """sippy compares the URI `transport=` parameter case-sensitively ('udp'), but RFC 3261
    says it is case-insensitive and many peers (sipp among them) write `transport=UDP` in
    their Contact: sending the BYE to such a target raised "unsupported transport". We
    lower-case the transport where sippy routes by it, leaving the serialised URI alone."""
    if getattr(SipURL, "_dialbatch_patched", False):
        return
    original = SipURL.getTAddr

    def get_taddr(self: Any) -> tuple[Any, Any]:
        address, transport = original(self)
        if isinstance(transport, str):
            transport = transport.lower()
        return address, transport

    SipURL.getTAddr = get_taddr
    SipURL._dialbatch_patched = True


_patch_transport_case()


class _Reactor:
    """sippy's event loop, started once per process in a daemon thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def ensure_started(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="sippy-reactor", daemon=True)
            self._thread.start()

    @staticmethod
    def _run() -> None:
        # ED2 remembers the thread that imported it and complains when timers are armed
        # from any other; ours is the only thread that touches it from now on.
        ED2.my_ident = threading.get_ident()
        ED2.loop()

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        self.ensure_started()
        ED2.callFromThread(fn, *args)

    async def run(self, fn: Callable[[], Any]) -> Any:
        """Run fn on the reactor thread and await its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def settle(result: Any, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        def job() -> None:
            try:
                result = fn()
            except BaseException as exc:  # handed to the awaiting coroutine
                loop.call_soon_threadsafe(settle, None, exc)
            else:
                loop.call_soon_threadsafe(settle, result, None)

        self.call(job)
        return await future


REACTOR = _Reactor()


class UacListener(Protocol):
    """What one placed call hears from the far end; called on the asyncio loop."""

    def on_progress(self, code: int) -> None: ...
    def on_answer(self, sdp: str | None) -> None: ...
    def on_failure(self, code: int, reason: str) -> None: ...
    def on_remote_bye(self) -> None: ...


@dataclass(frozen=True)
class Invite:
    call_id: str
    to_user: str
    target: tuple[str, int]  # the trunk's IP address and port
    from_user: str
    display_name: str | None
    sdp: str


class _SipLogger:
    """sippy writes every SIP message it sends or receives here: debug logging."""

    def write(self, *args: Any, **kwargs: Any) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s", "".join(str(a) for a in args))


class _ClosedTransactionManager:
    """Stands in for a shut-down SipTransactionManager: a dialog's timers can still fire
    after we closed the socket (a disconnected UA goes "dead" seconds after its BYE) and
    would crash inside sippy on the torn-down manager. Here everything is a no-op."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


class SipEndpoint:
    """One local SIP address (UDP) and the calls placed from it."""

    def __init__(
        self,
        bind_host: str,
        bind_port: int,
        *,
        auth_user: str | None = None,
        auth_password: str | None = None,
    ) -> None:
        self._bind = (bind_host, bind_port)
        self._auth = (auth_user, auth_password)
        self._config: dict[str, Any] = {}
        self._uas: dict[str, Any] = {}  # call id -> sippy UA, touched on the reactor only
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port: int | None = None

    async def start(self) -> int:
        """Bind the UDP socket; returns the local port (useful when 0 was asked for)."""
        self._loop = asyncio.get_running_loop()
        host, port = self._bind
        self._config = {"_sip_address": host, "_sip_port": port, "_sip_logger": _SipLogger()}

        def create() -> int:
            tm = SipTransactionManager(self._config, self._unexpected_request)
            self._config["_sip_tm"] = tm
            server = next(iter(tm.l4r.cache_l2s.values()))
            return int(server.uopts.laddress[1])

        self.port = await REACTOR.run(create)
        return self.port

    @staticmethod
    def _unexpected_request(req: Any, sip_t: Any) -> tuple[Any, None, None]:
        """We only place calls: requests outside our dialogs are refused."""
        if req.getMethod() in ("OPTIONS",):
            return (req.genResponse(200, "OK"), None, None)
        return (req.genResponse(481, "Call Leg/Transaction Does Not Exist"), None, None)

    def invite(self, invite: Invite, listener: UacListener) -> None:
        REACTOR.call(self._invite, invite, listener)

    def _invite(self, invite: Invite, listener: UacListener) -> None:
        loop = self._loop
        assert loop is not None

        def on_event(event: Any, ua: Any) -> None:
            data: tuple[Any, ...] = tuple(event.getData() or ())
            if isinstance(event, CCEventRing):
                loop.call_soon_threadsafe(listener.on_progress, int(data[0]) if data else 180)
            elif isinstance(event, CCEventConnect):
                body = data[2] if len(data) > 2 else None
                sdp = str(body) if body is not None else None
                loop.call_soon_threadsafe(listener.on_answer, sdp)
            elif isinstance(event, CCEventFail | CCEventRedirect):
                code, reason = (int(data[0]), str(data[1])) if data else (500, "Failed")
                loop.call_soon_threadsafe(listener.on_failure, code, reason)
            elif isinstance(event, CCEventDisconnect):
                loop.call_soon_threadsafe(listener.on_remote_bye)

        def forget(ua: Any, *args: Any) -> None:
            self._uas.pop(invite.call_id, None)

        user, password = self._auth
        ua = UA(
            self._config,
            event_cb=on_event,
            username=user,
            password=password,
            nh_address=invite.target,
            dead_cbs=(forget,),
        )
        self._uas[invite.call_id] = ua
        body = MsgBody(invite.sdp)
        event = CCEventTry(
            (SipCallId(invite.call_id), invite.from_user, invite.to_user, body, None,
             invite.display_name)
        )  # fmt: skip
        ua.recvEvent(event)

    def disconnect(self, call_id: str) -> None:
        """CANCEL while ringing, BYE when answered: sippy picks by the dialog's state."""
        REACTOR.call(self._disconnect, call_id)

    def _disconnect(self, call_id: str) -> None:
        ua = self._uas.get(call_id)
        if ua is not None and not ua.isDead():
            ua.recvEvent(CCEventDisconnect())

    async def close(self) -> None:
        tm = self._config.get("_sip_tm")
        if tm is None or isinstance(tm, _ClosedTransactionManager):
            return

        def shutdown() -> None:
            self._uas.clear()
            self._config["_sip_tm"] = _ClosedTransactionManager()
            # Transactions still retransmitting or waiting (timers A-G) would fire on the
            # torn-down manager: cancel their timers first, as sippy's shutdown does not.
            for transaction in [*tm.tclient.values(), *tm.tserver.values()]:
                for name in ("teA", "teB", "teC", "teD", "teE", "teF", "teG"):
                    timer = getattr(transaction, name, None)
                    if timer is not None:
                        timer.cancel()
                transaction.cleanup()
            tm.shutdown()

        await REACTOR.run(shutdown)
