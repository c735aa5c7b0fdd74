"""The carrier process's behaviour (in-process here) and its adapter: idempotent placing,
fencing of keys looked up and not found, status, signed callbacks, the ledger."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.providers.base import (
    CallbackRequest,
    CallProgress,
    DialNotFound,
    DialRequest,
    InvalidSignature,
    Live,
    ProviderError,
    ProviderEvent,
    Stage,
)
from dialbatch.providers.carrier import (
    CarrierConfigError,
    CarrierSettings,
    build,
    signing,
    validate_config,
)
from dialbatch.providers.carrier.adapter import CarrierProvider
from dialbatch.providers.simulated import SimulatedProvider
from dialbatch.settings import Settings
from dialbatch.testing.carrier import Carrier, CarrierConfig, create_app, max_overlap

SECRET = "s3cret"
QUICK = {"outcomes": {"completed": 1}, "ringSeconds": [1, 1], "meanTalkSeconds": 3}
LONG = {"outcomes": {"completed": 1}, "ringSeconds": [1000, 1000]}


def dial(key: str, config: dict[str, Any] | None = None, ws: str = "ws1") -> DialRequest:
    return DialRequest(
        dial_key=key,
        job_id=key.split(":")[0],
        to="+12025550101",
        from_=None,
        metadata={"first_name": "Ada"},
        agent_id="agent_1",
        agent_config=dict(config if config is not None else QUICK),
        workspace_id=ws,
    )


@dataclass
class Receiver:
    """The API's side of callbacks: verifies with the adapter, records what it applied."""

    adapter: CarrierProvider | None = None
    events: list[ProviderEvent] = field(default_factory=list)
    fail_first: int = 0
    seen: int = 0

    async def endpoint(self, request: Request) -> Response:
        self.seen += 1
        if self.seen <= self.fail_first:
            return Response(status_code=503)
        assert self.adapter is not None
        body = await request.body()
        inbound = CallbackRequest(
            method="POST",
            url=str(request.url),
            path="",
            headers={k.lower(): v for k, v in request.headers.items()},
            query={},
            body=body,
        )
        try:
            reply = await self.adapter.parse_callback(inbound)
        except InvalidSignature:
            return Response(status_code=403)
        self.events.extend(reply.events)
        return Response(status_code=200)

    def finals(self) -> list[CallEvent]:
        return [e for e in self.events if isinstance(e, CallEvent)]


@dataclass
class Rig:
    carrier: Carrier
    adapter: CarrierProvider
    receiver: Receiver
    http: httpx.AsyncClient


@pytest.fixture
async def make_rig(tmp_path: Path) -> AsyncIterator[Any]:
    rigs: list[Rig] = []

    async def make(**config: Any) -> Rig:
        receiver = Receiver(fail_first=config.pop("fail_first", 0))
        api = Starlette(routes=[Route("/cb", receiver.endpoint, methods=["POST"])])
        cfg = CarrierConfig(callback_url="http://api/cb", secret=SECRET, time_scale=0.01, **config)
        carrier = Carrier(cfg, transport=httpx.ASGITransport(app=api))
        await carrier.start()
        transport = httpx.ASGITransport(app=create_app(carrier))
        adapter = CarrierProvider("http://carrier", SECRET, transport=transport)
        receiver.adapter = adapter
        http = httpx.AsyncClient(transport=transport, base_url="http://carrier")
        rig = Rig(carrier, adapter, receiver, http)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        await rig.http.aclose()
        await rig.adapter.aclose()
        await rig.carrier.aclose()


