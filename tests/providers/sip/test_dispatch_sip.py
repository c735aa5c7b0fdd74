"""The real engine dials a batch through SIP: three rows against a sipp UAS that answers
every call and hangs up, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from dialbatch.dispatch.dispatcher import DispatchConfig, Dispatcher
from dialbatch.domain.retry import RetryConfig
from dialbatch.providers.base import Provider
from dialbatch.providers.sip.adapter import SipProvider
from dialbatch.store.engine import Database
from dialbatch.store.tables import agents, attempts, calls
from tests.dispatch.test_dispatcher import wait_done
from tests.helpers import AGENT, assert_consistent, make_batch
from tests.providers.sip.conftest import StartSipp, sip_settings

FAST = DispatchConfig(
    poll_interval_s=0.02,
    sweep_interval_s=0.2,
    claim_lease_ms=10_000,
    dial_lease_ms=30_000,
    retry=RetryConfig(connection_attempts=1, backoff_base_ms=5),
)


async def test_a_batch_dialed_through_sip_completes(db: Database, start_sipp: StartSipp) -> None:
    sipp = await start_sipp("answer_then_callee_bye", calls=3, talk_ms=800)
    async with db.write() as conn:
        await conn.execute(
            agents.update()
            .where(agents.c.id == AGENT)
            .values(provider="sip", provider_config={"trunk": sipp.trunk})
        )
    providers: dict[str, Provider] = {}
    dispatcher = Dispatcher(db, providers, FAST)
    sip = SipProvider(dispatcher.on_event, sip_settings(trunk=None))
    providers["sip"] = sip
    task = asyncio.create_task(dispatcher.run())
    try:
        batch = await make_batch(db, 3)
        done = await wait_done(db, batch, timeout=30)
    finally:
        await dispatcher.stop()
        await asyncio.wait_for(task, 10)
        await sip.aclose()
    assert done.status == "completed"
    assert await assert_consistent(db, batch) == {"completed": 3}
    assert await sipp.finished() == 0, sipp.errors()
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(calls).where(calls.c.batch_id == batch))).all()
        dials = await conn.scalar(sa.select(sa.func.count()).select_from(attempts))
    assert dials == 3 and sip.dials == 3  # one dial per row, never more
    for row in rows:
        assert row.provider_call_id and row.provider_call_id.endswith("@dialbatch")
        assert row.duration_s is not None and 0.3 <= row.duration_s <= 2.0
