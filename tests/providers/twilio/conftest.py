"""A dialbatch process dialing through the Twilio adapter against the local stand-in, both
served over real HTTP on loopback: the SDK talks to the stand-in, the stand-in's signed
callbacks reach dialbatch's callback route at DIALBATCH_PUBLIC_URL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from dialbatch.settings import Settings
from dialbatch.store.tables import attempts, calls
from tests.conftest import Harness, start_harness
from tests.helpers import assert_consistent
from tests.providers.twilio.standin import Faults, Plan, TwilioStandIn, bound_socket, serve

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "stand-in-auth-token-0123456789ab"
AGENT_URL = "wss://agent.example.test/media"
CALLER_ID = "+12025559999"
TEXML_APPLICATION_SID = "1293384261075731499"


@dataclass
class Rig:
    h: Harness
    standin: TwilioStandIn
    public_url: str
    agent_id: str


RigFactory = Callable[..., AbstractAsyncContextManager[Rig]]


@pytest.fixture
def open_rig(make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch) -> RigFactory:
    @asynccontextmanager
    async def open_(
        *,
        plan_for: Callable[[str], Plan] | None = None,
        faults: Faults | None = None,
        agent_config: dict[str, Any] | None = None,
        prefix: str = "",
        signature_header: str = "X-Twilio-Signature",
        signing_key: str | None = None,
        account_sid: str = ACCOUNT_SID,
        dialect: str = "twilio",
        **overrides: Any,
    ) -> AsyncIterator[Rig]:
        standin = TwilioStandIn(
            account_sid,
            AUTH_TOKEN,
            plan_for=plan_for,
            faults=faults,
            prefix=prefix,
            signature_header=signature_header,
            signing_key=signing_key,
            dialect=dialect,
        )
        async with standin.running():
            sock = bound_socket()
            public_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            monkeypatch.setenv("DIALBATCH_TWILIO_ACCOUNT_SID", account_sid)
            monkeypatch.setenv("DIALBATCH_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
            monkeypatch.setenv("DIALBATCH_TWILIO_BASE_URL", standin.base_url)
            if signing_key:
                monkeypatch.setenv("DIALBATCH_TWILIO_SIGNING_KEY", signing_key)
            if dialect != "twilio":
                monkeypatch.setenv("DIALBATCH_TWILIO_DIALECT", dialect)
                monkeypatch.setenv("DIALBATCH_TWILIO_APPLICATION_SID", TEXML_APPLICATION_SID)
                monkeypatch.setenv("DIALBATCH_TWILIO_TELNYX_PUBLIC_KEY", standin.public_key)
            values: dict[str, Any] = {
                "public_url": public_url,
                "reconcile_quiet_s": 0.5,
                "connection_attempts": 1,
            }
            values.update(overrides)
            h = await start_harness(make_settings(**values))
            try:
                async with serve(h.runtime.app(), sock):
                    agent_id = await create_twilio_agent(h, agent_config)
                    yield Rig(h, standin, public_url, agent_id)
            finally:
                await h.client.aclose()
                await h.runtime.stop()

    return open_


async def create_twilio_agent(h: Harness, config: dict[str, Any] | None = None) -> str:
    body = {
        "name": "twilio agent",
        "provider": "twilio",
        "providerConfig": config
        or {"agentUrl": AGENT_URL, "machineDetection": True, "ringTimeoutSeconds": 20},
        "fromNumbers": [CALLER_ID],
    }
    r = await h.client.post("/v1/api/agents", headers=h.headers, json=body)
    assert r.status_code == 201, r.text
    agent_id: str = r.json()["id"]
    return agent_id


async def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition never held")
        await asyncio.sleep(0.02)


async def final_attempts(h: Harness, batch_id: str) -> dict[str, tuple[str, str | None]]:
    """(call status, the last attempt's outcome) by phone number."""
    c, a = calls.c, attempts.c
    async with h.runtime.db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(c.phone_number, c.status, a.outcome)
                .join(attempts, (a.call_id == c.id) & (a.n == c.attempt), isouter=True)
                .where(c.batch_id == batch_id)
            )
        ).all()
    return {r.phone_number: (r.status, r.outcome) for r in rows}


async def exact_counts(h: Harness, batch_id: str) -> dict[str, int]:
    """Counters equal COUNT(*) by status; the workspace's slots equal the calls holding
    one. Returns the counts."""
    real = await assert_consistent(h.runtime.db, batch_id, h.demo.workspace_id)
    return {str(k): int(v) for k, v in real.items()}
