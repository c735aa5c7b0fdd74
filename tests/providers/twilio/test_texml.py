"""Telnyx TeXML through the Twilio adapter (`DIALBATCH_TWILIO_DIALECT=telnyx-texml`), end to
end against the stand-in speaking TeXML: its paths, Bearer auth, JSON create body, reply
and error shapes, and Ed25519-signed callbacks."""

from __future__ import annotations

import base64
import time
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from nacl.signing import SigningKey
from pydantic import ValidationError

from dialbatch.providers.twilio.config import TELNYX_TEXML_API, TwilioSettings
from dialbatch.providers.twilio.statuses import rfc2822_ms
from dialbatch.providers.twilio.texml import rewrite_reply, rewrite_request
from tests.api.conftest import people, start_batch, status_of, wait_for_batch
from tests.conftest import numbers
from tests.providers.twilio.conftest import (
    AGENT_URL,
    AUTH_TOKEN,
    CALLER_ID,
    TEXML_APPLICATION_SID,
    Rig,
    RigFactory,
    exact_counts,
    final_attempts,
)
from tests.providers.twilio.standin import EXPECTED_OUTCOME, Faults, mixed_plans
from tests.providers.twilio.test_end_to_end import (
    assert_nothing_changed,
    hang_up_while_ringing,
    live_call,
)

TELNYX_ACCOUNT = "f5586561-8ff0-4291-a51b-c7dfe4139ff9"


def open_texml(open_rig: RigFactory, **options: Any) -> AbstractAsyncContextManager[Rig]:
    return open_rig(dialect="telnyx-texml", account_sid=TELNYX_ACCOUNT, **options)


def signed(raw: bytes, key: SigningKey, stamp: int | None = None) -> dict[str, str]:
    when = str(int(time.time()) if stamp is None else stamp)
    signature = key.sign(when.encode() + b"|" + raw).signature
    return {
        "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
        "telnyx-timestamp": when,
        "content-type": "application/x-www-form-urlencoded",
    }


async def test_a_batch_through_texml_ends_as_telnyx_says(open_rig: RigFactory) -> None:
    async with open_texml(
        open_rig,
        plan_for=mixed_plans(seed=11),
        faults=Faults(duplicate=0.2, reorder=0.2, drop=0.1, forge=0.3),
    ) as rig:
        assert rig.standin.texml and rig.standin.base_url.startswith("http://127.0.0.1:")
        phones = numbers(12)
        r = await start_batch(rig.h, people(phones), agent_id=rig.agent_id)
        assert r.status_code == 200, r.text
        batch_id = r.json()["batchId"]
        await wait_for_batch(rig.h, batch_id, timeout=30)
        await rig.standin.settle()
        truth = rig.standin.truth()
        assert set(truth) == set(phones)
        assert len(rig.standin.calls) == len(phones)  # nobody rung twice
        ended = await final_attempts(rig.h, batch_id)
        for phone, outcome in truth.items():
            expected = "completed" if outcome == "completed" else "failed"
            assert ended[phone] == (expected, EXPECTED_OUTCOME[outcome]), (phone, outcome)
        assert {c.sid[:3] for c in rig.standin.calls.values()} == {"v3:"}
        assert rig.standin.callback_errors == []
        assert rig.standin.stats["forged"] > 0
        assert set(rig.standin.forged_replies) == {403}
        await exact_counts(rig.h, batch_id)


async def test_forged_texml_callbacks_get_403_and_hang_up_cancels(open_rig: RigFactory) -> None:
    ringing_long = mixed_plans(weights={"no-answer": 1}, ring_s=(60, 60))
    async with open_texml(open_rig, plan_for=ringing_long) as rig:
        h = rig.h
        batch_id, phone, key = await live_call(rig, "ringing")
        [call] = rig.standin.by_number(phone)
        before = await status_of(h, batch_id)
        counts = await exact_counts(h, batch_id)
        url = f"{rig.public_url}/v1/providers/twilio/callbacks/status?{urlencode({'dk': key})}"
        lie = {
            "AccountSid": TELNYX_ACCOUNT,
            "CallSid": call.sid,
            "CallStatus": "completed",
            "CallDuration": "30",
            "AnsweredBy": "human",
        }
        raw = urlencode(lie).encode()
        other = urlencode({**lie, "CallSid": "v3:another-call"}).encode()
        genuine = rig.standin.ed25519
        forged: dict[str, tuple[bytes, dict[str, str]]] = {
            "wrong key": (raw, signed(raw, SigningKey.generate())),
            "no signature": (raw, {"content-type": "application/x-www-form-urlencoded"}),
            "tampered body": (raw, signed(raw.replace(b"30", b"31"), genuine)),
            "stale": (raw, signed(raw, genuine, stamp=int(time.time()) - 3600)),
            "twilio-style": (raw, {"X-Twilio-Signature": "c2lnbmF0dXJl"}),
            # Genuinely signed, but for another call: the unsigned dial key cannot carry it.
            "another call's body": (other, signed(other, genuine)),
        }
        async with httpx.AsyncClient() as client:
            for name, (body, headers) in forged.items():
                r = await client.post(url, content=body, headers=headers)
                assert r.status_code == 403, (name, r.text)
        await assert_nothing_changed(h, batch_id, phone, before, counts)
        await hang_up_while_ringing(h, batch_id, phone, call)


