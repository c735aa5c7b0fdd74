"""The call's audio to and from the voice agent, in the Twilio Media Streams format, so the
one agent bot that serves Twilio calls serves SIP calls unchanged.

We dial the agent's WebSocket (`agentUrl`) when the call is answered and send, as Twilio
does: `connected`, `start` (callSid = the SIP Call-ID, customParameters = `jobId` and the
row's metadata, µ-law 8 kHz mono), one `media` message per RTP packet heard, and `stop` when
the call ends. From the agent we take `media` (played to the callee), `mark` (echoed once the
audio before it has been played) and `clear` (drop queued audio). The agent closing the
socket ends the call, as hanging up a Twilio stream does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from dialbatch.providers.sip.rtp import FRAME_BYTES, RtpSession

log = logging.getLogger(__name__)

ACCOUNT_SID = "dialbatch-sip"
CONNECT_TIMEOUT_S = 10.0


class MediaBridge:
    def __init__(
        self,
        url: str,
        *,
        call_sid: str,
        metadata: dict[str, Any],
        rtp: RtpSession,
        on_agent_gone: Callable[[str | None], None],
    ) -> None:
        """on_agent_gone(error): the agent hung up (None) or could not be reached (why)."""
        self.url = url
        self.call_sid = call_sid
        self.stream_sid = "MZ" + secrets.token_hex(16)
        self.metadata = metadata
        self.rtp = rtp
        self.on_agent_gone = on_agent_gone
        self.media_sent = 0
        self._seq = 0
        self._chunk = 0
        self._outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        rtp.on_audio = self._heard
        rtp.on_mark = self._mark_played

    def start(self) -> None:
        self._send_event("connected", protocol="Call", version="1.0.0")
        self._send_event(
            "start",
            start={
                "accountSid": ACCOUNT_SID,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": self.metadata,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        )
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _send_event(self, event: str, **body: Any) -> None:
        self._seq += 1
        message: dict[str, Any] = {"event": event, "sequenceNumber": str(self._seq), **body}
        if event != "connected":
            message["streamSid"] = self.stream_sid
        self._outbox.put_nowait(message)

    def _heard(self, payload: bytes) -> None:
        if self._stopping:
            return
        self._chunk += 1
        self._send_event(
            "media",
            media={
                "track": "inbound",
                "chunk": str(self._chunk),
                "timestamp": str((self._chunk - 1) * 20),
                "payload": base64.b64encode(payload).decode("ascii"),
            },
        )

    def _mark_played(self, name: str) -> None:
        if not self._stopping:
            self._send_event("mark", mark={"name": name})

    async def _run(self) -> None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                ws = await connect(self.url, max_size=2**20)
        except (OSError, TimeoutError, WebSocketException) as exc:
            log.warning("agent WebSocket %s unreachable: %s", self.url, exc)
            self.on_agent_gone(f"agent WebSocket unreachable: {exc}")
            return
        reader = asyncio.get_running_loop().create_task(self._read(ws))
        try:
            while (message := await self._outbox.get()) is not None:
                await ws.send(json.dumps(message))
                if message["event"] == "media":
                    self.media_sent += 1
        except WebSocketException as exc:
            log.info("agent WebSocket closed while sending: %s", exc)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await ws.close()

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self._handle(raw)
        except WebSocketException:
            pass
        if not self._stopping:
            self.on_agent_gone(None)

    def _handle(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
            event = message.get("event")
            if event == "media":
                audio = base64.b64decode(message["media"]["payload"], validate=True)
                self.rtp.send_ulaw(audio[: FRAME_BYTES * 3000])  # at most 60 s per message
            elif event == "mark":
                self.rtp.mark(str(message["mark"]["name"]))
            elif event == "clear":
                for name in self.rtp.clear():
                    self._mark_played(name)
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            log.info("ignoring a malformed message from the agent")

    async def stop(self) -> None:
        """Send `stop`, flush, close. Idempotent."""
        if self._stopping:
            return
        self._send_event("stop", stop={"accountSid": ACCOUNT_SID, "callSid": self.call_sid})
        self._stopping = True
        self._outbox.put_nowait(None)
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._task), 5)
            if not self._task.done():
                self._task.cancel()
