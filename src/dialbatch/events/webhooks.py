"""Outbound webhooks: delivered from the outbox by every worker process, signed, retried
with exponential backoff, and kept as dead letters when the retry window runs out.

Each round a worker (1) fans new outbox rows out into delivery rows (one worker at a
time, store/webhooks.fan_out), (2) claims due deliveries under a lease (SKIP LOCKED on
PostgreSQL), (3) sends each with its own signature headers, and (4) records every
attempt's status code and latency. A delivery is sent again only when its attempt
failed or its worker died before recording the answer; receivers deduplicate by the
`webhook-id` header, which is the same for every attempt of one event.

Where a delivery goes is checked at every attempt, not only when the endpoint was made:
the host is resolved, every address it resolves to must be public (unless
DIALBATCH_WEBHOOKS_ALLOW_PRIVATE), and the request connects to the address that was
checked (the URL's host kept in the Host header and TLS SNI), so a DNS answer that
changes between the check and the connection cannot redirect it. Redirects are not
followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import random
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from dialbatch import metrics
from dialbatch.domain.webhooks import is_public_address, retry_delay_ms
from dialbatch.events import signing
from dialbatch.settings import Settings
from dialbatch.store import webhooks as store
from dialbatch.store.engine import Database

log = logging.getLogger(__name__)

FANOUT_PAGE = 5000
LEASE_MS = 120_000
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "dialbatch-webhooks/1"


class AddressRefused(Exception):
    """The URL's host is not a place a webhook may go (or does not resolve)."""


# Host name -> (when resolved, addresses): a name is resolved again after this long, so a
# DNS change is seen within seconds without a look-up per delivery.
RESOLVE_TTL_S = 5.0
_resolved: dict[tuple[str, int], tuple[float, list[str]]] = {}


async def _addresses(host: str, port: int) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]  # a literal: nothing to resolve
    except ValueError:
        pass
    now = time.monotonic()
    cached = _resolved.get((host, port))
    if cached is not None and now - cached[0] < RESOLVE_TTL_S:
        return cached[1]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise AddressRefused(f"{host} does not resolve ({exc})") from exc
    addresses = [str(info[4][0]) for info in infos]
    if len(_resolved) > 10_000:
        _resolved.clear()
    _resolved[(host, port)] = (now, addresses)
    return addresses


async def resolve_checked(host: str, port: int, *, allow_private: bool) -> str:
    """The address to connect to for `host`: every address it resolves to (at most
    RESOLVE_TTL_S ago) checked."""
    addresses = await _addresses(host, port)
    if not addresses:
        raise AddressRefused(f"{host} does not resolve")
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise AddressRefused(
                    f"{host} resolves to {address}, a loopback, private or link-local "
                    "address; webhooks may only reach public addresses "
                    "(DIALBATCH_WEBHOOKS_ALLOW_PRIVATE=true allows them, for tests)"
                )
    return addresses[0]


