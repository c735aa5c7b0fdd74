"""Signatures of what dialbatch sends out: webhook requests (Standard Webhooks, plus the
`X-Trillet-Signature` header) and the short-lived tokens that let a browser's
EventSource, which cannot send headers, open an event stream.

No webhook secret is stored. Each is derived from the server's key (DIALBATCH_SECRET_KEY
or <data_dir>/secret.key, the key agents' secrets come from) and the endpoint's id and
secret version, exactly as agents' secrets are: a leaked database leaks no secret, every
worker process can sign, and the API shows the secret once, at creation, and never again
(it could recompute it; it does not). The cost: a server key that changes changes every
endpoint's secret, as it does agents'; several hosts must share one key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

SECRET_PREFIX = "whsec_"
TOKEN_TTL_S = 300


def webhook_secret(master_key: bytes, workspace_id: str, endpoint_id: str, version: int) -> str:
    """`whsec_<base64 of 32 bytes>`: the Standard Webhooks form of a signing secret."""
    message = f"webhook:{workspace_id}:{endpoint_id}:{version}".encode()
    key = hmac.new(master_key, message, hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(key).decode()


def secret_bytes(secret: str) -> bytes:
    """The HMAC key a `whsec_` secret stands for (Standard Webhooks: base64-decoded)."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def standard_signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def trillet_signature(key: bytes, body: bytes) -> str:
    """`X-Trillet-Signature`: hex HMAC-SHA256 of the raw body under the same key."""
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def signed_headers(
    key: bytes, msg_id: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """Every signature header of one webhook request (a fresh timestamp per attempt)."""
    ts = int(time.time() if now is None else now)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": standard_signature(key, msg_id, ts, body),
        "X-Trillet-Signature": trillet_signature(key, body),
    }


# --- Event-stream tokens ---------------------------------------------------------------------


def _token_key(master_key: bytes) -> bytes:
    return hmac.new(master_key, b"dialbatch:event-stream-token", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_stream_token(
    master_key: bytes, workspace_id: str, now: float | None = None, ttl_s: int = TOKEN_TTL_S
) -> tuple[str, int]:
    """(token, expiry in ms): the workspace and expiry, signed with a key derived from the
    server's key for this use only."""
    expires_ms = int(((time.time() if now is None else now) + ttl_s) * 1000)
    claims = _b64(json.dumps({"w": workspace_id, "e": expires_ms}, separators=(",", ":")).encode())
    sig = _b64(hmac.new(_token_key(master_key), claims.encode(), hashlib.sha256).digest())
    return f"{claims}.{sig}", expires_ms


def read_stream_token(master_key: bytes, token: str, now: float | None = None) -> str | None:
    """The workspace a valid, unexpired token names; None for anything else."""
    if len(token) > 512 or token.count(".") != 1:
        return None
    claims, sig = token.split(".")
    expected = _b64(hmac.new(_token_key(master_key), claims.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(sig, expected):
        return None
    try:
        data = json.loads(_unb64(claims))
        workspace_id, expires_ms = data["w"], data["e"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(workspace_id, str) or not isinstance(expires_ms, int):
        return None
    if expires_ms < (time.time() if now is None else now) * 1000:
        return None
    return workspace_id
