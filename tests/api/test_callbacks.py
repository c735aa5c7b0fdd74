"""The provider callback route: the adapter's signature check runs first, a forged callback
changes nothing (403), and events are applied forward-only in whatever process receives them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.providers.base import (
    CallbackReply,
    CallbackRequest,
    CallProgress,
    InvalidSignature,
    Stage,
)
from dialbatch.server import Runtime
from dialbatch.settings import Settings
from dialbatch.store.tables import attempts, calls
from tests.api.conftest import assert_error_shape
from tests.helpers import api_with_agent, assert_consistent, make_dialed_batch


class FakeCallbacks:
    """Accepts a callback only with the header `x-sig: good`; the body lists the events."""

    name = "fake"

    def __init__(self) -> None:
        self.seen: list[CallbackRequest] = []

    async def parse_callback(self, request: CallbackRequest) -> CallbackReply:
        self.seen.append(request)
        if request.header("x-sig") != "good":
            raise InvalidSignature("bad signature")
        events: list[Any] = []
        for item in json.loads(request.body):
            if item["type"] == "progress":
                events.append(CallProgress(Stage(item["stage"]), dial_key=item["dialKey"]))
            else:
                events.append(
                    CallEvent(
                        outcome=Outcome(item["outcome"]),
                        dial_key=item["dialKey"],
                        duration_s=item.get("duration"),
                    )
                )
        return CallbackReply(events=events, body=b"<ok/>", media_type="application/xml")

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def app_with_fake(settings: Settings) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    runtime = Runtime.build(settings, dispatch=False)
    runtime.providers["fake"] = FakeCallbacks()  # type: ignore[assignment]
    async with api_with_agent(runtime, "simulated") as client:
        yield runtime, client


async def _one_live_dial(runtime: Runtime) -> tuple[str, str]:
    """A batch of one call, dialed (as a worker would) but not ended."""
    batch, [intent] = await make_dialed_batch(runtime.db, 1, provider="fake")
    return batch, intent.dial_key


async def _state(runtime: Runtime) -> tuple[str, str]:
    async with runtime.db.read() as conn:
        row = (
            await conn.execute(
                sa.select(calls.c.status, attempts.c.state).join(
                    attempts, attempts.c.call_id == calls.c.id
                )
            )
        ).one()
    return row.status, row.state


async def _post(
    client: httpx.AsyncClient, events: list[dict[str, Any]], sig: str | None = "good"
) -> httpx.Response:
    headers = {"x-sig": sig} if sig else {}
    return await client.post(
        "/v1/providers/fake/callbacks/status?x=1", content=json.dumps(events), headers=headers
    )


async def test_events_are_applied_forward_only_and_the_reply_is_the_adapters(
    app_with_fake: tuple[Runtime, httpx.AsyncClient],
) -> None:
    runtime, client = app_with_fake
    batch, key = await _one_live_dial(runtime)
    answered = {"type": "progress", "stage": Stage.ANSWERED.value, "dialKey": key}
    ringing = {"type": "progress", "stage": Stage.RINGING.value, "dialKey": key}
    end = {"type": "end", "outcome": "completed", "dialKey": key, "duration": 9.5}
    r = await _post(client, [answered, ringing])  # reordered: ringing arrives late
    assert r.status_code == 200 and r.content == b"<ok/>"
    assert r.headers["content-type"].startswith("application/xml")
    assert await _state(runtime) == ("dialing", "answered")
    for _ in range(2):  # a duplicate of the final callback is harmless
        assert (await _post(client, [end])).status_code == 200
    assert await _state(runtime) == ("completed", "ended")
    await assert_consistent(runtime.db, batch)
    adapter = runtime.providers["fake"]
    seen = adapter.seen[0]  # type: ignore[attr-defined]
    # what signatures are computed over: the public URL, with the query, and the sub-path
    assert seen.url == "http://127.0.0.1:8000/v1/providers/fake/callbacks/status?x=1"
    assert (seen.path, seen.method, dict(seen.query)) == ("status", "POST", {"x": "1"})


@pytest.mark.parametrize("sig", [None, "forged"])
async def test_a_forged_callback_is_403_and_changes_nothing(
    app_with_fake: tuple[Runtime, httpx.AsyncClient], sig: str | None
) -> None:
    runtime, client = app_with_fake
    batch, key = await _one_live_dial(runtime)
    r = await _post(client, [{"type": "end", "outcome": "completed", "dialKey": key}], sig)
    assert_error_shape(r, 403)
    assert await _state(runtime) == ("dialing", "dialing")
    await assert_consistent(runtime.db, batch)


async def test_callbacks_for_an_unknown_provider_are_404(
    app_with_fake: tuple[Runtime, httpx.AsyncClient],
) -> None:
    _, client = app_with_fake
    r = await client.post("/v1/providers/nope/callbacks", content=b"{}")
    assert_error_shape(r, 404)
    # the simulated provider reports in-process; it takes no callbacks
    assert (await client.post("/v1/providers/simulated/callbacks")).status_code == 404


async def test_an_oversized_callback_is_413_before_the_adapter_sees_it(
    app_with_fake: tuple[Runtime, httpx.AsyncClient],
) -> None:
    runtime, client = app_with_fake
    r = await client.post(
        "/v1/providers/fake/callbacks", content=b"x" * (65 * 1024), headers={"x-sig": "good"}
    )
    assert r.status_code == 413
    assert runtime.providers["fake"].seen == []  # type: ignore[attr-defined]