class _CheckedResolver(AbstractResolver):
    """aiohttp's name resolution, through `resolve_checked`: a connection can only be
    opened to an address that passed the check."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            address = await resolve_checked(host, port, allow_private=self.allow_private)
        except AddressRefused as exc:
            raise OSError(str(exc)) from exc
        ip = ipaddress.ip_address(address)
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def message_body(due: store.Due) -> bytes:
    """The request body: Standard Webhooks' recommended `{type, timestamp, data}`, plus
    the event's id (the same as the event stream's)."""
    at = datetime.fromtimestamp(due.created_at / 1000, UTC).isoformat(timespec="milliseconds")
    body = {
        "id": due.outbox_id,
        "type": due.event,
        "timestamp": at.replace("+00:00", "Z"),
        "data": due.payload,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def message_id(due: store.Due) -> str:
    return f"evt_{due.outbox_id}"


# A delivery's state after an attempt -> the attempt's result in the metrics.
_RESULT_LABEL = {store.DELIVERED: "delivered", store.PENDING: "failed", store.DEAD: "dead"}


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    latency_ms: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookDeliverer:
    """One worker process's delivery loop."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        master_key: bytes,
        *,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.master_key = master_key
        self.owner = owner or f"wh-{uuid.uuid4().hex[:12]}"
        self._session: aiohttp.ClientSession | None = None
        self._keys: dict[tuple[str, str, int], bytes] = {}
        self._in_flight: set[asyncio.Task[None]] = set()
        self._results: list[store.Result] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._done = asyncio.Event()
        self._done.set()
        self._rng = random.Random()
        self._fan_out_checked = 0.0
        self._fan_out_more = False
        self._targets: dict[str, tuple[str, int]] = {}

    async def run(self) -> None:
        """Deliver until `stop()`; a failed round is logged and the loop goes on."""
        self._done.clear()
        self._session = self._new_session()
        try:
            while not self._stopping:
                busy = False
                try:
                    busy = await self.round()
                except Exception:
                    log.exception("webhook round failed; retrying")
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.settings.webhook_poll_s)
                self._wake.clear()
            if self._in_flight:
                await asyncio.wait(list(self._in_flight), timeout=self.settings.webhook_timeout_s)
            await self._record()
        finally:
            await self._session.close()
            self._done.set()

    async def stop(self) -> None:
        """Stop claiming; let sends in flight finish (bounded by the request timeout) and
        record them. A result not recorded is sent again after its lease."""
        self._stopping = True
        self._wake.set()
        await self._done.wait()

    async def round(self) -> bool:
        """One pass, one write transaction: record the answers received, fan new events
        out, claim what there is room for. True when more may be waiting at once."""
        results, self._results = self._results, []
        free = self.settings.webhook_concurrency - len(self._in_flight)
        try:
            # Looking for new events costs three reads: at most once per poll interval,
            # unless the last fan-out left more behind.
            fan_out = False
            now = time.monotonic()
            if self._fan_out_more or now - self._fan_out_checked >= self.settings.webhook_poll_s:
                self._fan_out_checked = now
                async with self.db.read() as conn:
                    fan_out = await store.fan_out_needed(conn)
            async with self.db.write() as conn:
                await store.record(conn, results)
                read = await store.fan_out(conn, page=FANOUT_PAGE) if fan_out else 0
                due = await store.claim_due(conn, self.owner, free, LEASE_MS) if free else []
        except BaseException:
            self._results[:0] = results  # nothing was written: record them next round
            raise
        for d in due:
            task = asyncio.create_task(self._send(d))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        self._fan_out_more = read == FANOUT_PAGE
        return self._fan_out_more

    async def _record(self) -> None:
        results, self._results = self._results, []
        if not results:
            return
        try:
            async with self.db.write() as conn:
                await store.record(conn, results)
        except Exception:
            # Not recorded: each is sent again once its lease runs out (a duplicate
            # the receiver drops by webhook-id).
            log.exception("recording %d webhook attempt(s) failed", len(results))

    def _key(self, due: store.Due) -> bytes:
        k = (due.workspace_id, due.endpoint_id, due.secret_version)
        found = self._keys.get(k)
        if found is None:
            secret = signing.webhook_secret(self.master_key, *k)
            found = self._keys[k] = signing.secret_bytes(secret)
        return found

    async def _send(self, due: store.Due) -> None:
        started = time.time()
        answer = await self.attempt(due)
        result = self._outcome(due, answer, int(started * 1000))
        self._results.append(result)
        metrics.WEBHOOK_DELIVERIES.labels(result=_RESULT_LABEL[result.status]).inc()
        # Rounds are transactions: start one when half the room is free, not per answer.
        if len(self._results) * 2 >= self.settings.webhook_concurrency or len(self._in_flight) <= 1:
            self._wake.set()

    def _new_session(self) -> aiohttp.ClientSession:
        """aiohttp rather than httpx here: httpcore's pool cost ~2.5 ms of CPU per delivery
        at 64 connections, aiohttp a fraction of that (bench/webhooks.py); and its
        connector takes a resolver, so each connection goes to the address that was
        checked while TLS and Host keep the URL's name."""
        connector = aiohttp.TCPConnector(
            resolver=_CheckedResolver(self.settings.webhooks_allow_private),
            use_dns_cache=False,  # every new connection is checked (the resolver caches)
            limit=self.settings.webhook_concurrency,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.settings.webhook_timeout_s),
            headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"},
            trust_env=False,  # no proxy from the environment: we connect where we checked
        )

    def _target(self, raw: str) -> tuple[str, int]:
        """(host, port) of a URL, parsed once per endpoint."""
        found = self._targets.get(raw)
        if found is None:
            url = httpx.URL(raw)
            found = self._targets[raw] = (url.host, _port(url))
        return found

    async def attempt(self, due: store.Due) -> Answer:
        """One attempt: check where it goes, sign, send; never raises."""
        body = message_body(due)
        try:
            host, port = self._target(due.url)
            await resolve_checked(host, port, allow_private=self.settings.webhooks_allow_private)
        except (AddressRefused, httpx.InvalidURL) as exc:
            return Answer(None, None, str(exc))
        headers = signing.signed_headers(self._key(due), message_id(due), body)
        assert self._session is not None, "run() makes the session"
        t0 = time.monotonic()
        try:
            async with self._session.post(
                due.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                read = 0
                while chunk := await response.content.readany():
                    read += len(chunk)
                    if read > MAX_RESPONSE_BYTES:
                        response.close()  # a receiver that talks too much loses its connection
                        break
                status = response.status
            latency = int((time.monotonic() - t0) * 1000)
            return Answer(status, latency, None if 200 <= status < 300 else f"HTTP {status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            latency = int((time.monotonic() - t0) * 1000)
            return Answer(None, latency, f"{type(exc).__name__}: {exc}"[:500])

    def _outcome(self, due: store.Due, answer: Answer, at: int) -> store.Result:
        n = due.attempts + 1
        first = due.first_attempt_at or at
        if answer.ok:
            status, next_at = store.DELIVERED, at
        elif at - first >= self.settings.webhook_retry_window_s * 1000:
            status, next_at = store.DEAD, at
        else:
            delay = retry_delay_ms(
                n,
                base_ms=self.settings.webhook_retry_base_s * 1000,
                max_ms=self.settings.webhook_retry_max_s * 1000,
                rng=self._rng,
            )
            status, next_at = store.PENDING, at + delay
        return store.Result(
            delivery_id=due.id,
            lease_token=due.lease_token,
            n=n,
            at=at,
            status_code=answer.status_code,
            latency_ms=answer.latency_ms,
            error=answer.error,
            status=status,
            next_attempt_at=next_at,
            first_attempt_at=first,
        )
