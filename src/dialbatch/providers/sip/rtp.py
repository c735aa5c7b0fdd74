"""RTP over UDP for one call: G.711 in, G.711 out, paced at 20 ms.

Inbound packets are accepted only from the host the SDP answer named and only with the
negotiated payload type; everything else (comfort noise, DTMF events, strangers) is
dropped. Their payload is handed on as µ-law whatever the wire codec. Outbound audio
arrives in bursts from the agent and leaves as one 160-byte frame every 20 ms, as a phone
expects; `clear()` drops what is queued (the agent barging in), marks are reported once
the audio queued before them has been sent (Twilio's `mark` semantics).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import struct
from collections import deque
from collections.abc import Callable

from dialbatch.providers.sip.g711 import alaw_to_ulaw, ulaw_to_alaw

log = logging.getLogger(__name__)

FRAME_BYTES = 160  # 20 ms of 8 kHz G.711
FRAME_S = 0.02
_HEADER = struct.Struct("!BBHII")


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, session: RtpSession) -> None:
        self.session = session

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.session._received(data, str(addr[0]))

    def error_received(self, exc: Exception) -> None:
        log.debug("rtp socket error: %s", exc)


def parse_payload(packet: bytes) -> tuple[int, bytes] | None:
    """(payload type, payload) of an RTP packet, or None when it is not one."""
    if len(packet) < 12 or packet[0] >> 6 != 2:
        return None
    offset = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:  # header extension
        if len(packet) < offset + 4:
            return None
        offset += 4 + 4 * struct.unpack_from("!H", packet, offset + 2)[0]
    end = len(packet)
    if packet[0] & 0x20 and end > offset:  # padding
        end -= packet[-1]
    if end <= offset:
        return None
    return packet[1] & 0x7F, packet[offset:end]


class RtpSession:
    def __init__(self, payload_type: int) -> None:
        self.payload_type = payload_type
        self.port = 0
        self.packets_in = 0
        self.packets_out = 0
        self.on_audio: Callable[[bytes], None] | None = None  # µ-law payloads
        self.on_mark: Callable[[str], None] | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._remote: tuple[str, int] | None = None
        self._queue: deque[bytes | str] = deque()  # frames and mark names, in order
        self._partial = b""
        self._pacer: asyncio.Task[None] | None = None
        self._ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._ts0 = secrets.randbits(32)

    async def open(self, host: str, port_min: int, port_max: int) -> int:
        """Bind the first free even port of the range (port_min 0: any free port)."""
        loop = asyncio.get_running_loop()
        candidates = [0] if port_min == 0 else range(port_min + port_min % 2, port_max + 1, 2)
        for port in candidates:
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Protocol(self), local_addr=(host, port)
                )
            except OSError:
                continue
            self._transport = transport
            self.port = int(transport.get_extra_info("sockname")[1])
            return self.port
        raise OSError(f"no free RTP port in {port_min}-{port_max} on {host}")

    def set_remote(self, host: str, port: int) -> None:
        self._remote = (host, port)
        if self._pacer is None:
            self._pacer = asyncio.get_running_loop().create_task(self._pace())

    def _received(self, data: bytes, host: str) -> None:
        if self._remote is None or host != self._remote[0]:
            return
        parsed = parse_payload(data)
        if parsed is None or parsed[0] != self.payload_type:
            return
        self.packets_in += 1
        payload = parsed[1] if self.payload_type == 0 else alaw_to_ulaw(parsed[1])
        if self.on_audio is not None:
            self.on_audio(payload)

    def send_ulaw(self, audio: bytes) -> None:
        data = self._partial + audio
        whole = len(data) - len(data) % FRAME_BYTES
        for i in range(0, whole, FRAME_BYTES):
            self._queue.append(data[i : i + FRAME_BYTES])
        self._partial = data[whole:]

    def mark(self, name: str) -> None:
        if self._partial:  # a mark flushes the tail, padded with µ-law silence
            self._queue.append(self._partial.ljust(FRAME_BYTES, b"\xff"))
            self._partial = b""
        self._queue.append(name)

    def clear(self) -> list[str]:
        """Drop queued audio; returns the marks dropped with it (reported at once)."""
        marks = [item for item in self._queue if isinstance(item, str)]
        self._queue.clear()
        self._partial = b""
        return marks

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        frames = 0  # 20 ms ticks since start: the RTP clock runs even in silence
        marker = True
        while True:
            frames += 1
            await asyncio.sleep(max(0.0, start + frames * FRAME_S - loop.time()))
            while self._queue and isinstance(self._queue[0], str):
                name = self._queue.popleft()
                if self.on_mark is not None and isinstance(name, str):
                    self.on_mark(name)
            if not self._queue:
                marker = True  # the next talkspurt starts with the marker bit
                continue
            frame = self._queue.popleft()
            assert isinstance(frame, bytes)
            self._send(frame, frames, marker)
            marker = False

    def _send(self, frame: bytes, tick: int, marker: bool) -> None:
        if self._transport is None or self._remote is None:
            return
        payload = frame if self.payload_type == 0 else ulaw_to_alaw(frame)
        self._seq = (self._seq + 1) & 0xFFFF
        timestamp = (self._ts0 + tick * FRAME_BYTES) & 0xFFFFFFFF
        header = _HEADER.pack(
            0x80, (0x80 if marker else 0) | self.payload_type, self._seq, timestamp, self._ssrc
        )
        self._transport.sendto(header + payload, self._remote)
        self.packets_out += 1

    async def close(self) -> None:
        if self._pacer is not None:
            self._pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pacer
            self._pacer = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
