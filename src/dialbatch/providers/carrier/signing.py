"""Callback signatures shared by the carrier and its adapter.

`X-Carrier-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>`. The
timestamp is covered, so a captured callback cannot be replayed after the window. The HMAC
is `dialbatch.signing`'s (the one agents sign results with); only the header differs.
"""

from __future__ import annotations

import time

from dialbatch.signing import matches, signature

HEADER = "X-Carrier-Signature"
WINDOW_S = 300


def sign(secret: str, body: bytes, at: int | None = None) -> str:
    """The header value for `body`, signed now (or at `at`, unix seconds)."""
    t = int(time.time()) if at is None else at
    return f"t={t},v1={signature(secret, t, body)}"


def verify(secret: str, header: str | None, body: bytes, now: float | None = None) -> str | None:
    """None when `header` signs `body` within the window; else why not."""
    if not header:
        return "missing signature"
    parts: dict[str, str] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, value)
    t_raw, given = parts.get("t", ""), parts.get("v1", "")
    if not t_raw.isdigit() or not given:
        return "malformed signature"
    t = int(t_raw)
    if abs((time.time() if now is None else now) - t) > WINDOW_S:
        return "signature outside the time window"
    if not matches(signature(secret, t, body), given):
        return "signature does not match"
    return None
