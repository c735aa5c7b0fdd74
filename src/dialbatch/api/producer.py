"""Run a push-style producer (one that calls `emit(item)`) in a worker thread and consume
its items as an async iterator, with backpressure.

Ingest uses it to validate an upload in a thread while the event loop inserts what is
already validated: SQLite releases the GIL while it writes, so the two overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_POLL_S = 0.05


class _Stopped(Exception):
    """Raised inside the producer when the consumer has gone away."""


class ThreadProducer(Generic[T, R]):
    """`async for item in producer` yields what `produce(emit)` emits; afterwards
    `producer.result` is what it returned. Its exception, if any, is raised by the loop."""

    def __init__(self, produce: Callable[[Callable[[T], None]], R], maxsize: int = 4) -> None:
        self._produce = produce
        self._queue: queue.Queue[tuple[bool, T | None]] = queue.Queue(maxsize=maxsize)
        self._stop = threading.Event()
        self.result: R | None = None

    def _put(self, done: bool, item: T | None) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put((done, item), timeout=_POLL_S)
                return
        raise _Stopped

    def _run(self) -> R:
        try:
            return self._produce(lambda item: self._put(False, item))
        finally:
            with contextlib.suppress(_Stopped):
                self._put(True, None)

    async def __aiter__(self) -> AsyncIterator[T]:
        worker = asyncio.ensure_future(asyncio.to_thread(self._run))
        try:
            while True:
                done, item = await asyncio.to_thread(self._queue.get)
                if done:
                    break
                yield item  # type: ignore[misc]
            self.result = await worker
        finally:
            self._stop.set()
            if not worker.done():
                with contextlib.suppress(_Stopped, Exception):
                    await worker
