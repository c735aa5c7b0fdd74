"""Key handling and HMAC signing, written once for the API, the CLI, the carrier and the
client (which keeps a standard-library copy, `client/signing.py`; tests/test_signing.py
checks that both agree).

No agent secret is stored: each is derived from the server's key and the agent's
`secret_version`, so a leaked database leaks no secret, and rotating one is bumping a
number. Requests are signed like Stripe's and Svix's webhooks: an HMAC-SHA256 over
`"{timestamp}.{raw body}"`, checked in constant time within a short window against replays.
Pure: the standard library only, no web framework.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dialbatch.settings import Settings

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
TIMESTAMP_HEADER = "X-Dialbatch-Timestamp"
SIGNATURE_HEADER = "X-Dialbatch-Signature"
SIGNATURE_SCHEME = "v1"
TOLERANCE_S = 300
KEY_FILE = "secret.key"
MIN_KEY_CHARS = 32
_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")


class InvalidSignature(Exception):
    """The request is not proven to come from the agent: missing, stale or wrong."""


@dataclass(frozen=True)
class AgentSecrets:
    """The server's master key, from which every agent's secret is derived."""

    master_key: bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> AgentSecrets:
        return cls(load_master_key(settings.secret_key, settings.data_dir))

    def secret_for(self, workspace_id: str, agent_id: str, version: int) -> str:
        message = f"{workspace_id}:{agent_id}:{version}".encode()
        digest = hmac.new(self.master_key, message, hashlib.sha256).digest()
        return SECRET_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def load_master_key(configured: str | None, data_dir: Path) -> bytes:
    """DIALBATCH_SECRET_KEY when set; otherwise a random key made once in the data folder.

    The key file appears whole or not at all (written aside, then hard-linked into place,
    which fails if it exists), so processes starting together all read the same key.
    """
    if configured is not None:
        if len(configured) < MIN_KEY_CHARS:
            raise ValueError(f"DIALBATCH_SECRET_KEY must be at least {MIN_KEY_CHARS} characters")
        return configured.encode()
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        aside = data_dir / f".{KEY_FILE}.{secrets.token_hex(8)}"
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(aside, path)
            log.info("created the agent-secret key %s; back it up with the database", path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            aside.unlink()
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_text().strip()
    if len(key) < MIN_KEY_CHARS:
        raise ValueError(f"{path} holds no usable key (at least {MIN_KEY_CHARS} characters)")
    return key.encode()


def signature(secret: str, timestamp: str | int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `"{timestamp}.{body}"` under `secret`: what agents sign their
    result reports with, and what the simulated carrier signs its callbacks with."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def matches(expected: str, given: str) -> bool:
    """Constant-time comparison of two signatures."""
    return hmac.compare_digest(expected, given)


def check_headers(
    timestamp: str | None, header: str | None, now: float | None = None
) -> tuple[str, str]:
    """(timestamp, signature header) when both are present and the timestamp is fresh.

    Checked before anything is looked up, so unsigned noise costs no database work.
    """
    if not timestamp or not header:
        raise InvalidSignature(f"Missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise InvalidSignature(f"{TIMESTAMP_HEADER} must be Unix time in seconds")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > TOLERANCE_S:
        raise InvalidSignature(
            f"{TIMESTAMP_HEADER} is more than {TOLERANCE_S} s from the server's clock"
        )
    if len(header) > 1024:
        raise InvalidSignature(f"{SIGNATURE_HEADER} is malformed")
    return timestamp, header


def verify(secret: str, timestamp: str, header: str, body: bytes) -> None:
    """Accept when one `v1=<hex>` entry of the header (space or comma separated, so an
    agent may send several while it switches secrets) matches."""
    expected = signature(secret, timestamp, body)
    found = False
    for entry in re.split(r"[,\s]+", header.strip()):
        scheme, _, value = entry.partition("=")
        if scheme == SIGNATURE_SCHEME and _SIGNATURE.match(value):
            found = hmac.compare_digest(value, expected) or found
    if not found:
        raise InvalidSignature("The signature does not match this call's agent secret")
