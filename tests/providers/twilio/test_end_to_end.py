"""Calls placed through the Twilio adapter against the local stand-in, end to end."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from dialbatch.store.tables import attempts, calls
from tests.api.conftest import people, start_batch, status_of, wait_for_batch
from tests.conftest import Harness, numbers
from tests.providers.twilio.conftest import (
    ACCOUNT_SID,
    AGENT_URL,
    AUTH_TOKEN,
    CALLER_ID,
    Rig,
    RigFactory,
    exact_counts,
    final_attempts,
    wait_until,
)
from tests.providers.twilio.standin import EXPECTED_OUTCOME, Faults, mixed_plans


async def test_a_small_batch_ends_as_the_provider_says(open_rig: RigFactory) -> None:
    async with open_rig(plan_for=mixed_plans(seed=3)) as rig:
        h = rig.h
        phones = numbers(20)
        r = await start_batch(h, people(phones), agent_id=rig.agent_id)
        assert r.status_code == 200, r.text
        batch_id = r.json()["batchId"]
        await wait_for_batch(h, batch_id, timeout=30)
        await rig.standin.settle()
        truth = rig.standin.truth()
        assert set(truth) == set(phones)
        ended = await final_attempts(h, batch_id)
        for phone, outcome in truth.items():
            status, recorded = ended[phone]
            assert recorded == EXPECTED_OUTCOME[outcome], (phone, outcome, ended[phone])
            assert status == ("completed" if outcome == "completed" else "failed")
        assert rig.standin.callback_errors == []
        await exact_counts(h, batch_id)


async def live_call(rig: Rig, stage: str) -> tuple[str, str, str]:
    """Start a one-call batch and wait until its attempt reaches `stage`; returns the batch
    id, the phone number and the attempt's dial key."""
    r = await start_batch(rig.h, people(numbers(1)), agent_id=rig.agent_id)
    assert r.status_code == 200, r.text
    batch_id = r.json()["batchId"]
    found: list[str] = []

    async def reached() -> bool:
        async with rig.h.runtime.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(attempts.c.dial_key, attempts.c.state, attempts.c.provider_call_id)
                    .join(calls, calls.c.id == attempts.c.call_id)
                    .where(calls.c.batch_id == batch_id)
                )
            ).first()
        if row is not None and row.state == stage and row.provider_call_id:
            found.append(row.dial_key)
            return True
        return False

    await wait_until(reached, timeout=20)
    return batch_id, numbers(1)[0], found[0]


async def assert_nothing_changed(
    h: Harness, batch_id: str, phone: str, before: dict[str, Any], counts: dict[str, int]
) -> None:
    """Forged callbacks left the ringing call, its counters and the batch's progress as
    they were."""
    assert await exact_counts(h, batch_id) == counts == {"dialing": 1}
    after = await status_of(h, batch_id)
    keys = ("waiting", "active", "completed", "failed")
    assert {k: after[k] for k in keys} == {k: before[k] for k in keys}
    assert (await final_attempts(h, batch_id))[phone] == ("dialing", None)


