"""The call's audio reaches the agent in the Twilio Media Streams format, and the agent's
audio reaches the phone as paced G.711 RTP."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from dialbatch.domain.outcomes import Outcome
from dialbatch.providers.base import DialRequest
from dialbatch.providers.sip.adapter import SipProvider
from dialbatch.providers.sip.g711 import alaw_to_ulaw
from dialbatch.providers.sip.media_bridge import MediaBridge
from dialbatch.providers.sip.rtp import RtpSession, parse_payload
from tests.providers.sip.conftest import SCENARIOS, Events, StartSipp


def pcap_rtp_packets(path: Path) -> int:
    data = path.read_bytes()
    offset, count = 24, 0
    while offset + 16 <= len(data):
        length = struct.unpack_from("<I", data, offset + 8)[0]
        offset += 16 + length
        count += 1
    return count


class Agent:
    """A tiny voice agent: records what the call sends; optionally speaks and hangs up."""

    def __init__(self, reply: list[dict[str, Any]] | None = None, hang_up: bool = False):
        self.messages: list[dict[str, Any]] = []
        self.reply = reply or []
        self.hang_up = hang_up
        self.closed = asyncio.Event()
        self.url = ""
        self._hang_up: asyncio.TimerHandle | None = None

    async def handler(self, ws: ServerConnection) -> None:
        try:
            async for raw in ws:
                message = json.loads(raw)
                self.messages.append(message)
                if message["event"] == "start":
                    for reply in self.reply:
                        await ws.send(json.dumps(reply))
                    if self.hang_up:  # after the call has had time to play and mark
                        self._hang_up = asyncio.get_running_loop().call_later(
                            0.5, lambda: asyncio.ensure_future(ws.close())
                        )
        finally:
            self.closed.set()

    def of(self, event: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["event"] == event]


@pytest.fixture
async def agent() -> AsyncIterator[Agent]:
    bot = Agent()
    async with serve(bot.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        bot.url = f"ws://127.0.0.1:{port}/agent"
        yield bot


async def test_the_greeting_reaches_the_agent_websocket(
    provider: SipProvider, events: Events, start_sipp: StartSipp, agent: Agent
) -> None:
    sent = pcap_rtp_packets(SCENARIOS / "greeting.pcap")
    sipp = await start_sipp("greeting", talk_ms=sent * 20 + 1000)
    req = DialRequest(
        dial_key="job_greet:1",
        job_id="job_greet",
        to="+15551230002",
        from_=None,
        metadata={"first_name": "Ada", "account": 42},
        agent_id="agent_t",
        agent_config={"trunk": sipp.trunk, "agentUrl": agent.url},
    )
    call_id = await provider.start_call(req)
    event = await events.of(req.dial_key)
    assert event.outcome is Outcome.COMPLETED
    await asyncio.wait_for(agent.closed.wait(), 10)
    assert await sipp.finished() == 0, sipp.errors()

    kinds = [m["event"] for m in agent.messages]
    assert kinds[:2] == ["connected", "start"] and kinds[-1] == "stop"
    start = agent.of("start")[0]["start"]
    assert start["callSid"] == call_id
    assert start["customParameters"] == {
        "jobId": req.job_id,  # for the agent's result report
        "first_name": "Ada",
        "account": 42,
    }
    assert start["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    media = agent.of("media")
    assert abs(len(media) - sent) <= 0.05 * sent, (len(media), sent)
    audio = b"".join(base64.b64decode(m["media"]["payload"]) for m in media)
    assert len(audio) == 160 * len(media)
    assert len(set(audio)) > 20  # speech, not silence
    assert [int(m["sequenceNumber"]) for m in agent.messages] == list(
        range(1, len(agent.messages) + 1)
    )


class Phone(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.packets.append(data)


async def test_agent_audio_is_paced_rtp_and_marks_and_hangup_come_back() -> None:
    loop = asyncio.get_running_loop()
    phone = Phone()
    transport, _ = await loop.create_datagram_endpoint(lambda: phone, local_addr=("127.0.0.1", 0))
    phone_port = transport.get_extra_info("sockname")[1]
    rtp = RtpSession(payload_type=8)  # the trunk wants A-law; the agent speaks µ-law
    await rtp.open("127.0.0.1", 0, 0)
    rtp.set_remote("127.0.0.1", phone_port)
    speech = bytes(range(256)) * 2 + bytes(range(128))  # 640 bytes: four 20 ms frames
    payload = base64.b64encode(speech).decode()
    bot = Agent(
        reply=[
            {"event": "media", "streamSid": "x", "media": {"payload": payload}},
            {"event": "mark", "streamSid": "x", "mark": {"name": "greeting-done"}},
        ],
        hang_up=True,
    )
    gone: list[str | None] = []
    async with serve(bot.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        bridge = MediaBridge(
            f"ws://127.0.0.1:{port}",
            call_sid="cid@x",
            metadata={},
            rtp=rtp,
            on_agent_gone=gone.append,
        )
        bridge.start()
        async with asyncio.timeout(10):
            while not gone:
                await asyncio.sleep(0.02)
        await bridge.stop()
    await rtp.close()
    transport.close()

    assert gone == [None]  # the agent hung up
    assert [m["mark"]["name"] for m in bot.of("mark")] == ["greeting-done"]
    assert len(phone.packets) == 4
    parsed = [parse_payload(p) for p in phone.packets]
    assert all(p is not None and p[0] == 8 for p in parsed)
    heard = b"".join(alaw_to_ulaw(p[1]) for p in parsed if p is not None)
    seqs = [struct.unpack_from("!H", p, 2)[0] for p in phone.packets]
    stamps = [struct.unpack_from("!I", p, 4)[0] for p in phone.packets]
    assert [(s - seqs[0]) % 65536 for s in seqs] == [0, 1, 2, 3]
    assert [(t - stamps[0]) % 2**32 for t in stamps] == [0, 160, 320, 480]
    assert phone.packets[0][1] & 0x80  # marker bit: a talkspurt begins
    # A-law round trip of µ-law is not lossless for every code, but close to it
    assert sum(a != b for a, b in zip(heard, speech, strict=True)) < len(speech) // 4


async def test_an_unreachable_agent_fails_the_answered_call(
    provider: SipProvider, events: Events, start_sipp: StartSipp
) -> None:
    from tests.providers.sip.conftest import free_udp_port

    sipp = await start_sipp("answer_then_caller_bye")
    req = DialRequest(
        dial_key="job_noagent:1",
        job_id="job_noagent",
        to="+15551230003",
        from_=None,
        metadata={},
        agent_id="agent_t",
        agent_config={"trunk": sipp.trunk, "agentUrl": f"ws://127.0.0.1:{free_udp_port()}"},
    )
    await provider.start_call(req)
    event = await events.of(req.dial_key)
    assert event.outcome is Outcome.FAILED
    assert event.detail is not None and event.detail.startswith("agent WebSocket unreachable")
    assert await sipp.finished() == 0, sipp.errors()  # and the callee got our BYE
