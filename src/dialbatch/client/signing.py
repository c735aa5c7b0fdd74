"""Signing an agent's result report (`POST /v1/api/calls/{jobId}/result`).

Standard library only, so an agent runtime can copy this file rather than depend on
dialbatch. The server checks the same HMAC (docs/agent-results.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import quote

TIMESTAMP_HEADER = "X-Dialbatch-Timestamp"
SIGNATURE_HEADER = "X-Dialbatch-Signature"


def sign_result(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers that prove `body` comes from the agent holding `secret`.

    Sign the exact bytes you send: the signature covers the raw body, so re-serialising
    the JSON after signing breaks it. `timestamp` (Unix seconds) defaults to now; the
    server accepts it for five minutes either side of its clock.
    """
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: f"v1={mac}",
        "Content-Type": "application/json",
    }


def result_body(job_id: str, **fields: Any) -> bytes:
    """A report's body: the jobId (which binds the signature to this call) and the fields
    given (transcript, outcome, data, summary, recordingUrl); None values are left out."""
    report = {"jobId": job_id, **{k: v for k, v in fields.items() if v is not None}}
    return json.dumps(report, separators=(",", ":"), ensure_ascii=False).encode()


def result_path(job_id: str) -> str:
    """The URL path a report is posted to."""
    return f"/v1/api/calls/{quote(job_id, safe='')}/result"
