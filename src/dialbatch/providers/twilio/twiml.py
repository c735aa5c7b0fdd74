"""The TwiML that connects an answered call to the voice agent's WebSocket.

`<Connect><Stream url=agentUrl>` hands the call's audio to the agent (Twilio's Media Streams
format) and passes the row's metadata as `<Parameter>`s, which the agent receives in the
stream's `start` message (`customParameters`). Twilio refuses inline TwiML over 4,000
characters, so parameters are added in order until the budget is spent: `jobId` first,
then the row's fields; a value too long to be useful is cut, a field that no longer fits is
left out (the agent can still fetch the whole row by jobId).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from twilio.twiml.voice_response import Connect, VoiceResponse  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

MAX_TWIML_CHARS = 4000
MAX_NAME_CHARS = 64
MAX_VALUE_CHARS = 500


def stream_twiml(agent_url: str, job_id: str, metadata: Mapping[str, Any]) -> str:
    """TwiML connecting the call to `agent_url`, within Twilio's size limit."""
    params: list[tuple[str, str]] = []
    for name, value in [("jobId", job_id), *metadata.items()]:
        if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS:
            continue
        if name == "jobId" and params:
            continue  # a metadata field may not pass itself off as the job id
        params.append((name, _text(value)[:MAX_VALUE_CHARS]))
    kept = list(params)
    while True:
        xml = _render(agent_url, kept)
        if len(xml) <= MAX_TWIML_CHARS or len(kept) <= 1:
            break
        kept.pop()
    if len(kept) < len(params):
        skipped = [name for name, _ in params[len(kept) :]]
        log.warning("stream parameters left out to fit Twilio's TwiML limit: %s", skipped)
    return xml


def _render(agent_url: str, params: list[tuple[str, str]]) -> str:
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=agent_url)
    for name, value in params:
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