async def test_hanging_up_an_answered_texml_call_ends_it(open_rig: RigFactory) -> None:
    talking_long = mixed_plans(weights={"completed": 1}, ring_s=(0.02, 0.02), talk_s=(60, 60))
    async with open_texml(open_rig, plan_for=talking_long) as rig:
        batch_id, phone, _ = await live_call(rig, "answered")
        [call] = rig.standin.by_number(phone)
        r = await rig.h.client.delete(
            f"/v1/api/batch-calls/{batch_id}",
            headers=rig.h.headers,
            params={"hangupActive": "true"},
        )
        assert r.status_code == 200, r.text
        await wait_for_batch(rig.h, batch_id, timeout=20)
        assert call.updates == ["canceled", "completed"]
        assert (await final_attempts(rig.h, batch_id))[phone] == ("completed", "completed")
        await exact_counts(rig.h, batch_id)


async def test_texml_call_options_reach_telnyx_within_its_limits(open_rig: RigFactory) -> None:
    config = {
        "agentUrl": AGENT_URL,
        "machineDetection": True,
        "ringTimeoutSeconds": 300,  # Twilio takes it; TeXML's ceiling is 120
        "maxDurationSeconds": 10,  # TeXML's floor is 30
    }
    plans = mixed_plans(weights={"machine": 1})
    async with open_texml(open_rig, plan_for=plans, agent_config=config) as rig:
        r = await start_batch(rig.h, people(numbers(1)), agent_id=rig.agent_id)
        batch_id = r.json()["batchId"]
        await wait_for_batch(rig.h, batch_id, timeout=20)
        [call] = rig.standin.calls.values()
        sent = call.params
        assert sent["ApplicationSid"] == TEXML_APPLICATION_SID
        assert sent["From"] == CALLER_ID and sent["To"] == numbers(1)[0]
        assert (sent["Timeout"], sent["TimeLimit"]) == ("120", "30")
        assert sent["MachineDetection"] == "Enable"
        assert sent["StatusCallbackEvent"] == "initiated ringing answered completed"
        assert call.events == ("initiated", "ringing", "answered", "completed")
        assert sent["StatusCallback"].startswith(
            f"{rig.public_url}/v1/providers/twilio/callbacks/status?dk=call_"
        )
        assert f'<Stream url="{AGENT_URL}">' in sent["Twiml"]
        # TeXML's `AnsweredBy=machine` is a machine.
        assert (await final_attempts(rig.h, batch_id))[numbers(1)[0]] == ("failed", "voicemail")


def test_texml_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BASE_URL", "APPLICATION_SID", "TELNYX_PUBLIC_KEY", "SIGNING_KEY"):
        monkeypatch.delenv(f"DIALBATCH_TWILIO_{name}", raising=False)
    monkeypatch.setenv("DIALBATCH_TWILIO_DIALECT", "telnyx-texml")
    monkeypatch.setenv("DIALBATCH_TWILIO_ACCOUNT_SID", TELNYX_ACCOUNT)
    monkeypatch.setenv("DIALBATCH_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    with pytest.raises(ValidationError, match="APPLICATION_SID"):
        TwilioSettings()
    monkeypatch.setenv("DIALBATCH_TWILIO_APPLICATION_SID", TEXML_APPLICATION_SID)
    monkeypatch.setenv("DIALBATCH_TWILIO_TELNYX_PUBLIC_KEY", "a2V5")
    settings = TwilioSettings()
    assert settings.texml and settings.base_url == TELNYX_TEXML_API
    assert TwilioSettings(dialect="twilio").base_url == "https://api.twilio.com"


def test_texml_wire_shapes() -> None:
    base = f"{TELNYX_TEXML_API}/2010-04-01/Accounts/{TELNYX_ACCOUNT}/Calls"
    sent, creating = rewrite_request(
        "POST",
        f"{base}.json",
        {"To": "+1", "StatusCallbackEvent": ["ringing", "completed"], "Timeout": "20"},
        {"Authorization": "Basic x", "Accept": "application/json"},
        "KEY",
    )
    assert creating
    assert sent.url == f"https://api.telnyx.com/v2/texml/Accounts/{TELNYX_ACCOUNT}/Calls"
    assert sent.headers == {
        "Accept": "application/json",
        "Authorization": "Bearer KEY",
        "Content-Type": "application/json",
    }
    assert sent.data == '{"To": "+1", "StatusCallbackEvent": "ringing completed", "Timeout": 20}'
    sent, creating = rewrite_request(
        "POST", f"{base}/v3:abc.json", {"Status": "canceled"}, None, "KEY"
    )
    assert (
        not creating and sent.url.endswith("/Calls/v3:abc") and sent.data == {"Status": "canceled"}
    )
    with pytest.raises(ValueError):
        rewrite_request("GET", f"{TELNYX_TEXML_API}/2010-04-01/Accounts.json", None, None, "K")
    assert '"sid": "v3:x"' in rewrite_reply(200, '{"call_sid": "v3:x"}', created=True)
    error = rewrite_reply(
        404, '{"errors": [{"code": "20404", "title": "Not found"}]}', created=False
    )
    assert error == '{"code": 20404, "message": "Not found", "more_info": null, "status": 404}'
    assert rfc2822_ms("2024-01-15T10:30:00Z") == 1705314600000
