"""Placing each dial key once per process: the providers' shared memory of their dials.

The engine never asks twice for one dial key on purpose, but a retried request, a
reconciliation or a callback racing its own dial may. `DialOnce` remembers the provider's
call id of every key placed here (the most recent `max_remembered`, enough for the engine
to record each one first), and lets concurrent requests for one key share a single
placement: the first starts it, the others wait for its answer. The placement runs as its
own task, so a caller that is cancelled does not abort a request the provider may already
have received; its answer is remembered whoever is still waiting for it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable


class DialOnce:
    def __init__(self, max_remembered: int) -> None:
        self._max = max_remembered
        self._placed: OrderedDict[str, str] = OrderedDict()  # dial key -> provider call id
        self._placing: dict[str, asyncio.Task[str]] = {}

    def known(self, dial_key: str) -> str | None:
        """The provider call id of a key placed by this process, if still remembered."""
        return self._placed.get(dial_key)

    def pending(self, dial_key: str) -> asyncio.Task[str] | None:
        """The placement of `dial_key` under way, if any."""
        return self._placing.get(dial_key)

    async def place(self, dial_key: str, create: Callable[[], Awaitable[str]]) -> str:
        """The key's provider call id: remembered, awaited from the placement under way,
        or from `create()`, which runs at most once at a time per key."""
        known = self._placed.get(dial_key)
        if known is not None:
            return known
        task = self._placing.get(dial_key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._run(dial_key, create))
            task.add_done_callback(_retrieve)  # no warning when every waiter has gone
            self._placing[dial_key] = task
        return await asyncio.shield(task)

    def remember(self, dial_key: str, provider_call_id: str) -> None:
        self._placed[dial_key] = provider_call_id
        self._placed.move_to_end(dial_key)
        while len(self._placed) > self._max:
            self._placed.popitem(last=False)

    async def _run(self, dial_key: str, create: Callable[[], Awaitable[str]]) -> str:
        try:
            provider_call_id = await create()
            self.remember(dial_key, provider_call_id)
            return provider_call_id
        finally:
            del self._placing[dial_key]


def _retrieve(task: asyncio.Task[str]) -> None:
    if not task.cancelled():
        task.exception()
