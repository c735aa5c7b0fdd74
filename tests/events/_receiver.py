"""A webhook receiver on 127.0.0.1 for the tests and benches: it checks every signature the
way docs/webhooks.md tells a user to, records what arrives, and can be down or fail."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    webhook_id: str
    body: dict[str, Any]
    signature_ok: bool
    answered: int


def verify(secret: str, headers: Any, body: bytes) -> bool:
    """Standard Webhooks' check, and X-Trillet-Signature's."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id, ts = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    signed = f"{msg_id}.{ts}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    standard = any(
        hmac.compare_digest(sig.split(",", 1)[-1], expected)
        for sig in headers.get("webhook-signature", "").split()
        if sig.startswith("v1,")
    )
    trillet = hmac.compare_digest(
        headers.get("X-Trillet-Signature", ""), hmac.new(key, body, hashlib.sha256).hexdigest()
    )
    return standard and trillet


class _Server(ThreadingHTTPServer):
    # The listen backlog: socketserver's default is 5. Three deliverers opening connections
    # at once overflow it, the kernel drops the SYNs and the client's connect waits out its
    # SYN retransmits (1 s, 2 s, 4 s, ... up to about a minute): a delivery stalled by the
    # receiver, not by dialbatch. A real receiver listens with a deep backlog.
    request_queue_size = 1024
    allow_reuse_address = True


@dataclass
class Receiver:
    """Answers 200, or what `answer(n)` says for the n-th request (0-based)."""

    secret: str = ""
    answer: Callable[[int], int] = lambda n: 200
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    status = receiver.answer(len(receiver.received))
                    receiver.received.append(
                        Received(
                            self.headers.get("webhook-id", ""),
                            json.loads(body),
                            verify(receiver.secret, self.headers, body),
                            status,
                        )
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Down: the port refuses connections until `start()` again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def delivered(self) -> Counter[str]:
        """webhook-id -> how many times it was answered 2xx."""
        with self._lock:
            return Counter(r.webhook_id for r in self.received if 200 <= r.answered < 300)

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)
