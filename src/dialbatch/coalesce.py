"""Natural batching: items submitted while a group is being written wait and go together
in the next one.

A lone item is written at once (no timer, no added latency); under load the groups grow to
whatever arrived during one transaction, so the cost per item falls as the rate rises.
This is how one worker turns a hundred outcomes a second into a few transactions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# The handler answers each item with its result, or with the exception that item alone
# raised (so that one bad item fails only its own submitter).
Handler = Callable[[list[T]], Awaitable[list[R | BaseException]]]


class Coalescer(Generic[T, R]):
    def __init__(self, handle: Handler[T, R], *, max_items: int, name: str) -> None:
        self._handle = handle
        self._max = max_items
        self._name = name
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain(), name=self._name)
        return await future

    async def _drain(self) -> None:
        while self._pending:
            group = self._pending[: self._max]
            del self._pending[: self._max]
            try:
                results = await self._handle([item for item, _ in group])
            except Exception as exc:
                _fail(group, exc)
                continue
            except BaseException:  # cancelled: nobody may be left waiting forever
                for _, future in group + self._pending:
                    future.cancel()
                self._pending.clear()
                raise
            for (_, future), result in zip(group, results, strict=True):
                if future.done():
                    continue  # its submitter was cancelled
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)


def _fail(group: list[tuple[T, asyncio.Future[R]]], exc: Exception) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(exc)