async def wait_for(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_placing_is_idempotent_on_dial_key(make_rig: Any) -> None:
    rig = await make_rig()
    first = await rig.adapter.start_call(dial("call_a_0:1", LONG))
    again = await rig.adapter.start_call(dial("call_a_0:1", LONG))
    assert first == again
    ledger = (await rig.http.get("/ledger")).json()
    assert [(d["dial_key"], d["requests"]) for d in ledger] == [("call_a_0:1", 2)]
    assert ledger[0]["to"] == "+12025550101"  # the number it rang, for tests of the gate
    stats = (await rig.http.get("/stats")).json()
    assert stats["dials"] == 1 and stats["duplicate_requests"] == 1


async def test_outcomes_are_drawn_as_the_simulated_provider_draws_them(make_rig: Any) -> None:
    rig = await make_rig()
    config = {"seed": 3, "ringSeconds": [0, 0], "meanTalkSeconds": 1}
    got: dict[str, CallEvent] = {}

    async def sink(event: Any) -> None:
        got[event.dial_key] = event

    sim = SimulatedProvider(sink, time_scale=0.001)
    keys = [f"call_b_{i}:1" for i in range(40)]
    for key in keys:
        await sim.start_call(dial(key, config))
        await rig.adapter.start_call(dial(key, config))
    await wait_for(lambda: len(got) == len(keys) and len(rig.receiver.finals()) == len(keys))
    await sim.aclose()
    carried = {e.dial_key: e for e in rig.receiver.finals()}
    for key in keys:
        assert carried[key].outcome == got[key].outcome
        assert carried[key].duration_s == got[key].duration_s
    assert len({e.outcome for e in carried.values()}) > 1


async def test_a_key_looked_up_and_not_found_is_fenced(make_rig: Any) -> None:
    rig = await make_rig()
    with pytest.raises(DialNotFound):
        await rig.adapter.fetch_status("call_c_0:1", None)
    # A POST with that key still in flight (its worker died) must not ring a phone now.
    with pytest.raises(ProviderError):
        await rig.adapter.start_call(dial("call_c_0:1"))
    assert (await rig.http.get("/ledger")).json() == []
    stats = (await rig.http.get("/stats")).json()
    assert stats["fenced"] == 1 and stats["tombstones"] == 1


async def test_fetch_status_follows_a_call_to_its_end(make_rig: Any) -> None:
    rig = await make_rig()
    pcid = await rig.adapter.start_call(dial("call_d_0:1"))
    assert await rig.adapter.fetch_status("call_d_0:1", None) == Live(pcid)
    await wait_for(lambda: rig.receiver.finals())
    status = await rig.adapter.fetch_status("call_d_0:1", pcid)
    assert isinstance(status, CallEvent)
    assert status.outcome is Outcome.COMPLETED
    assert status.provider_call_id == pcid and status.dial_key == "call_d_0:1"
    assert status.result is not None and "transcript" in status.result


async def test_callbacks_report_progress_then_the_outcome(make_rig: Any) -> None:
    rig = await make_rig()
    pcid = await rig.adapter.start_call(dial("call_e_0:1"))
    await wait_for(lambda: rig.receiver.finals())
    stages = [e.stage for e in rig.receiver.events if isinstance(e, CallProgress)]
    assert stages == [Stage.RINGING, Stage.ANSWERED]
    (final,) = rig.receiver.finals()
    assert final.outcome is Outcome.COMPLETED and final.provider_call_id == pcid
    assert final.duration_s is not None and final.ended_at is not None


async def test_failed_deliveries_are_retried(make_rig: Any) -> None:
    rig = await make_rig(fail_first=3)
    await rig.adapter.start_call(dial("call_f_0:1"))
    await wait_for(lambda: rig.receiver.finals())
    stats = (await rig.http.get("/stats")).json()
    assert stats["callbacks"]["failed_tries"] == 3


async def test_dropped_and_duplicated_callbacks(make_rig: Any) -> None:
    rig = await make_rig(duplicate_rate=1.0)
    await rig.adapter.start_call(dial("call_g_0:1"))
    await wait_for(lambda: len(rig.receiver.finals()) == 2)
    lossy = await make_rig(drop_rate=1.0)
    await lossy.adapter.start_call(dial("call_g_1:1"))
    await wait_for(lambda: lossy.carrier.dials["call_g_1:1"].ended_at is not None)
    assert lossy.receiver.events == []
    # The outcome is still there for whoever asks.
    assert isinstance(await lossy.adapter.fetch_status("call_g_1:1", None), CallEvent)


async def test_hangup_cancels_a_live_call(make_rig: Any) -> None:
    rig = await make_rig()
    pcid = await rig.adapter.start_call(dial("call_h_0:1", LONG))
    await rig.adapter.hangup(pcid)
    status = await rig.adapter.fetch_status("call_h_0:1", pcid)
    assert isinstance(status, CallEvent) and status.outcome is Outcome.CANCELED
    await wait_for(lambda: rig.receiver.finals())
    assert rig.receiver.finals()[0].outcome is Outcome.CANCELED


async def test_refused_dials_are_provider_errors_and_ring_nothing(make_rig: Any) -> None:
    rig = await make_rig()
    with pytest.raises(ProviderError):
        await rig.adapter.start_call(dial("call_i_0:1", {"startErrorRate": 1}))
    assert (await rig.http.get("/stats")).json()["refused"] == 1
    assert rig.carrier.dials == {}


class LoseFirstResponse(httpx.AsyncBaseTransport):
    """Delivers the first POST, then loses its response: the dial did reach the carrier."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and not self.lost:
            self.lost += 1
            raise httpx.ReadError("connection reset", request=request)
        return response


async def test_a_post_whose_answer_is_lost_is_sent_again_not_redialed(make_rig: Any) -> None:
    rig = await make_rig()
    flaky = CarrierProvider(
        "http://carrier",
        SECRET,
        transport=LoseFirstResponse(httpx.ASGITransport(app=create_app(rig.carrier))),
    )
    try:
        pcid = await flaky.start_call(dial("call_j_0:1", LONG))
    finally:
        await flaky.aclose()
    assert rig.carrier.dials["call_j_0:1"].id == pcid
    assert rig.carrier.dials["call_j_0:1"].requests == 2


class Unreachable(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)


async def test_an_unreachable_carrier_is_a_provider_error() -> None:
    adapter = CarrierProvider("http://carrier", SECRET, transport=Unreachable())
    try:
        with pytest.raises(ProviderError):
            await adapter.start_call(dial("call_k_0:1"))
        with pytest.raises(ProviderError):
            await adapter.fetch_status("call_k_0:1", None)
    finally:
        await adapter.aclose()


async def test_callback_signatures_are_checked() -> None:
    adapter = CarrierProvider("http://carrier", SECRET, transport=Unreachable())
    body = json.dumps({"type": "call.progress", "id": "x", "dial_key": "k", "stage": "ringing"})

    def inbound(header: str | None) -> CallbackRequest:
        headers = {signing.HEADER.lower(): header} if header else {}
        return CallbackRequest("POST", "http://api/cb", "", headers, {}, body.encode())

    try:
        reply = await adapter.parse_callback(inbound(signing.sign(SECRET, body.encode())))
        assert reply.events == [CallProgress(Stage.RINGING, "k", "x", None)]
        stale = signing.sign(SECRET, body.encode(), at=int(time.time()) - 301)
        for header in (None, "t=1,v1=00", signing.sign("other", body.encode()), stale):
            with pytest.raises(InvalidSignature):
                await adapter.parse_callback(inbound(header))
    finally:
        await adapter.aclose()


async def test_the_ledger_survives_a_restart_with_a_state_file(
    make_rig: Any, tmp_path: Path
) -> None:
    state = tmp_path / "carrier.db"
    rig = await make_rig(state_path=state)
    pcid = await rig.adapter.start_call(dial("call_l_0:1", LONG))
    with pytest.raises(DialNotFound):
        await rig.adapter.fetch_status("call_l_1:1", None)
    await rig.carrier.aclose()
    again = Carrier(CarrierConfig(state_path=state, time_scale=0.01))
    await again.start()
    try:
        restored = again.lookup_key("call_l_0:1")
        assert restored is not None and restored.id == pcid and restored.ended_at is None
        assert "call_l_1:1" in again.tombstones
    finally:
        await again.aclose()
    rig.carrier = Carrier(CarrierConfig())  # the fixture closes this one instead
    await rig.carrier.start()


def test_max_overlap_counts_an_end_before_a_start_at_the_same_instant() -> None:
    @dataclass
    class D:
        workspace_id: str
        received_at: int
        ended_at: int | None

    dials = [D("a", 0, 10), D("a", 10, 20), D("a", 5, 15), D("b", 0, 1), D("b", 0, 1)]
    assert max_overlap(dials) == {"a": 2, "b": 2}


def test_build_needs_a_url_and_a_secret() -> None:
    settings = Settings()

    async def sink(_: Any) -> None:
        return None

    assert build(settings, sink, CarrierSettings(url=None)) is None
    with pytest.raises(CarrierConfigError):
        build(settings, sink, CarrierSettings(url="http://127.0.0.1:1", secret=None))


def test_agent_config_is_checked_like_the_simulated_one() -> None:
    assert validate_config({"outcomes": {"busy": 1}}) == {"outcomes": {"busy": 1}}
    with pytest.raises(ValueError):
        validate_config({"outcomes": {"ringing": 1}})
