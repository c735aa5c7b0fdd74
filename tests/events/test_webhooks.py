"""Webhook delivery end to end: every event reaches a receiver exactly once in the end,
signed, through a receiver outage and failures; several workers never send one twice;
where a delivery goes is checked again when it is sent; dead letters are replayed."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import sqlalchemy as sa

from dialbatch.events.signing import webhook_secret
from dialbatch.events.webhooks import WebhookDeliverer
from dialbatch.settings import Settings
from dialbatch.store import outbox, webhooks
from dialbatch.store.engine import Database
from dialbatch.store.tables import outbox as outbox_table
from dialbatch.store.tables import webhook_deliveries
from tests.api.conftest import numbers, open_harness, start_batch
from tests.events._receiver import Receiver
from tests.helpers import WS

WEBHOOKS = "/v1/api/webhooks"
ALL = ["call.started", "call.completed", "call.failed", "batch.started", "batch.completed"]
FAST = {
    "webhooks_allow_private": True,
    "webhook_retry_base_s": 0.05,
    "webhook_retry_max_s": 0.4,
    "webhook_poll_s": 0.05,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def outbox_ids(db: Database, events: list[str]) -> dict[str, dict[str, object]]:
    """webhook-id -> payload of every outbox row an endpoint for `events` gets."""
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(outbox_table.c.id, outbox_table.c.payload).where(
                outbox_table.c.event.in_(events)
            )
        )
        return {f"evt_{r.id}": r.payload for r in rows}


async def pending(db: Database) -> int:
    async with db.read() as conn:
        return int(
            await conn.scalar(
                sa.select(sa.func.count()).where(webhook_deliveries.c.status == "pending")
            )
            or 0
        )


async def test_a_1000_call_batch_reaches_a_flaky_receiver_exactly_once_in_the_end(
    make_settings: Callable[..., Settings],
) -> None:
    receiver = Receiver(port=free_port(), answer=lambda n: 500 if n % 7 == 3 else 200)
    settings = make_settings(**FAST, demo_max_concurrent_calls=50, demo_calls_per_second=500)
    async with open_harness(settings) as h:
        r = await h.client.post(
            WEBHOOKS, headers=h.headers, json={"url": receiver.url, "events": ALL}
        )
        assert r.status_code == 201, r.text
        hook, receiver.secret = r.json()["id"], r.json()["secret"]
        # The receiver is down while the batch starts, then comes up answering 500 to some.
        r = await start_batch(h, numbers(1000))
        assert r.status_code == 200, r.text
        batch_id = r.json()["batchId"]
        await asyncio.sleep(1.5)
        receiver.start()
        try:
            db = h.runtime.db
            deadline = time.monotonic() + 240
            while True:
                batch = await h.client.get(f"/v1/api/batch-calls/{batch_id}", headers=h.headers)
                done = batch.json()["isComplete"]
                expected = await outbox_ids(db, ALL)
                if done and not await pending(db) and set(receiver.delivered()) >= set(expected):
                    break
                assert time.monotonic() < deadline, (len(receiver.delivered()), len(expected))
                await asyncio.sleep(0.2)
        finally:
            receiver.stop()

        got = receiver.snapshot()
        assert set(receiver.delivered()) == set(expected)
        assert len(expected) > 2000  # each call's start and end, and the batch's
        assert all(n == 1 for n in receiver.delivered().values())  # no 2xx twice
        assert all(x.signature_ok for x in got)
        for x in got:
            assert x.body["data"] == expected[x.webhook_id]
            assert x.body["type"] in ALL and x.webhook_id == f"evt_{x.body['id']}"
        assert any(x.answered == 500 for x in got)

        # The log shows the failed attempts with their status code and latency.
        r = await h.client.get(
            f"{WEBHOOKS}/{hook}/deliveries", headers=h.headers, params={"limit": 100}
        )
        deliveries = r.json()["deliveries"]
        assert r.json()["pagination"]["total"] == len(expected)
        assert all(d["status"] == "delivered" for d in deliveries)
        logged = [a for d in deliveries for a in d["attemptLog"]]
        assert all(a["latencyMs"] is not None or a["error"] for a in logged)
        assert {a["statusCode"] for a in logged} <= {200, 500, None}


async def test_three_workers_never_send_one_event_twice(db: Database) -> None:
    receiver = Receiver()
    receiver.start()
    # The receiver stays up: a send that times out (a starved CI host, the receiver in this
    # process) would be retried, as it must be, and read as a duplicate; so the timeout is
    # far beyond any answer this receiver gives.
    settings = Settings(**FAST, database_url=db.url, webhook_timeout_s=60)  # type: ignore[arg-type]
    key = b"k" * 32
    try:
        async with db.write() as conn:
            endpoint = await webhooks.create_endpoint(
                conn, WS, url=receiver.url, events=["call.completed"], description=""
            )
        receiver.secret = webhook_secret(key, WS, endpoint.id, 1)
        dbs = [Database(db.url) for _ in range(3)]
        workers = [WebhookDeliverer(d, settings, key, owner=f"w{i}") for i, d in enumerate(dbs)]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        for chunk in range(10):
            async with db.write() as conn:
                for i in range(60):
                    payload = {"batchId": "batch_x", "jobId": f"call_x_{chunk * 60 + i}"}
                    await outbox.emit(conn, WS, "call.completed", payload)
        deadline = time.monotonic() + 120
        while len(receiver.snapshot()) < 600 or await pending(db):
            assert time.monotonic() < deadline, len(receiver.snapshot())
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # any duplicate would arrive now
        for w in workers:
            await w.stop()
        await asyncio.gather(*tasks)
        for d in dbs:
            await d.dispose()
    finally:
        receiver.stop()
    got = receiver.snapshot()
    async with db.read() as conn:
        retried = (
            await conn.execute(
                sa.select(
                    webhook_deliveries.c.outbox_id,
                    webhook_deliveries.c.attempts,
                    webhook_deliveries.c.last_error,
                ).where(webhook_deliveries.c.attempts > 1)
            )
        ).all()
    assert len(got) == 600 and len({x.webhook_id for x in got}) == 600, retried[:10]
    assert all(x.signature_ok for x in got)
    async with db.read() as conn:
        owners = (
            await conn.execute(
                sa.select(webhook_deliveries.c.status, sa.func.count()).group_by(
                    webhook_deliveries.c.status
                )
            )
        ).all()
    assert dict(owners) == {"delivered": 600}


async def test_the_address_is_checked_again_when_a_delivery_is_sent(db: Database) -> None:
    """An endpoint that reached the table pointing at 127.0.0.1 (the setting was on, or
    its DNS changed) is not sent to once private addresses are refused."""
    receiver = Receiver()
    receiver.start()
    strict = Settings(  # type: ignore[arg-type]
        **{**FAST, "webhooks_allow_private": False}, database_url=db.url
    )
    try:
        async with db.write() as conn:
            await webhooks.create_endpoint(
                conn, WS, url=receiver.url, events=["call.failed"], description=""
            )
        async with db.write() as conn:
            await outbox.emit(conn, WS, "call.failed", {"batchId": "batch_x", "jobId": "j"})
        worker = WebhookDeliverer(db, strict, b"k" * 32)
        task = asyncio.create_task(worker.run())
        deadline = time.monotonic() + 30
        while True:
            async with db.read() as conn:
                row = (await conn.execute(sa.select(webhook_deliveries))).first()
            if row is not None and row.attempts >= 2:
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await worker.stop()
        await task
    finally:
        receiver.stop()
    assert receiver.snapshot() == []
    assert row.last_status_code is None and "loopback" in row.last_error


async def test_a_dead_letter_is_listed_and_replayed(
    make_settings: Callable[..., Settings],
) -> None:
    receiver = Receiver(answer=lambda n: 500)
    receiver.start()
    settings = make_settings(**{**FAST, "webhook_retry_window_s": 0.3})
    try:
        async with open_harness(settings) as h:
            r = await h.client.post(
                WEBHOOKS, headers=h.headers, json={"url": receiver.url, "events": ["batch.started"]}
            )
            hook = r.json()["id"]
            await start_batch(h, numbers(2))
            url = f"{WEBHOOKS}/{hook}/deliveries"
            dead: list[dict[str, object]] = []
            deadline = time.monotonic() + 30
            while not dead:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
                r = await h.client.get(url, headers=h.headers, params={"status": "dead"})
                dead = r.json()["deliveries"]
            letter = dead[0]
            assert letter["attempts"] >= 2 and letter["lastStatusCode"] == 500
            assert [a["statusCode"] for a in letter["attemptLog"]] == [500] * letter["attempts"]

            receiver.answer = lambda n: 200
            r = await h.client.post(f"{url}/{letter['id']}/replay", headers=h.headers)
            assert r.status_code == 200 and r.json()["status"] == "pending"
            deadline = time.monotonic() + 30
            while True:
                r = await h.client.get(f"{url}", headers=h.headers, params={"status": "delivered"})
                if r.json()["deliveries"]:
                    break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            delivered = r.json()["deliveries"][0]
            assert (
                delivered["id"] == letter["id"] and delivered["attemptLog"][-1]["statusCode"] == 200
            )
            missing = await h.client.post(f"{url}/999999/replay", headers=h.headers)
            assert missing.status_code == 404
    finally:
        receiver.stop()
    assert len(receiver.delivered()) == 1
