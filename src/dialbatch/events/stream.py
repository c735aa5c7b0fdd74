"""Live events: the outbox, read by one poller per process and fanned out to that process's
Server-Sent-Events clients.

Correctness rests on two facts. Outbox ids commit in order (store/outbox.py), so "every
event after id N" is a well-defined, final set once id N is visible. And a client is
registered with the poller *before* it catches up from the database: the poller hands it
every event after its position at registration (P), and the client reads the events
between its Last-Event-ID and P itself. Nothing is lost and nothing is sent twice,
whichever process wrote the events, and with no process memory involved beyond the
poller's position.

One poller per process, whatever the number of clients: 500 open streams cost one query
per poll interval, not 500. It polls only while someone listens. Polling is the whole
mechanism (no LISTEN/NOTIFY): a NOTIFY per event-writing transaction would take
PostgreSQL's global notify lock at every commit of the engine, and a 0.2 s poll already
keeps an event's delay well under a second (bench/sse.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from fastapi import FastAPI

from dialbatch import metrics
from dialbatch.store import outbox
from dialbatch.store.engine import Database

log = logging.getLogger(__name__)

PAGE = 1000
# Events a client may have queued before it is treated as fallen behind; it then catches
# up from the database instead of holding memory.
CLIENT_BACKLOG = 5000
ERROR_RETRY_S = 1.0
WAKE_SLICE = 25


@dataclass(frozen=True)
class Event:
    """One outbox row, and its SSE message, encoded once for every client."""

    id: int
    workspace_id: str
    batch_id: str | None
    name: str
    data: dict[str, Any]
    message: bytes

    @classmethod
    def from_row(cls, row: Any) -> Event:
        data = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
        return cls(
            id=int(row.id),
            workspace_id=row.workspace_id,
            batch_id=row.batch_id,
            name=row.event,
            data=data,
            message=sse_message(row.event, data, event_id=int(row.id)),
        )


def sse_message(name: str, data: Any, *, event_id: int | None = None) -> bytes:
    lines = [] if event_id is None else [f"id: {event_id}"]
    lines += [f"event: {name}", "data: " + json.dumps(data, separators=(",", ":"))]
    return ("\n".join(lines) + "\n\n").encode()


HEARTBEAT = b": heartbeat\n\n"


@dataclass(eq=False)
class Subscription:
    """One client's place at the poller: events of its workspace (or batch) after
    `registered_at` arrive in `queue`; None in the queue means the stream must end."""

    workspace_id: str
    batch_id: str | None
    registered_at: int = 0
    queue: asyncio.Queue[list[Event] | None] = field(default_factory=asyncio.Queue)
    queued: int = 0
    overflowed: bool = False

    def wants(self, event: Event) -> bool:
        return self.batch_id is None or event.batch_id == self.batch_id

    def offer(self, events: list[Event]) -> None:
        if self.overflowed:
            return
        if self.queued + len(events) > CLIENT_BACKLOG:
            self.overflowed = True  # the client re-reads from the database (`stream`)
            self.queue.put_nowait([])
            return
        self.queued += len(events)
        self.queue.put_nowait(events)


class OutboxPoller:
    """The process's one reader of new outbox rows, for all its event-stream clients."""

    def __init__(self, db: Database, poll_s: float) -> None:
        self.db = db
        self.poll_s = poll_s
        self.position: int | None = None  # every event up to here was handed out
        self._by_workspace: dict[str, set[Subscription]] = {}
        self._start_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._closed = False

    @property
    def clients(self) -> int:
        return sum(len(s) for s in self._by_workspace.values())

    async def subscribe(self, workspace_id: str, batch_id: str | None) -> Subscription:
        """Register a client; it receives every event after `registered_at`."""
        if self._closed:
            raise RuntimeError("the event poller is closed")
        async with self._start_lock:
            if self.position is None:
                async with self.db.read() as conn:
                    self.position = await outbox.last_id(conn)
            if self._task is None:
                self._task = asyncio.create_task(self._run(), name="outbox-poller")
        sub = Subscription(workspace_id, batch_id, registered_at=self.position)
        self._by_workspace.setdefault(workspace_id, set()).add(sub)
        self._listening.set()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._by_workspace.get(sub.workspace_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_workspace[sub.workspace_id]

    def end_streams(self) -> None:
        """Tell every open stream to end (the server is stopping: it waits for open
        responses before it shuts down, and an event stream never ends by itself)."""
        for subs in self._by_workspace.values():
            for sub in subs:
                sub.queue.put_nowait(None)

    async def close(self) -> None:
        """End every stream and stop polling."""
        self._closed = True
        self.end_streams()
        self._by_workspace.clear()
        self._listening.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._closed:
            if not self._by_workspace:
                # Nobody listens: stop reading, and start afresh at the next client
                # (events meanwhile concern nobody here).
                self._listening.clear()
                self.position = None
                await self._listening.wait()
                continue
            try:
                full = await self.poll_once()
            except Exception:
                log.warning("reading the outbox failed; retrying", exc_info=True)
                await asyncio.sleep(ERROR_RETRY_S)
                continue
            if not full:
                await asyncio.sleep(self.poll_s)

    async def poll_once(self) -> bool:
        """Hand out the events after `position`; True when a whole page was read (more
        may be waiting)."""
        async with self._start_lock:
            position = self.position
            if position is None:
                return False
            async with self.db.read() as conn:
                rows = await outbox.read_after(conn, position, limit=PAGE)
            if not rows:
                return False
            per_sub: dict[Subscription, list[Event]] = {}
            for row in rows:
                event = Event.from_row(row)
                for sub in self._by_workspace.get(event.workspace_id, ()):
                    if sub.wants(event):
                        per_sub.setdefault(sub, []).append(event)
            self.position = int(rows[-1].id)
            # Wake the streams a slice at a time: asyncio runs every ready task before it
            # looks at sockets again, so waking 500 at once would make a request to any
            # other endpoint wait behind all 500 writes.
            for i, (sub, events) in enumerate(per_sub.items(), 1):
                sub.offer(events)
                if i % WAKE_SLICE == 0:
                    await asyncio.sleep(0)
            return len(rows) == PAGE


Snapshot = Callable[[], Awaitable[Any]]


async def stream(
    poller: OutboxPoller,
    workspace_id: str,
    batch_id: str | None,
    *,
    last_event_id: int | None,
    snapshot: Snapshot,
    heartbeat_s: float,
) -> AsyncIterator[bytes]:
    """An event stream: a snapshot, the events after `last_event_id` (or, on a fresh
    connection, after the snapshot's position), then live events, with heartbeats."""
    sub = await poller.subscribe(workspace_id, batch_id)
    metrics.SSE_CLIENTS.inc()
    try:
        fresh = last_event_id is None
        cursor = sub.registered_at if last_event_id is None else last_event_id
        body = await snapshot()
        if body is None:
            body = {"lastEventId": cursor}
        # On a fresh connection the snapshot is the resume point: an EventSource that
        # reconnects sends its id back.
        yield sse_message("snapshot", body, event_id=cursor if fresh else None)
        while True:
            # The events after `cursor` up to the subscription's start, from the database,
            # a page at a time.
            while cursor < sub.registered_at:
                async with poller.db.read() as conn:
                    rows = await outbox.read_after(
                        conn,
                        cursor,
                        limit=PAGE,
                        up_to=sub.registered_at,
                        workspace_id=workspace_id,
                        batch_id=batch_id,
                    )
                if rows:
                    yield b"".join(Event.from_row(r).message for r in rows)
                cursor = int(rows[-1].id) if len(rows) == PAGE else sub.registered_at
            async for message in _live(sub, cursor, heartbeat_s):
                if isinstance(message, int):
                    cursor = message
                else:
                    yield message
            if not sub.overflowed:
                return  # the poller closed
            # Fell behind: resubscribe, and read what was missed from the database.
            poller.unsubscribe(sub)
            sub = await poller.subscribe(workspace_id, batch_id)
    finally:
        metrics.SSE_CLIENTS.dec()
        poller.unsubscribe(sub)


async def _live(sub: Subscription, cursor: int, heartbeat_s: float) -> AsyncIterator[bytes | int]:
    """Messages from the poller (skipping any at or before `cursor`), and the new cursor
    after each batch; ends when the poller closes or the client fell behind."""
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    while True:
        wait = max(0.0, heartbeat_s - (loop.time() - last_sent))
        try:
            # wait_for returns an item that arrives as the timeout fires.
            events = await asyncio.wait_for(sub.queue.get(), wait)
        except TimeoutError:
            yield HEARTBEAT
            last_sent = loop.time()
            continue
        if events is None or sub.overflowed:
            return
        sub.queued -= len(events)
        fresh = [e for e in events if e.id > cursor]
        if fresh:
            yield b"".join(e.message for e in fresh)
            cursor = fresh[-1].id
            yield cursor
            last_sent = loop.time()


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def close_streams_on_exit(inner: Lifespan | None) -> Lifespan:
    """The app's lifespan, plus: event streams end when the server is told to stop
    (SIGTERM, Ctrl-C), and the poller closes before the rest of the process stops.

    uvicorn waits for open responses before it runs the lifespan's shutdown, and an event
    stream never ends by itself; so the stop signal itself ends the streams (the handler
    is chained in front of uvicorn's, in the main thread only, where signals arrive).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        poller: OutboxPoller = app.state.event_poller
        loop = asyncio.get_running_loop()
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in _STOP_SIGNALS:
                before = signal.getsignal(sig)

                def handler(signum: int, frame: FrameType | None, before: Any = before) -> None:
                    loop.call_soon_threadsafe(poller.end_streams)
                    if callable(before):
                        before(signum, frame)

                previous[sig] = before
                signal.signal(sig, handler)
        try:
            if inner is None:
                yield
            else:
                async with inner(app):
                    try:
                        yield
                    finally:
                        await poller.close()
        finally:
            await poller.close()
            for signum, handler_before in previous.items():
                if handler_before is not None:
                    signal.signal(signum, handler_before)

    return lifespan
