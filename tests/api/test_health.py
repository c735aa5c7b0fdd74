"""/readyz lists the workers seen in the last minute, so that a batch that stays queued
with no worker alive can be told apart from one that is merely waiting its turn."""

from __future__ import annotations

from tests.api.conftest import Harness


async def test_a_dispatching_process_shows_as_a_worker(harness: Harness) -> None:
    r = await harness.client.get("/readyz")
    assert r.status_code == 200, r.text
    workers = r.json()["workers"]
    assert [w["id"] for w in workers] == [harness.runtime.dispatcher.owner]
    assert workers[0]["pid"] > 0 and workers[0]["seenAt"] > 0


async def test_an_api_only_process_lists_no_worker(api: Harness) -> None:
    r = await api.client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["workers"] == []
