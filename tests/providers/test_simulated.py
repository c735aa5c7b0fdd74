"""The simulated carrier: reproducible, realistic, idempotent, and asynchronous like a
real one."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.providers.base import DialRequest, Live, OutcomeUnknowable, ProviderError
from dialbatch.providers.simulated import SimulatedConfigError, SimulatedProvider, validate_config


def request(key: str, **config: object) -> DialRequest:
    return DialRequest(
        dial_key=key,
        job_id="call_x_0",
        to="+12025550101",
        from_=None,
        metadata={"first_name": "Ada"},
        agent_id="agent_demo",
        agent_config=dict(config),
    )


async def run_all(keys: list[str], **config: object) -> dict[str, CallEvent]:
    got: dict[str, CallEvent] = {}
    done = asyncio.Event()

    async def sink(event: CallEvent) -> None:
        got[event.dial_key or ""] = event
        if len(got) == len(keys):
            done.set()

    sim = SimulatedProvider(sink, time_scale=0.0005, seed=1)
    for k in keys:
        await sim.start_call(request(k, **config))
    await asyncio.wait_for(done.wait(), 10)
    await sim.aclose()
    return got


async def test_outcomes_are_reproducible_from_the_seed() -> None:
    keys = [f"call_a_{i}:1" for i in range(50)]
    first = await run_all(keys)
    second = await run_all(keys)
    assert {k: e.outcome for k, e in first.items()} == {k: e.outcome for k, e in second.items()}


async def test_outcomes_follow_the_agents_distribution() -> None:
    keys = [f"call_b_{i}:1" for i in range(400)]
    got = await run_all(keys, outcomes={"completed": 3, "busy": 1})
    counts = Counter(e.outcome for e in got.values())
    assert set(counts) == {Outcome.COMPLETED, Outcome.BUSY}
    assert 0.65 < counts[Outcome.COMPLETED] / 400 < 0.85


async def test_completed_calls_carry_duration_transcript_and_call_id() -> None:
    got = await run_all(["call_c_0:1"], outcomes={"completed": 1}, meanTalkSeconds=60)
    event = got["call_c_0:1"]
    assert event.duration_s is not None and event.duration_s >= 3
    assert event.result is not None and "Ada" in str(event.result["transcript"])
    assert event.result["callId"] == event.provider_call_id


async def test_start_is_idempotent_on_the_dial_key() -> None:
    async def sink(_: CallEvent) -> None:
        return None

    sim = SimulatedProvider(sink, time_scale=1.0)
    a = await sim.start_call(request("call_d_0:1"))
    b = await sim.start_call(request("call_d_0:1"))
    assert a == b and sim.dials == 1
    assert isinstance(await sim.fetch_status("call_d_0:1", a), Live)
    await sim.aclose()


async def test_hangup_ends_a_ringing_call_as_canceled() -> None:
    events: list[CallEvent] = []

    async def sink(event: CallEvent) -> None:
        events.append(event)

    sim = SimulatedProvider(sink, time_scale=1.0)
    pcid = await sim.start_call(request("call_e_0:1"))
    await sim.hangup(pcid)
    await asyncio.sleep(0.01)
    assert [e.outcome for e in events] == [Outcome.CANCELED]
    status = await sim.fetch_status("call_e_0:1", pcid)
    assert isinstance(status, CallEvent) and status.outcome is Outcome.CANCELED
    await sim.aclose()


async def test_unknown_dials_cannot_be_vouched_for_and_refusals_raise() -> None:
    async def sink(_: CallEvent) -> None:
        return None

    sim = SimulatedProvider(sink)
    with pytest.raises(OutcomeUnknowable):
        await sim.fetch_status("never-dialed:1", None)
    with pytest.raises(ProviderError):
        await sim.start_call(request("call_f_0:1", startErrorRate=1.0))
    await sim.aclose()


@pytest.mark.parametrize(
    "config",
    [{"outcomes": {"answered": 1}}, {"outcomes": {"busy": -1}}, {"outcomes": {}}, {"seed": "x"}],
)
def test_bad_agent_configs_are_refused(config: dict[str, object]) -> None:
    with pytest.raises(SimulatedConfigError):
        validate_config(config)


async def test_a_dial_outlives_the_process_that_placed_it() -> None:
    """After a restart the carrier has no record, but a dial is drawn from its seed: given
    its start time, another process finds it, live (and then delivers its end) or ended,
    with the same outcome the first would have reported."""
    from dialbatch.domain.ids import now_ms
    from dialbatch.providers.base import DialLookup, DialNotFound

    config = {"outcomes": {"busy": 1}, "seed": 4}
    first = SimulatedProvider(_ignore, time_scale=0.05, seed=1)
    started = now_ms()
    pcid = await first.start_call(request("call_x_0:1", **config))
    await first.aclose()  # the process stops: its carrier forgets

    got: list[CallEvent] = []

    async def sink(event: CallEvent) -> None:
        got.append(event)

    second = SimulatedProvider(sink, time_scale=0.05, seed=1)
    with pytest.raises(OutcomeUnknowable):
        await second.fetch_status("call_x_0:1", pcid)
    lookup = DialLookup("call_x_0:1", "+12025550101", None, started, dict(config), pcid)
    assert await second.find_dial(lookup) == Live(pcid)  # adopted: its end is delivered
    while not got:
        await asyncio.sleep(0.01)
    assert (got[0].outcome, got[0].provider_call_id) == (Outcome.BUSY, pcid)
    # Long over by now for a process asking later: the final event, with its end time.
    third = SimulatedProvider(_ignore, time_scale=0.05, seed=1)
    ended = await third.find_dial(DialLookup("call_x_0:1", "+1", None, started - 60_000, config))
    assert isinstance(ended, CallEvent) and ended.outcome is Outcome.BUSY
    assert ended.ended_at is not None and ended.ended_at < now_ms()
    # A dial the carrier refused was never placed: provably absent.
    refused = DialLookup("call_x_0:1", "+1", None, started, {"startErrorRate": 1.0})
    with pytest.raises(DialNotFound):
        await third.find_dial(refused)
    await second.aclose()


async def _ignore(event: CallEvent) -> None:
    return None


def test_the_greeting_uses_whatever_name_column_the_csv_has() -> None:
    from dialbatch.providers.simulated import contact_name

    assert contact_name({"first_name": "Ada", "name": "Ada Lovelace"}) == "Ada"
    assert contact_name({"Name": "Grace Hopper", "email": "g@example.com"}) == "Grace Hopper"
    assert contact_name({"First Name": "Alan"}) == "Alan"
    assert contact_name({"FIRSTNAME": " Edsger "}) == "Edsger"
    assert contact_name({"customer-name": "Barbara"}) == "Barbara"
    assert contact_name({"first_name": "", "Name": "Fallback"}) == "Fallback"
    assert contact_name({"email": "x@example.com"}) is None


async def test_a_script_sets_each_dial_to_a_number_and_the_ledger_records_them() -> None:
    script = {"+12025550101": ["busy", "refused", "completed"]}
    validate_config({"script": script})
    for bad in ({"+1": []}, {"+1": ["answered"]}, ["busy"], {"+1": "busy"}):
        with pytest.raises(SimulatedConfigError):
            validate_config({"script": bad})
    got = await run_all(["call_s_0:1", "call_s_0:3", "call_s_0:4"], script=script)
    # The n-th dial (n from the dial key) takes the n-th step; the last one repeats.
    assert [got[k].outcome for k in ("call_s_0:1", "call_s_0:3", "call_s_0:4")] == [
        Outcome.BUSY,
        Outcome.COMPLETED,
        Outcome.COMPLETED,
    ]

    async def sink(_: CallEvent) -> None:
        return None

    sim = SimulatedProvider(sink, time_scale=0.0005)
    with pytest.raises(ProviderError):
        await sim.start_call(request("call_s_1:2", script=script))
    await sim.start_call(request("call_s_1:1", script=script))
    ledger = sim.ledger()
    assert [(d["dialKey"], d["outcome"]) for d in ledger] == [
        ("call_s_1:2", "refused"),
        ("call_s_1:1", "busy"),
    ]
    await sim.aclose()
