"""A minimal voice agent for dialbatch.

It speaks the Twilio Media Streams WebSocket protocol (the SIP and Twilio adapters of
dialbatch connect a live call to it that way): it answers with a short tone, listens,
and when the call ends posts a signed result to `POST /v1/api/calls/{jobId}/result`.
A real agent would put speech recognition, a language model and speech synthesis where
the tone and the canned transcript are.

    DIALBATCH_URL=http://127.0.0.1:8000 DIALBATCH_AGENT_SECRET=whsec_... \\
        python examples/agent_bot/bot.py --port 8765

See README.md beside this file.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import math
import os
import random
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

# Standard library only: copy dialbatch/client/signing.py if you do not install dialbatch.
from dialbatch.client.signing import result_body, result_path, sign_result

log = logging.getLogger("agent_bot")

SAMPLE_RATE = 8000  # Media Streams carry 8 kHz mono µ-law
FRAME_BYTES = 160  # 20 ms per media message, as Twilio sends them
POST_ATTEMPTS = 5


def mulaw(sample: int) -> int:
    """One 16-bit PCM sample as a G.711 µ-law byte."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = 7
    while exponent > 0 and not magnitude & (0x4000 >> (7 - exponent)):
        exponent -= 1
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | exponent << 4 | mantissa) & 0xFF


def tone(hz: float = 440.0, seconds: float = 0.6, volume: float = 0.3) -> bytes:
    """A sine tone as µ-law audio: the bot's 'voice'."""
    n = int(SAMPLE_RATE * seconds)
    amplitude = volume * 32767
    return bytes(
        mulaw(int(amplitude * math.sin(2 * math.pi * hz * i / SAMPLE_RATE))) for i in range(n)
    )


@dataclass
class Call:
    """What the bot learns about one call from its stream."""

    stream_sid: str = ""
    call_sid: str = ""
    job_id: str = ""
    params: dict[str, str] = field(default_factory=dict)
    frames_heard: int = 0


class AgentBot:
    """Serves Media Streams connections; one per live call."""

    def __init__(
        self, dialbatch_url: str, secret: str, *, client: httpx.AsyncClient | None = None
    ) -> None:
        self.secret = secret
        self.client = client or httpx.AsyncClient(base_url=dialbatch_url, timeout=10.0)
        self.greeting = tone()
        self.posted: list[httpx.Response] = []

    async def handle(self, ws: ServerConnection) -> None:
        call = Call()
        try:
            async for message in ws:
                msg = json.loads(message)
                event = msg.get("event")
                if event == "start":
                    start = msg["start"]
                    call.stream_sid = msg.get("streamSid") or start.get("streamSid", "")
                    call.call_sid = start.get("callSid", "")
                    call.params = dict(start.get("customParameters") or {})
                    call.job_id = call.params.get("jobId", "")
                    await self.speak(ws, call)
                elif event == "media":
                    call.frames_heard += 1
                elif event == "stop":
                    break
        except ConnectionClosed:
            pass  # the caller hung up without a stop message: report all the same
        if call.job_id:
            await self.report(call)
        else:
            log.warning("stream %s carried no jobId; nothing to report", call.stream_sid)

    async def speak(self, ws: ServerConnection, call: Call) -> None:
        """Send the greeting as 20 ms media messages, then a mark to learn it was played."""
        for i in range(0, len(self.greeting), FRAME_BYTES):
            payload = base64.b64encode(self.greeting[i : i + FRAME_BYTES]).decode()
            await ws.send(
                json.dumps(
                    {"event": "media", "streamSid": call.stream_sid, "media": {"payload": payload}}
                )
            )
        await ws.send(
            json.dumps({"event": "mark", "streamSid": call.stream_sid, "mark": {"name": "hello"}})
        )

    async def report(self, call: Call) -> None:
        name = call.params.get("first_name") or "there"
        heard = call.frames_heard * FRAME_BYTES / SAMPLE_RATE
        body = result_body(
            call.job_id,
            transcript=f"Agent: Hello {name}, this is a test call from dialbatch.\n"
            f"Customer: ({heard:.1f} s of audio)",
            outcome="successful" if call.frames_heard else "no-response",
            data={"callSid": call.call_sid, "secondsHeard": round(heard, 2)},
            summary=f"Greeted {name}; heard {heard:.1f} s.",
        )
        response = await self.post(call.job_id, body)
        if response is not None:
            self.posted.append(response)

    async def post(self, job_id: str, body: bytes) -> httpx.Response | None:
        """Post a result, retrying what may succeed later (network, 5xx, 429) with backoff.

        Each attempt is signed afresh, so a retry never carries a stale timestamp. Posting
        the same result twice is harmless, so a retry after a lost answer is safe.
        """
        for attempt in range(POST_ATTEMPTS):
            try:
                response = await self.client.post(
                    result_path(job_id), content=body, headers=sign_result(self.secret, body)
                )
            except httpx.TransportError as exc:
                log.warning("posting the result of %s failed: %s", job_id, exc)
            else:
                if response.status_code < 500 and response.status_code != 429:
                    if response.is_error:
                        log.error("result of %s refused: %s", job_id, response.text)
                    return response
                log.warning("result of %s: %s, retrying", job_id, response.status_code)
            await asyncio.sleep(min(30.0, 0.5 * 2**attempt) * random.uniform(0.8, 1.2))
        log.error("gave up posting the result of %s", job_id)
        return None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    bot = AgentBot(
        os.environ.get("DIALBATCH_URL", "http://127.0.0.1:8000"),
        os.environ["DIALBATCH_AGENT_SECRET"],
    )
    async with serve(bot.handle, args.host, args.port) as server:
        log.info("listening on ws://%s:%d", args.host, args.port)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
