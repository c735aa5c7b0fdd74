"""Cross-process wake-up hints: PostgreSQL LISTEN/NOTIFY.

Only a latency hint: polling stays the correctness path. Sent once per batch event
(created, cancelled) inside that event's transaction, and once per group of outcomes an
API process applies (slots were freed), never once per row: NOTIFY takes a global lock at
commit. On SQLite there is one process, and an in-process event does this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.store._dialect import pg_notify, wakes_other_processes

log = logging.getLogger(__name__)

CHANNEL = "dialbatch_batches"
RECONNECT_S = 1.0


async def notify(conn: AsyncConnection, payload: str) -> None:
    """Wake other processes' dispatchers when `conn`'s transaction commits."""
    await pg_notify(conn, CHANNEL, payload)


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def listen(url: str, on_notify: Callable[[], None], stop: asyncio.Event) -> None:
    """Call `on_notify` for every notification until `stop` is set; reconnect after a
    lost connection (a database restart), calling `on_notify` once on reconnecting, since
    notifications sent meanwhile were lost."""
    if not wakes_other_processes(url):
        return
    while not stop.is_set():
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(_dsn(url))
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, lost=lost: lost.set())
            await conn.add_listener(CHANNEL, lambda *_args: on_notify())
            on_notify()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("listen: %s; retrying in %.0f s", exc, RECONNECT_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RECONNECT_S)
        finally:
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
