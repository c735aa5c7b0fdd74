"""Natural batching: what arrives while a group is written goes in the next group."""

from __future__ import annotations

import asyncio

import pytest

from dialbatch.coalesce import Coalescer


class Recorder:
    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def handle(self, items: list[int]) -> list[int | BaseException]:
        self.groups.append(items)
        await self.gate.wait()
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


async def test_a_lone_item_is_written_at_once() -> None:
    rec = Recorder()
    c: Coalescer[int, int] = Coalescer(rec.handle, max_items=10, name="t")
    assert await asyncio.wait_for(c.submit(1), 1) == 10
    assert rec.groups == [[1]]


async def test_items_arriving_during_a_write_go_together_in_the_next() -> None:
    rec = Recorder()
    c: Coalescer[int, int] = Coalescer(rec.handle, max_items=3, name="t")
    rec.gate.clear()
    first = asyncio.create_task(c.submit(0))
    await asyncio.sleep(0)  # the first group (just item 0) is being written
    rest = [asyncio.create_task(c.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0)
    rec.gate.set()
    assert await asyncio.gather(first, *rest) == [0, 10, 20, 30, 40, 50]
    assert rec.groups == [[0], [1, 2, 3], [4, 5]]  # at most max_items per group


async def test_one_bad_item_fails_only_its_own_submitter() -> None:
    rec = Recorder()
    c: Coalescer[int, int] = Coalescer(rec.handle, max_items=10, name="t")
    rec.gate.clear()
    tasks = [asyncio.create_task(c.submit(i)) for i in (1, -1, 2)]
    await asyncio.sleep(0)
    rec.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == 10 and results[2] == 20
    assert isinstance(results[1], ValueError)


async def test_a_failed_group_fails_its_submitters_and_the_next_group_still_runs() -> None:
    calls: list[list[int]] = []

    async def handle(items: list[int]) -> list[int | BaseException]:
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return list(items)

    c: Coalescer[int, int] = Coalescer(handle, max_items=10, name="t")
    with pytest.raises(RuntimeError):
        await c.submit(1)
    assert await c.submit(2) == 2