async def hang_up_while_ringing(h: Harness, batch_id: str, phone: str, call: Any) -> None:
    """Cancel with hangupActive=true: the provider is asked to cancel the ringing call (the
    stand-in's `call`), and it ends canceled."""
    r = await h.client.delete(
        f"/v1/api/batch-calls/{batch_id}", headers=h.headers, params={"hangupActive": "true"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["hungUpCalls"] == 1
    await wait_for_batch(h, batch_id, timeout=20)
    assert call.updates == ["canceled"]
    assert (await final_attempts(h, batch_id))[phone] == ("failed", "canceled")
    await exact_counts(h, batch_id)


async def test_a_forged_callback_gets_403_and_changes_nothing(open_rig: RigFactory) -> None:
    ringing_long = mixed_plans(weights={"no-answer": 1}, ring_s=(60, 60))
    async with open_rig(plan_for=ringing_long) as rig:
        h = rig.h
        batch_id, phone, key = await live_call(rig, "ringing")
        [call] = rig.standin.by_number(phone)
        before = await status_of(h, batch_id)
        counts = await exact_counts(h, batch_id)
        url = f"{rig.public_url}/v1/providers/twilio/callbacks/status?{urlencode({'dk': key})}"
        lie = {
            "AccountSid": ACCOUNT_SID,
            "CallSid": call.sid,
            "CallStatus": "completed",
            "CallDuration": "30",
            "AnsweredBy": "human",
        }
        forged = {
            "wrong key": {
                "X-Twilio-Signature": RequestValidator("guess").compute_signature(url, lie)
            },
            "no signature": {},
            "other url": {
                "X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(
                    url.replace("%3A1", "%3A2"), lie
                )
            },
        }
        async with httpx.AsyncClient() as client:
            for name, headers in forged.items():
                r = await client.post(url, data=lie, headers=headers)
                assert r.status_code == 403, (name, r.text)
                assert r.json()["error"], r.text
        await assert_nothing_changed(h, batch_id, phone, before, counts)
        await hang_up_while_ringing(h, batch_id, phone, call)


async def test_hanging_up_an_answered_call_ends_it(open_rig: RigFactory) -> None:
    talking_long = mixed_plans(weights={"completed": 1}, ring_s=(0.02, 0.02), talk_s=(60, 60))
    async with open_rig(plan_for=talking_long) as rig:
        h = rig.h
        batch_id, phone, _ = await live_call(rig, "answered")
        [call] = rig.standin.by_number(phone)
        r = await h.client.delete(
            f"/v1/api/batch-calls/{batch_id}", headers=h.headers, params={"hangupActive": "true"}
        )
        assert r.status_code == 200, r.text
        await wait_for_batch(h, batch_id, timeout=20)
        # `canceled` is ignored for an answered call, so the adapter hangs up instead.
        assert call.updates == ["canceled", "completed"]
        assert call.status == "completed"
        assert (await final_attempts(h, batch_id))[phone] == ("completed", "completed")
        await exact_counts(h, batch_id)


async def test_the_stream_twiml_and_call_options_reach_the_provider(
    open_rig: RigFactory,
) -> None:
    config = {
        "agentUrl": AGENT_URL,
        "machineDetection": True,
        "ringTimeoutSeconds": 25,
        "maxDurationSeconds": 900,
    }
    async with open_rig(plan_for=mixed_plans(weights={"busy": 1}), agent_config=config) as rig:
        r = await start_batch(rig.h, people(numbers(1)), agent_id=rig.agent_id)
        batch_id = r.json()["batchId"]
        await wait_for_batch(rig.h, batch_id, timeout=20)
        [call] = rig.standin.calls.values()
        sent = call.params
        assert sent["From"] == CALLER_ID and sent["To"] == numbers(1)[0]
        assert (sent["Timeout"], sent["TimeLimit"]) == ("25", "900")
        assert sent["MachineDetection"] == "Enable"
        assert call.events == ("initiated", "ringing", "answered", "completed")
        assert sent["StatusCallback"].startswith(
            f"{rig.public_url}/v1/providers/twilio/callbacks/status?dk=call_"
        )
        assert f'<Stream url="{AGENT_URL}">' in sent["Twiml"]
        job_id = f"call_{batch_id.removeprefix('batch_')}_0"
        assert f'<Parameter name="jobId" value="{job_id}" />' in sent["Twiml"]
        assert '<Parameter name="first_name" value="First0" />' in sent["Twiml"]


async def test_signalwire_through_the_same_adapter(open_rig: RigFactory) -> None:
    """SignalWire's Compatibility API: the same REST paths under /api/laml on the space's
    host, a project id for the account, callbacks signed with the project's signing key
    under X-SignalWire-Signature."""
    async with open_rig(
        plan_for=mixed_plans(seed=5),
        faults=Faults(duplicate=0.2, reorder=0.2, drop=0.1),
        prefix="/api/laml",
        signature_header="X-SignalWire-Signature",
        signing_key="signalwire-signing-key",
        account_sid="6f1c3b5e-2a4d-4e8f-9b0a-1c2d3e4f5a6b",
    ) as rig:
        assert rig.standin.base_url.endswith("/api/laml")
        phones = numbers(12)
        r = await start_batch(rig.h, people(phones), agent_id=rig.agent_id)
        batch_id = r.json()["batchId"]
        await wait_for_batch(rig.h, batch_id, timeout=30)
        await rig.standin.settle()
        ended = await final_attempts(rig.h, batch_id)
        for phone, outcome in rig.standin.truth().items():
            expected = "completed" if outcome == "completed" else "failed"
            assert ended[phone] == (expected, EXPECTED_OUTCOME[outcome])
        assert len(rig.standin.calls) == len(phones)
        assert rig.standin.callback_errors == []
        await exact_counts(rig.h, batch_id)
