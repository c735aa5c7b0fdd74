"""examples/agent_bot: a Media Streams peer (standing in for the Twilio or SIP adapter)
talks to the example agent, which then posts a signed result that the server accepts."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import serve

from dialbatch.domain.ids import job_id
from tests.api.conftest import get_call, people, start_batch, wait_for_batch
from tests.conftest import Harness, numbers

BOT_PATH = Path(__file__).parents[2] / "examples" / "agent_bot" / "bot.py"


def load_bot() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agent_bot_example", BOT_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


async def finished_call(h: Harness) -> tuple[str, str, str]:
    """(batch id, jobId, agent secret) of a call that completed."""
    r = await h.client.post(
        "/v1/api/agents",
        headers=h.headers,
        json={"name": "bot", "providerConfig": {"outcomes": {"completed": 1}}},
    )
    assert r.status_code == 201, r.text
    agent, secret = r.json()["id"], r.json()["signingSecret"]
    r = await start_batch(h, people(numbers(1)), agent_id=agent)
    batch_id = r.json()["batchId"]
    await wait_for_batch(h, batch_id)
    return batch_id, job_id(batch_id, 0), secret


async def play_a_call(ws: ClientConnection, job: str, frames: int) -> list[dict[str, Any]]:
    """What Twilio sends over a stream: connected, start, caller audio, stop. Returns the
    bot's messages up to its mark."""
    await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    start = {
        "streamSid": "MZ0001",
        "accountSid": "AC0001",
        "callSid": "CA0001",
        "tracks": ["inbound"],
        "customParameters": {"jobId": job, "first_name": "First0", "last_name": "Last0"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    await ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "start": start}))
    silence = base64.b64encode(b"\xff" * 160).decode()
    for i in range(frames):
        media = {"track": "inbound", "chunk": str(i + 1), "timestamp": str(20 * i)}
        await ws.send(json.dumps({"event": "media", "media": {**media, "payload": silence}}))
    received = []
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
        received.append(msg)
        if msg["event"] == "mark":
            break
    await ws.send(json.dumps({"event": "stop", "stop": {"callSid": "CA0001"}}))
    return received


async def run_bot(bot: Any, job: str, frames: int = 25) -> list[dict[str, Any]]:
    async with serve(bot.handle, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as ws:
            received = await play_a_call(ws, job, frames)
        deadline = time.monotonic() + 10
        while not bot.posted and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    return received


async def test_the_example_agent_reports_a_signed_result(harness: Harness) -> None:
    h = harness
    batch_id, job, secret = await finished_call(h)
    example = load_bot()
    bot = example.AgentBot("http://test", secret, client=h.client)
    received = await run_bot(bot, job, frames=25)
    audio = [m for m in received if m["event"] == "media"]
    assert audio and all(m["streamSid"] == "MZ0001" for m in received)
    sent = b"".join(base64.b64decode(m["media"]["payload"]) for m in audio)
    assert sent == example.tone() and len(base64.b64decode(audio[0]["media"]["payload"])) == 160
    assert [r.status_code for r in bot.posted] == [200]
    result = (await get_call(h, batch_id, job))["result"]
    assert result["transcript"].startswith("Agent: Hello First0")
    assert result["outcome"] == "successful"
    assert result["data"] == {"callSid": "CA0001", "secondsHeard": 0.5}
    assert result["metadata"]["first_name"] == "First0"


async def test_the_example_agent_with_a_wrong_secret_is_refused_once(harness: Harness) -> None:
    h = harness
    batch_id, job, _ = await finished_call(h)
    before = await get_call(h, batch_id, job)
    bot = load_bot().AgentBot("http://test", "whsec_not-the-secret", client=h.client)
    await run_bot(bot, job, frames=1)
    assert [r.status_code for r in bot.posted] == [401]  # a 4xx is not retried
    assert await get_call(h, batch_id, job) == before


def test_mulaw_encodes_like_g711() -> None:
    mulaw = load_bot().mulaw
    assert (mulaw(0), mulaw(32767), mulaw(-32768)) == (0xFF, 0x80, 0x00)
    assert mulaw(1000) == 0xCE and mulaw(-1000) == 0x4E
