"""A small Server-Sent-Events client for the tests, and the outbox rows to check against."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa

from dialbatch.settings import to_async_url
from dialbatch.store.engine import Database
from dialbatch.store.tables import outbox


@dataclass(frozen=True)
class Message:
    id: int | None
    event: str  # "heartbeat" for the comment line
    data: Any


def _parse(block: list[str]) -> Message | None:
    if block and all(line.startswith(":") for line in block):
        return Message(None, "heartbeat", block[0][1:].strip())
    fields: dict[str, str] = {}
    for line in block:
        name, _, value = line.partition(":")
        fields[name] = value[1:] if value.startswith(" ") else value
    if "event" not in fields:
        return None
    event_id = int(fields["id"]) if "id" in fields else None
    return Message(event_id, fields["event"], json.loads(fields.get("data", "null")))


def read_stream(
    base_url: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    *,
    until: Callable[[Message], bool],
    params: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> list[Message]:
    """Messages of one connection, up to and including the first for which `until` holds;
    then the connection is dropped (as a client that goes away)."""
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    with (
        httpx.Client(base_url=base_url, timeout=httpx.Timeout(timeout)) as client,
        client.stream("GET", path, headers=dict(headers or {}), params=params) as r,
    ):
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        block: list[str] = []
        for line in r.iter_lines():
            if time.monotonic() > deadline:
                raise AssertionError(f"the stream did not deliver in time: {out[-5:]}")
            if line:
                block.append(line)
                continue
            message = _parse(block)
            block = []
            if message is None:
                continue
            out.append(message)
            if until(message):
                return out
    raise AssertionError(f"the stream ended early: {out[-5:]}")


def outbox_rows(database_url: str, batch_id: str | None = None) -> list[tuple[int, str]]:
    """(id, event) of the outbox, of one batch or all, in id order."""
    import asyncio

    async def read() -> list[tuple[int, str]]:
        db = Database(to_async_url(database_url))
        try:
            async with db.read() as conn:
                stmt = sa.select(outbox.c.id, outbox.c.event).order_by(outbox.c.id)
                if batch_id is not None:
                    stmt = stmt.where(outbox.c.batch_id == batch_id)
                return [(int(i), e) for i, e in (await conn.execute(stmt)).all()]
        finally:
            await db.dispose()

    return asyncio.run(read())


def events_of(messages: list[Message]) -> list[tuple[int, str]]:
    return [(m.id, m.event) for m in messages if m.id is not None and m.event != "snapshot"]
