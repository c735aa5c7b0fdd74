"""Telnyx through the whole engine: webhooks POSTed over real HTTP to the callback route,
forged ones refused (403, nothing changed), and a batch of 100 calls with duplicated,
reordered, lost and forged webhooks in which every call ends in its true state."""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from nacl.signing import SigningKey

from dialbatch.server import Runtime
from dialbatch.settings import Settings
from dialbatch.store import queue
from dialbatch.store.tables import attempts, calls
from tests.api.conftest import list_all_calls, people, start_batch, wait_for_batch
from tests.conftest import numbers, start_harness
from tests.helpers import api_with_agent, assert_consistent, make_dialed_batch
from tests.providers.telnyx.conftest import API_KEY, CONNECTION_ID, by_number
from tests.providers.telnyx.serve import free_socket, serving, url_of
from tests.providers.telnyx.standin import EXPECTED, Fate, Knobs, TelnyxStandIn
from tests.providers.telnyx.test_webhooks import hook

CALLBACKS = "/v1/providers/telnyx/callbacks"


@pytest.fixture
def telnyx_env(standin: TelnyxStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    """DIALBATCH_TELNYX_* pointing the registry's Telnyx provider at the stand-in."""
    env = {
        "API_KEY": API_KEY,
        "PUBLIC_KEY": standin.public_key,
        "CONNECTION_ID": CONNECTION_ID,
        "BASE_URL": standin.base_url + "/v2",  # type: ignore[attr-defined]
        "AMD_GRACE_S": "0.3",
        "MAX_RETRIES": "0",
    }
    for name, value in env.items():
        monkeypatch.setenv(f"DIALBATCH_TELNYX_{name}", value)


# --- the callback route -----------------------------------------------------------------


@pytest.fixture
async def route(
    make_settings: Callable[..., Settings], telnyx_env: None
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    runtime = Runtime.build(make_settings(), dispatch=False)
    assert "telnyx" in runtime.providers
    async with api_with_agent(runtime, "telnyx") as client:
        yield runtime, client


async def one_live_dial(runtime: Runtime) -> tuple[str, str]:
    batch, [intent] = await make_dialed_batch(runtime.db, 1, provider="telnyx")
    async with runtime.db.write() as conn:
        await queue.record_placed(conn, intent.dial_key, "v3:abc123")
    return batch, intent.dial_key


async def state(runtime: Runtime) -> tuple[str, str, str | None]:
    async with runtime.db.read() as conn:
        row = (
            await conn.execute(
                sa.select(calls.c.status, attempts.c.state, attempts.c.outcome).join(
                    attempts, attempts.c.call_id == calls.c.id
                )
            )
        ).one()
    return row.status, row.state, row.outcome


async def post(
    client: httpx.AsyncClient, stand: TelnyxStandIn, raw: bytes, **sign: Any
) -> httpx.Response:
    return await client.post(CALLBACKS, content=raw, headers=stand.sign(raw, **sign))


async def test_forged_webhooks_are_403_and_change_nothing(
    route: tuple[Runtime, httpx.AsyncClient], standin: TelnyxStandIn
) -> None:
    runtime, client = route
    batch, key = await one_live_dial(runtime)
    from dialbatch.providers.telnyx.events import ClientState

    lie = hook("call.hangup", ClientState(key), hangup_cause="normal_clearing")
    for sign in ({"key": SigningKey.generate()}, {"timestamp": int(time.time()) - 3600}):
        r = await post(client, standin, lie, **sign)
        assert r.status_code == 403, r.text
    r = await client.post(CALLBACKS, content=lie)  # unsigned
    assert r.status_code == 403
    assert await state(runtime) == ("dialing", "dialing", None)
    await assert_consistent(runtime.db, batch)

    # The genuine ones apply, forward-only: a late answer after the end changes nothing.
    answered = hook("call.answered", ClientState(key))
    assert (await post(client, standin, answered)).status_code == 200
    assert await state(runtime) == ("dialing", "answered", None)
    busy = hook("call.hangup", ClientState(key), hangup_cause="user_busy")
    for raw in (busy, busy, answered, lie):
        assert (await post(client, standin, raw)).status_code == 200
    _, attempt_state, outcome = await state(runtime)
    assert (attempt_state, outcome) == ("ended", "busy")
    await assert_consistent(runtime.db, batch)


# --- a whole batch ----------------------------------------------------------------------

MIX = {
    "completed": 40,
    "busy": 12,
    "rejected": 4,
    "no-answer": 14,
    "voicemail": 18,
    "failed": 8,
    "not-found": 4,
}


def fates_for(phones: list[str], seed: int = 4) -> dict[str, Fate]:
    rng = random.Random(seed)
    kinds = [k for k, n in MIX.items() for _ in range(n)]
    rng.shuffle(kinds)
    return {
        phone: Fate(kind, ring_s=rng.uniform(0.5, 4), talk_s=rng.uniform(2, 8))
        for phone, kind in zip(phones, kinds, strict=True)
    }


async def test_a_batch_ends_every_call_in_its_true_state(
    make_settings: Callable[..., Settings], standin: TelnyxStandIn, telnyx_env: None
) -> None:
    phones = numbers(100)
    fates = fates_for(phones)
    standin.fate_of = by_number(fates)
    standin.knobs = Knobs(
        duplicate_rate=0.25, reorder_s=0.05, drop_rate=0.12, forge_rate=0.15, seed=11
    )
    standin.scale = 0.01
    sock = free_socket()
    settings = make_settings(public_url=url_of(sock), reconcile_quiet_s=0.5, connection_attempts=2)
    h = await start_harness(settings)
    try:
        async with serving(h.runtime.app(), sock):
            r = await h.client.post(
                "/v1/api/agents",
                headers=h.headers,
                json={
                    "name": "telnyx agent",
                    "provider": "telnyx",
                    "providerConfig": {"ringTimeoutSeconds": 5, "machineDetection": True},
                    "fromNumbers": ["+12025550199"],
                },
            )
            assert r.status_code == 201, r.text
            r = await start_batch(h, people(phones), agent_id=r.json()["id"])
            assert r.status_code == 200, r.text
            batch_id = r.json()["batchId"]
            await wait_for_batch(h, batch_id, timeout=90)
            await standin.settle()
            listed = await list_all_calls(h, batch_id)
        async with h.runtime.db.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(calls.c.phone_number, attempts.c.outcome, attempts.c.n)
                    .join(attempts, attempts.c.call_id == calls.c.id)
                    .where(calls.c.batch_id == batch_id)
                )
            ).all()
        counts = await assert_consistent_for(h, batch_id)
    finally:
        await h.client.aclose()
        await h.runtime.stop()

    # Every attempt ended as its callee behaved; only failures were dialed again.
    by_phone: dict[str, list[str]] = {}
    for row in rows:
        by_phone.setdefault(row.phone_number, []).append(row.outcome)
    for phone, fate in fates.items():
        expected = EXPECTED[fate.kind]
        tries = 2 if expected == "failed" else 1
        assert by_phone[phone] == [expected] * tries, (phone, fate)
    assert len(standin.calls) == sum(len(v) for v in by_phone.values())  # no double dial
    assert {c["status"] for c in listed} == {"completed", "failed"}
    assert counts == Counter(c["status"] for c in listed)
    # The knobs did bite: duplicates, drops (reconciled) and forgeries (all refused).
    forged = [d for d in standin.deliveries if d.forged]
    assert forged and all(d.status == 403 for d in forged)
    assert all(d.status == 200 for d in standin.deliveries if not d.forged)
    assert any(event_type == "call.hangup" for event_type, _ in standin.dropped)
    assert standin.log_reads  # lost hangups were settled from Telnyx's call-event log
    assert standin.hangup_commands  # machine answers were hung up
    assert any(reordered(standin, pcid) for pcid in standin.calls)
    hangups = Counter(
        d.call_control_id
        for d in standin.deliveries
        if d.event_type == "call.hangup" and not d.forged
    )
    assert any(n > 1 for n in hangups.values())


async def assert_consistent_for(h: Any, batch_id: str) -> dict[str, int]:
    """Counters equal COUNT(*) by status and /status agrees with them."""
    async with h.runtime.db.read() as conn:
        real = dict(
            (
                await conn.execute(
                    sa.select(calls.c.status, sa.func.count())
                    .where(calls.c.batch_id == batch_id)
                    .group_by(calls.c.status)
                )
            ).all()
        )
    r = await h.client.get(f"/v1/api/batch-calls/{batch_id}/status", headers=h.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["completed"] == real.get("completed", 0)
    assert body["failed"] == real.get("failed", 0)
    assert body["active"] == 0 and body["waiting"] == 0
    assert body["total"] == sum(real.values()) == 100
    return real


def reordered(stand: TelnyxStandIn, pcid: str) -> bool:
    """Some webhook of this call arrived after one generated later."""
    seqs = [d.seq for d in stand.deliveries if d.call_control_id == pcid and not d.forged]
    return any(later < earlier for earlier, later in itertools.pairwise(seqs))
