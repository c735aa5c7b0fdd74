"""Every provider's final busy / no-answer / voicemail reads as docs/retries.md says.

A user reads a call's `error` to tell a number that rang out from a hard failure. Whatever
provider reported the outcome, the error of a final `busy`, `no-answer` or `voicemail` call
starts with the words documented in docs/retries.md, and the provider's own code follows in
parentheses: `No answer (SIP 480 Temporarily Unavailable)`.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.domain.retry import AttemptHistory, CallbackPolicy, decide
from dialbatch.providers.base import DialRequest
from dialbatch.providers.carrier.adapter import _ended
from dialbatch.providers.simulated import _CODES, SimulatedProvider
from dialbatch.providers.sip import outcome_map
from dialbatch.providers.telnyx import events as telnyx
from dialbatch.providers.twilio import statuses

UNREACHED = (Outcome.BUSY, Outcome.NO_ANSWER, Outcome.VOICEMAIL)
RETRIES_DOC = Path(__file__).resolve().parents[2] / "docs" / "retries.md"


def documented_words() -> dict[Outcome, str]:
    """The table of docs/retries.md: outcome -> its "Error when final" words."""
    words: dict[Outcome, str] = {}
    for line in RETRIES_DOC.read_text().splitlines():
        row = re.match(r"\|\s*`([a-z-]+)`\s*\|.*\|\s*`([^`]+)`[^|]*\|\s*$", line)
        if row and row[1] in {o.value for o in UNREACHED}:
            words[Outcome(row[1])] = row[2]
    assert set(words) == set(UNREACHED), "docs/retries.md's table lost a row"
    return words


WORDS = documented_words()


def assert_reads_as_documented(event: CallEvent, where: str) -> None:
    assert event.outcome in UNREACHED
    words = WORDS[event.outcome]
    once = decide(event.outcome, AttemptHistory(0, 1, 1), CallbackPolicy(), detail=event.detail)
    policy = CallbackPolicy(enabled=True, max_attempts=3)
    thrice = decide(event.outcome, AttemptHistory(0, 3, 3), policy, detail=event.detail)
    for decision in (once, thrice):
        assert decision.final, where
        assert decision.error is not None and decision.error.startswith(words), (
            where,
            decision.error,
        )
    assert once.error is not None and thrice.error is not None
    assert thrice.error == f"{once.error} - unable to connect after 3 attempts"
    if event.detail:  # the provider's words are kept, beside ours
        assert once.error == f"{words} ({event.detail})", where


def test_the_acceptance_examples_read_as_the_issue_asks() -> None:
    busy = outcome_map.for_failure(486, "Busy Here", heard_from_peer=True)
    no_answer = outcome_map.for_failure(480, "Temporarily Unavailable", heard_from_peer=True)
    errors = [
        decide(f.outcome, AttemptHistory(0, 1, 1), CallbackPolicy(), detail=f.detail).error
        for f in (no_answer, busy)
    ]
    assert errors == [
        "No answer (SIP 480 Temporarily Unavailable)",
        "Number busy (SIP 486 Busy Here)",
    ]


def test_a_failure_still_leads_with_the_providers_reason() -> None:
    failed = outcome_map.for_failure(503, "Service Unavailable", heard_from_peer=True)
    d = decide(failed.outcome, AttemptHistory(3, 0, 3), CallbackPolicy(), detail=failed.detail)
    assert d.error == "SIP 503 Service Unavailable - unable to connect after 3 attempts"
    plain = decide(Outcome.FAILED, AttemptHistory(3, 0, 3), CallbackPolicy())
    assert plain.error == "Call failed - unable to connect after 3 attempts"


def test_sip_every_final_response() -> None:
    seen = set()
    for code in range(300, 700):
        for heard in (True, False):
            final = outcome_map.for_failure(code, "Reason", heard_from_peer=heard)
            if final.outcome in UNREACHED:
                seen.add(final.outcome)
                event = CallEvent(
                    outcome=final.outcome, provider_code=final.code, detail=final.detail
                )
                assert_reads_as_documented(event, f"SIP {code} heard={heard}")
    timeout = outcome_map.for_ring_timeout(30, heard_from_peer=True)
    assert_reads_as_documented(
        CallEvent(outcome=timeout.outcome, detail=timeout.detail), "SIP ring timeout"
    )
    assert seen == {Outcome.BUSY, Outcome.NO_ANSWER}  # plain SIP has no machine detection


@pytest.mark.parametrize("provider", ["Twilio", "Telnyx TeXML"])
def test_twilio_and_texml_every_status(provider: str) -> None:
    seen = set()
    answers = [None, "human", *sorted(statuses.MACHINE)]
    for status in statuses.FINAL:
        for answered_by in answers:
            for sip in (None, "486", "480"):
                event = statuses.from_callback(
                    {
                        "CallStatus": status,
                        "CallSid": "CA1",
                        **({"AnsweredBy": answered_by} if answered_by else {}),
                        **({"SipResponseCode": sip} if sip else {}),
                    },
                    "call_x_0:1",
                    provider=provider,
                )
                assert isinstance(event, CallEvent)
                if event.outcome in UNREACHED:
                    seen.add(event.outcome)
                    assert event.detail and event.detail.startswith(provider)
                    assert_reads_as_documented(event, f"{provider} {status} {answered_by} {sip}")
    assert seen == set(UNREACHED)
    busy = statuses.translate("busy", dial_key=None, call_sid="CA1", sip_code="486")
    assert isinstance(busy, CallEvent)
    d = decide(busy.outcome, AttemptHistory(0, 1, 1), CallbackPolicy(), detail=busy.detail)
    assert d.error == "Number busy (Twilio status busy, SIP 486)"


def _hook(event_type: str, **payload: object) -> telnyx.Webhook:
    state = telnyx.ClientState("call_x_0:1", amd=True)
    return telnyx.Webhook(
        event_id="e1",
        event_type=event_type,
        occurred_at_ms=1_000,
        payload={"call_control_id": "v3:1", "client_state": state.encode(), **payload},
    )


def test_telnyx_every_hangup_cause_and_machine_result() -> None:
    seen = set()
    state = telnyx.ClientState("call_x_0:1", amd=True)
    causes = [*telnyx.HANGUP_CAUSES, "unspecified", None]
    for cause in causes:
        for sip in [None, *telnyx.SIP_CODES]:
            for machine in (False, True):
                hook = _hook(telnyx.HANGUP, hangup_cause=cause, sip_hangup_cause=sip)
                event = telnyx.hangup_event(hook, state, machine=machine)
                if event.outcome in UNREACHED:
                    seen.add(event.outcome)
                    assert event.detail and "Telnyx" in event.detail
                    assert_reads_as_documented(event, f"Telnyx {cause} {sip} machine={machine}")
    for event_type in telnyx.MACHINE_EVENTS:
        for result in sorted(telnyx.MACHINE_RESULTS):
            event = telnyx.machine_event(_hook(event_type, result=result), state)
            assert_reads_as_documented(event, f"Telnyx {event_type} {result}")
    assert seen == set(UNREACHED)
    busy = telnyx.hangup_event(_hook(telnyx.HANGUP, hangup_cause="user_busy"), state)
    d = decide(busy.outcome, AttemptHistory(0, 1, 1), CallbackPolicy(), detail=busy.detail)
    assert d.error == "Number busy (Telnyx hangup_cause user_busy, SIP n/a)"


async def test_simulated_provider_every_outcome() -> None:
    got: list[CallEvent] = []

    async def sink(event: CallEvent) -> None:
        got.append(event)

    sim = SimulatedProvider(sink, time_scale=0.0001, seed=3)
    for outcome in UNREACHED:
        await sim.start_call(
            DialRequest(
                dial_key=f"call_s_0:{outcome.value}",
                job_id="call_s_0",
                to="+12025550101",
                from_=None,
                metadata={},
                agent_id="agent_demo",
                agent_config={"outcomes": {outcome.value: 1}},
            )
        )
    for _ in range(200):
        if len(got) == len(UNREACHED):
            break
        await asyncio.sleep(0.01)
    await sim.aclose()
    assert {e.outcome for e in got} == set(UNREACHED)
    for event in got:
        assert_reads_as_documented(event, f"simulated {event.outcome}")
    busy = next(e for e in got if e.outcome is Outcome.BUSY)
    assert busy.detail == "SIP 486 Busy Here"


def test_carrier_every_outcome() -> None:
    for outcome in UNREACHED:
        event = _ended({"outcome": outcome.value, "id": "car_1", "code": _CODES[outcome]})
        assert_reads_as_documented(event, f"carrier {outcome}")
