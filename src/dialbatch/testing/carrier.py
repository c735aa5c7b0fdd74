"""The simulated carrier as its own process (`dialbatch carrier`): calls that outlive the
worker that placed them, a ledger of every dial received, and signed status callbacks.

It draws outcomes and durations exactly as the in-process simulated provider does (seeded
per dial_key), so the two behave alike; what it adds is what at-most-once needs to be
shown: a separate life, an idempotent `POST /calls`, a lookup by dial_key that fences
(a key looked up and not found can never be placed afterwards), and a record of every
dial and of how many were live at once.

REST (JSON):
  POST /calls {dial_key, to, from, workspace_id, agent_id, job_id, agent_config, metadata}
       -> 201 {id} (new), 200 {id, duplicate: true} (same dial_key again: not a new ring),
          409 (the key was looked up and found absent: fenced), 503 (refused, startErrorRate);
       with `placeDelayMs` in agent_config, the request waits up to that long (drawn per
       dial) before the dial is received and recorded: a slow, uneven path to the carrier
  GET  /calls?dial_key=K, GET /calls/{id} -> the call, live or ended; 404 if unknown
  POST /calls/{id}/hangup
  GET  /ledger -> every dial received (with the number it rang, `to`)
  GET  /stats -> counts, peak live calls per workspace
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dialbatch.domain.outcomes import Outcome
from dialbatch.providers.base import DialRequest
from dialbatch.providers.carrier import MAX_PLACE_DELAY_MS, signing, validate_config
from dialbatch.providers.simulated import (
    _CODES,
    REFUSED,
    _draw,
    _result_for,
    scripted_outcome,
)

log = logging.getLogger(__name__)

SENDERS = 8
CALLBACK_TIMEOUT_S = 5.0
MAX_BACKOFF_S = 5.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class CarrierConfig:
    callback_url: str | None = None
    secret: str = ""
    time_scale: float = 1.0
    seed: int = 7
    drop_rate: float = 0.0  # share of callbacks never sent (lost)
    duplicate_rate: float = 0.0  # share of callbacks sent twice
    callback_retry_s: float = 600.0  # keep retrying a failed delivery this long
    state_path: Path | None = None


@dataclass
class Dial:
    """One dial received: the ledger's row and the live call's state."""

    id: str
    dial_key: str
    job_id: str
    workspace_id: str
    agent_id: str
    to: str
    received_at: int
    ends_at: int
    answer_at: int | None
    outcome: str
    duration_s: float | None
    code: str
    result: dict[str, Any] | None = None
    ended_at: int | None = None
    requests: int = 1
    from_: str | None = None  # the caller number the dial asked to show
    stage: str = "dialing"
    final_sent: bool = False

    def view(self) -> dict[str, Any]:
        """What GET /calls answers."""
        live = self.ended_at is None
        body: dict[str, Any] = {
            "id": self.id,
            "dial_key": self.dial_key,
            "job_id": self.job_id,
            "status": "live" if live else "ended",
            "stage": self.stage,
            "received_at": self.received_at,
        }
        if not live:
            body.update(
                outcome=self.outcome,
                duration_s=self.duration_s,
                code=self.code,
                ended_at=self.ended_at,
                result=self.result,
            )
        return body

    def ledger_row(self) -> dict[str, Any]:
        return {
            "dial_key": self.dial_key,
            "id": self.id,
            "job_id": self.job_id,
            "workspace_id": self.workspace_id,
            "to": self.to,
            "from": self.from_,
            "received_at": self.received_at,
            "ended_at": self.ended_at,
            "outcome": self.outcome if self.ended_at is not None else None,
            "requests": self.requests,
        }


@dataclass
class _Delivery:
    body: bytes
    dial_key: str
    final: bool
    first_at: float
    tries: int = 0


class Refused(Exception):
    """POST /calls cannot be honoured; `status` is the HTTP code to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Store:
    """Optional durable copy of the ledger and the tombstones (SQLite), so that the carrier
    itself can be restarted without forgetting a dial."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS dials (dial_key TEXT PRIMARY KEY, data TEXT)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS tombstones (dial_key TEXT PRIMARY KEY, at INTEGER)"
        )

    def load(self) -> tuple[list[Dial], dict[str, int]]:
        dials = [Dial(**json.loads(d)) for (d,) in self._db.execute("SELECT data FROM dials")]
        tombs = dict(self._db.execute("SELECT dial_key, at FROM tombstones").fetchall())
        return dials, tombs

    def save(self, dial: Dial) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO dials VALUES (?, ?)", (dial.dial_key, json.dumps(asdict(dial)))
        )

    def tombstone(self, key: str, at: int) -> None:
        self._db.execute("INSERT OR IGNORE INTO tombstones VALUES (?, ?)", (key, at))

    def close(self) -> None:
        self._db.close()


class Carrier:
    """The carrier's state and behaviour; `create_app` puts HTTP in front of it."""

    def __init__(
        self, config: CarrierConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._transport = transport  # tests deliver callbacks in-process
        self.dials: dict[str, Dial] = {}  # by dial_key
        self._by_id: dict[str, str] = {}
        self.tombstones: dict[str, int] = {}
        self.refused = 0
        self.fenced = 0
        self.callbacks: Counter[str] = Counter()
        self._timers: dict[str, list[asyncio.TimerHandle]] = defaultdict(list)
        self._queue: asyncio.Queue[_Delivery] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._rng = random.Random(f"carrier:{config.seed}")
        self._store = _Store(config.state_path) if config.state_path else None
        self._client: httpx.AsyncClient | None = None

    # ---- life -------------------------------------------------------------------------

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=CALLBACK_TIMEOUT_S, transport=self._transport)
        self._tasks = [asyncio.create_task(self._sender()) for _ in range(SENDERS)]
        if self._store is not None:
            self._restore()

    async def aclose(self) -> None:
        for handles in self._timers.values():
            for h in handles:
                h.cancel()
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
        if self._store is not None:
            self._store.close()

    def _restore(self) -> None:
        """Carry on after a restart: live calls end when they were due to, finals that were
        never acknowledged are sent again."""
        assert self._store is not None
        dials, self.tombstones = self._store.load()
        now = now_ms()
        for dial in dials:
            self.dials[dial.dial_key] = dial
            self._by_id[dial.id] = dial.dial_key
            if dial.ended_at is None:
                self._schedule(dial, now)
            elif not dial.final_sent:
                self._enqueue(self._final_payload(dial), dial.dial_key, final=True)
        log.info("carrier restored %d dials, %d tombstones", len(dials), len(self.tombstones))

    # ---- calls ------------------------------------------------------------------------

    def place(self, body: dict[str, Any]) -> tuple[Dial, bool]:
        """Receive a dial; (dial, created). Idempotent on dial_key; raises Refused."""
        key = body.get("dial_key")
        if not isinstance(key, str) or not key:
            raise Refused(400, "dial_key is required")
        existing = self.dials.get(key)
        if existing is not None:
            existing.requests += 1
            self._save(existing)
            return existing, False
        if key in self.tombstones:
            self.fenced += 1
            raise Refused(409, f"dial_key {key!r} was looked up and not found: fenced")
        cfg = body.get("agent_config") or {}
        if not isinstance(cfg, dict):
            raise Refused(400, "agent_config must be an object")
        try:
            validate_config(cfg)
        except ValueError as exc:
            raise Refused(400, f"agent_config: {exc}") from exc
        rng = random.Random(f"{cfg.get('seed', self.config.seed)}:{key}")
        scripted = scripted_outcome(cfg, str(body.get("to", "")), key)
        if rng.random() < float(cfg.get("startErrorRate", 0.0)) or scripted == REFUSED:
            self.refused += 1
            raise Refused(503, "the carrier refused the dial (simulated)")
        forced = Outcome(scripted) if scripted else None
        outcome, ring_s, talk_s = _draw(rng, cfg, forced)
        pcid = f"car_{rng.getrandbits(64):016x}"
        request = DialRequest(
            dial_key=key,
            job_id=str(body.get("job_id", "")),
            to=str(body.get("to", "")),
            from_=str(body["from"]) if body.get("from") else None,
            metadata=body.get("metadata") or {},
            agent_id=str(body.get("agent_id", "")),
        )
        scale = self.config.time_scale
        now = now_ms()
        answered = outcome in (Outcome.COMPLETED, Outcome.VOICEMAIL)
        dial = Dial(
            id=pcid,
            dial_key=key,
            job_id=request.job_id,
            workspace_id=str(body.get("workspace_id", "")),
            agent_id=request.agent_id,
            to=request.to,
            from_=request.from_,
            received_at=now,
            ends_at=now + int((ring_s + talk_s) * scale * 1000),
            answer_at=now + int(ring_s * scale * 1000) if answered else None,
            outcome=outcome.value,
            duration_s=round(talk_s, 1) if talk_s else None,
            code=_CODES[outcome],
            result=_result_for(request.metadata, pcid) if outcome is Outcome.COMPLETED else None,
        )
        self.dials[key] = dial
        self._by_id[pcid] = key
        self._save(dial)
        self._progress(dial, "ringing")
        self._schedule(dial, now)
        return dial, True

    def _schedule(self, dial: Dial, now: int) -> None:
        loop = asyncio.get_running_loop()
        handles = self._timers[dial.dial_key]
        if dial.answer_at is not None and dial.stage != "answered":
            delay = max(0.0, (dial.answer_at - now) / 1000)
            handles.append(loop.call_later(delay, self._progress, dial, "answered"))
        delay = max(0.0, (dial.ends_at - now) / 1000)
        handles.append(loop.call_later(delay, self._end, dial, None))

    def _progress(self, dial: Dial, stage: str) -> None:
        if dial.ended_at is not None:
            return
        dial.stage = stage
        payload = {
            "type": "call.progress",
            "id": dial.id,
            "dial_key": dial.dial_key,
            "stage": stage,
            "at": now_ms(),
        }
        self._enqueue(payload, dial.dial_key, final=False)

    def _end(self, dial: Dial, outcome: Outcome | None) -> None:
        """The call is over (its time ran out, or `outcome` = canceled by a hangup)."""
        if dial.ended_at is not None:
            return
        dial.ended_at = now_ms()
        if outcome is not None:
            dial.outcome = outcome.value
            dial.code = _CODES[outcome]
            dial.duration_s = None
            dial.result = None
        for handle in self._timers.pop(dial.dial_key, []):
            handle.cancel()
        self._save(dial)
        self._enqueue(self._final_payload(dial), dial.dial_key, final=True)

    def _final_payload(self, dial: Dial) -> dict[str, Any]:
        return {
            "type": "call.ended",
            "id": dial.id,
            "dial_key": dial.dial_key,
            "outcome": dial.outcome,
            "duration_s": dial.duration_s,
            "code": dial.code,
            "ended_at": dial.ended_at,
            "result": dial.result,
        }

    def lookup_key(self, key: str) -> Dial | None:
        """A dial by its key. Not found is a promise: that key will never be placed."""
        dial = self.dials.get(key)
        if dial is None and key not in self.tombstones:
            at = now_ms()
            self.tombstones[key] = at
            if self._store is not None:
                self._store.tombstone(key, at)
        return dial

    def lookup_id(self, call_id: str) -> Dial | None:
        key = self._by_id.get(call_id)
        return self.dials.get(key) if key else None

    def hangup(self, call_id: str) -> Dial | None:
        dial = self.lookup_id(call_id)
        if dial is not None:
            self._end(dial, Outcome.CANCELED)
        return dial

    def _save(self, dial: Dial) -> None:
        if self._store is not None:
            self._store.save(dial)

    # ---- callbacks --------------------------------------------------------------------

    def _enqueue(self, payload: dict[str, Any], key: str, *, final: bool) -> None:
        if not self.config.callback_url:
            return
        if self._rng.random() < self.config.drop_rate:
            self.callbacks["dropped"] += 1
            if final:
                self._mark_sent(key)
            return
        body = json.dumps(payload, separators=(",", ":")).encode()
        copies = 2 if self._rng.random() < self.config.duplicate_rate else 1
        self.callbacks["duplicated"] += copies - 1
        for _ in range(copies):
            self._queue.put_nowait(_Delivery(body, key, final, time.monotonic()))

    async def _sender(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._send(item)
            except Exception:  # never let one delivery stop a sender
                log.exception("callback delivery crashed")

    async def _send(self, item: _Delivery) -> None:
        assert self._client is not None and self.config.callback_url
        item.tries += 1
        headers = {
            signing.HEADER: signing.sign(self.config.secret, item.body),
            "content-type": "application/json",
        }
        try:
            response = await self._client.post(
                self.config.callback_url, content=item.body, headers=headers
            )
            status: int | None = response.status_code
        except httpx.HTTPError as exc:
            log.debug("callback for %s failed: %s", item.dial_key, exc)
            status = None
        if status is not None and 200 <= status < 300:
            self.callbacks["delivered"] += 1
            if item.final:
                self._mark_sent(item.dial_key)
            return
        if status in (400, 403, 413):  # will never be accepted: a misconfiguration
            self.callbacks["rejected"] += 1
            log.error("callback for %s rejected with %s", item.dial_key, status)
            return
        self.callbacks["failed_tries"] += 1
        if time.monotonic() - item.first_at > self.config.callback_retry_s:
            self.callbacks["given_up"] += 1
            log.error("gave up delivering a callback for %s", item.dial_key)
            return
        delay = min(MAX_BACKOFF_S, 0.1 * 2 ** min(item.tries, 10))
        asyncio.get_running_loop().call_later(delay, self._requeue, item)

    def _requeue(self, item: _Delivery) -> None:
        if not self._closed:
            self._queue.put_nowait(item)

    def _mark_sent(self, key: str) -> None:
        dial = self.dials.get(key)
        if dial is not None and not dial.final_sent:
            dial.final_sent = True
            self._save(dial)

    # ---- the record -------------------------------------------------------------------

    def ledger(self) -> list[dict[str, Any]]:
        return [d.ledger_row() for d in sorted(self.dials.values(), key=lambda d: d.received_at)]

    def stats(self) -> dict[str, Any]:
        per_job = Counter(d.job_id for d in self.dials.values())
        live: Counter[str] = Counter(
            d.workspace_id for d in self.dials.values() if d.ended_at is None
        )
        return {
            "dials": len(self.dials),
            "duplicate_requests": sum(d.requests - 1 for d in self.dials.values()),
            "refused": self.refused,
            "fenced": self.fenced,
            "tombstones": len(self.tombstones),
            "live": dict(live),
            "max_live": max_overlap(self.dials.values()),
            "max_dials_per_job": max(per_job.values(), default=0),
            "dials_per_job": dict(per_job),
            "callbacks": dict(self.callbacks) | {"queued": self._queue.qsize()},
        }


def max_overlap(dials: Any) -> dict[str, int]:
    """Per workspace, the most calls live at one instant, from the ledger's intervals
    [received_at, ended_at); a call still live counts up to now. At equal times an end is
    counted before a start: the slot was free again when the next dial arrived."""
    events: dict[str, list[tuple[int, int]]] = defaultdict(list)
    now = now_ms()
    for d in dials:
        events[d.workspace_id].append((d.received_at, 1))
        events[d.workspace_id].append((d.ended_at if d.ended_at is not None else now + 1, -1))
    peaks: dict[str, int] = {}
    for ws, items in events.items():
        items.sort()  # (t, -1) sorts before (t, 1)
        level = peak = 0
        for _, step in items:
            level += step
            peak = max(peak, level)
        peaks[ws] = peak
    return peaks


def place_delay_s(body: dict[str, Any]) -> float:
    """How long this dial's request waits before the carrier receives it: drawn per dial key
    between 0 and the agent's `placeDelayMs` (0 without one)."""
    cfg = body.get("agent_config")
    most = cfg.get("placeDelayMs") if isinstance(cfg, dict) else None
    if not isinstance(most, int | float) or isinstance(most, bool) or most <= 0:
        return 0.0
    rng = random.Random(f"delay:{body.get('dial_key')}")
    return rng.uniform(0, min(float(most), MAX_PLACE_DELAY_MS)) / 1000


def create_app(carrier: Carrier) -> Starlette:
    """The carrier's HTTP face."""

    async def post_call(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "body must be JSON")
        if not isinstance(body, dict):
            return _error(400, "body must be a JSON object")
        delay = place_delay_s(body)
        if delay:
            # A slow, uneven path to the carrier: the dial is received (and its start
            # recorded) only now, and answered at once after.
            await asyncio.sleep(delay)
        try:
            dial, created = carrier.place(body)
        except Refused as exc:
            return _error(exc.status, str(exc))
        if created:
            return JSONResponse({"id": dial.id}, status_code=201)
        return JSONResponse({"id": dial.id, "duplicate": True})

    async def find_calls(request: Request) -> JSONResponse:
        key = request.query_params.get("dial_key")
        if not key:
            return _error(400, "dial_key is required")
        dial = carrier.lookup_key(key)
        if dial is None:
            return _error(404, "no dial with this key was received", ledger=_ledger_kind(carrier))
        return JSONResponse(dial.view())

    async def get_call(request: Request) -> JSONResponse:
        dial = carrier.lookup_id(request.path_params["call_id"])
        return JSONResponse(dial.view()) if dial else _error(404, "unknown call id")

    async def hangup(request: Request) -> JSONResponse:
        dial = carrier.hangup(request.path_params["call_id"])
        return JSONResponse(dial.view()) if dial else _error(404, "unknown call id")

    async def ledger(_: Request) -> JSONResponse:
        return JSONResponse(carrier.ledger())

    async def stats(_: Request) -> JSONResponse:
        return JSONResponse(carrier.stats())

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await carrier.start()
        try:
            yield
        finally:
            await carrier.aclose()

    return Starlette(
        routes=[
            Route("/calls", post_call, methods=["POST"]),
            Route("/calls", find_calls, methods=["GET"]),
            Route("/calls/{call_id}", get_call, methods=["GET"]),
            Route("/calls/{call_id}/hangup", hangup, methods=["POST"]),
            Route("/ledger", ledger, methods=["GET"]),
            Route("/stats", stats, methods=["GET"]),
            Route("/healthz", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def _ledger_kind(carrier: Carrier) -> str:
    return "durable" if carrier.config.state_path else "memory"


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)
