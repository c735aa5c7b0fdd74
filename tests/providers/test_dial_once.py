"""The providers' shared memory of their dials: one placement per dial key, whoever asks."""

from __future__ import annotations

import asyncio

import pytest

from dialbatch.providers.dial_once import DialOnce


class Creator:
    def __init__(self, delay_s: float = 0.01, fail: bool = False) -> None:
        self.calls = 0
        self.delay_s = delay_s
        self.fail = fail

    async def __call__(self) -> str:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("refused")
        return f"pcid_{self.calls}"


async def test_concurrent_requests_for_one_key_share_one_placement() -> None:
    dials, create = DialOnce(10), Creator()
    ids = await asyncio.gather(*(dials.place("1:1", create) for _ in range(5)))
    assert ids == ["pcid_1"] * 5 and create.calls == 1
    assert await dials.place("1:1", create) == "pcid_1" and create.calls == 1
    assert dials.known("1:1") == "pcid_1" and dials.pending("1:1") is None


async def test_a_refusal_reaches_every_waiter_and_is_not_remembered() -> None:
    dials, create = DialOnce(10), Creator(fail=True)
    results = await asyncio.gather(
        *(dials.place("1:1", create) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results) and create.calls == 1
    assert dials.known("1:1") is None
    create.fail = False
    assert await dials.place("1:1", create) == "pcid_2"


async def test_a_cancelled_caller_does_not_abort_the_placement() -> None:
    dials, create = DialOnce(10), Creator(delay_s=0.05)
    first = asyncio.create_task(dials.place("1:1", create))
    await asyncio.sleep(0.01)
    assert dials.pending("1:1") is not None
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await dials.place("1:1", create) == "pcid_1" and create.calls == 1


async def test_memory_is_bounded_oldest_first() -> None:
    dials = DialOnce(2)
    for key in ("a", "b", "c"):
        dials.remember(key, f"id_{key}")
    assert [dials.known(k) for k in ("a", "b", "c")] == [None, "id_b", "id_c"]
