"""Every far-end behaviour the issue names, played by sipp, ends in the outcome (and, when
answered, the duration) a user reads in the batch's results."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from dialbatch.domain.outcomes import Outcome
from dialbatch.providers.base import DialRequest, Live, OutcomeUnknowable, Stage
from dialbatch.providers.sip.adapter import SipProvider
from tests.providers.sip.conftest import Events, StartSipp

_keys = itertools.count(1)


def request(trunk: str, **config: Any) -> DialRequest:
    return DialRequest(
        dial_key=f"job_sip{next(_keys)}:1",
        job_id="job_sip",
        to="+15551230001",
        from_="+15557654321",
        metadata={"first_name": "Ada"},
        agent_id="agent_t",
        agent_config={"trunk": trunk, **config},
    )


async def test_answer_then_callee_hangs_up_is_completed_with_its_duration(
    provider: SipProvider, events: Events, start_sipp: StartSipp
) -> None:
    sipp = await start_sipp("answer_then_callee_bye", talk_ms=2000)
    req = request(sipp.trunk)
    call_id = await provider.start_call(req)
    event = await events.of(req.dial_key)
    assert event.outcome is Outcome.COMPLETED
    assert event.provider_call_id == call_id and event.provider_code == "200"
    assert event.duration_s is not None and 1.0 <= event.duration_s <= 3.0
    assert await sipp.finished() == 0, sipp.errors()
    assert await provider.fetch_status(req.dial_key, call_id) == event
    assert events.stages(req.dial_key) == [Stage.RINGING, Stage.ANSWERED]


async def test_our_hangup_of_an_answered_call_sends_bye_and_completes(
    provider: SipProvider, events: Events, start_sipp: StartSipp
) -> None:
    sipp = await start_sipp("answer_then_caller_bye")
    req = request(sipp.trunk)
    call_id = await provider.start_call(req)
    await asyncio.sleep(1.5)
    assert isinstance(await provider.fetch_status(req.dial_key, call_id), Live)
    await provider.hangup(call_id)
    event = await events.of(req.dial_key)
    assert event.outcome is Outcome.COMPLETED
    assert event.duration_s is not None and 0.5 <= event.duration_s <= 2.5
    assert await sipp.finished() == 0, sipp.errors()  # sipp received our BYE


async def test_max_duration_ends_the_call_with_our_bye(
    provider: SipProvider, events: Events, start_sipp: StartSipp
) -> None:
    sipp = await start_sipp("answer_then_caller_bye")
    req = request(sipp.trunk, maxDurationSeconds=1.5)
    await provider.start_call(req)
    event = await events.of(req.dial_key)
    assert event.outcome is Outcome.COMPLETED
    assert event.detail == "maximum duration reached"
    assert event.duration_s is not None and 0.5 <= event.duration_s <= 2.5
    assert await sipp.finished() == 0, sipp.errors()


async def test_486_is_busy_and_a_repeated_start_call_dials_once(
    provider: SipProvider, events: Events, start_sipp: StartSipp
) -> None:
    sipp = await start_sipp("busy_486")
    req = request(sipp.trunk)
    first = await provider.start_call(req)
    assert await provider.start_call(req) == first  # idempotent on dial_key
    event = await events.of(req.dial_key)
    assert (event.outcome, event.provider_code) == (Outcome.BUSY, "486")
    assert event.duration_s is None
    assert provider.dials == 1
    assert events.stages(req.dial_key) == [Stage.RINGING]
    assert await sipp.finished() == 0, sipp.errors()


async def test_480_is_no_answer(
    provider: SipProvider, events: Events, start_sipp: StartSipp
) -> None:
    sipp = await start_sipp("unavailable_480")
    req = request(sipp.trunk)
    await provider.start_call(req)
    event = await events.of(req.dial_key)
    assert (event.outcome, event.provider_code) == (Outcome.NO_ANSWER, "480")
    assert await sipp.finished() == 0, sipp.errors()


async def test_other_failures_are_failed_with_the_sip_code(
    provider: SipProvider, events: Events, start_sipp: StartSipp
) -> None:
    sipp = await start_sipp("failure_503")
    req = request(sipp.trunk)
    await provider.start_call(req)
    event = await events.of(req.dial_key)
    assert (event.outcome, event.provider_code) == (Outcome.FAILED, "503")
    assert event.detail == "SIP 503 Service Unavailable"
    assert await sipp.finished() == 0, sipp.errors()


async def test_hangup_while_ringing_cancels(
    provider: SipProvider, events: Events, start_sipp: StartSipp
) -> None:
    sipp = await start_sipp("ring_until_cancel")
    req = request(sipp.trunk)
    call_id = await provider.start_call(req)
    await asyncio.sleep(0.5)
    assert await provider.fetch_status(req.dial_key, call_id) == Live(call_id)
    await provider.hangup(call_id)
    event = await events.of(req.dial_key)
    assert (event.outcome, event.provider_code) == (Outcome.CANCELED, "487")
    assert await sipp.finished() == 0, sipp.errors()  # CANCEL, 487, ACK all went as planned


async def test_ring_timeout_cancels_and_is_no_answer(
    provider: SipProvider, events: Events, start_sipp: StartSipp
) -> None:
    sipp = await start_sipp("ring_until_cancel")
    req = request(sipp.trunk, ringTimeoutSeconds=1)
    await provider.start_call(req)
    event = await events.of(req.dial_key)
    assert event.outcome is Outcome.NO_ANSWER
    assert event.detail == "rang 1 s, CANCEL sent"
    assert await sipp.finished() == 0, sipp.errors()


async def test_a_silent_trunk_is_a_failure_not_a_no_answer(
    provider: SipProvider, events: Events
) -> None:
    from tests.providers.sip.conftest import free_udp_port

    req = request(f"127.0.0.1:{free_udp_port()}", ringTimeoutSeconds=1)
    await provider.start_call(req)
    event = await events.of(req.dial_key)
    assert event.outcome is Outcome.FAILED
    assert event.detail == "no response from the SIP trunk"


async def test_a_dial_it_never_saw_is_unknowable(provider: SipProvider) -> None:
    with pytest.raises(OutcomeUnknowable):
        await provider.fetch_status("job_elsewhere:1", None)
