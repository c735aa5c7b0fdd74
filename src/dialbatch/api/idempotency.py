"""The `Idempotency-Key` header of the creating endpoints (extension).

A request is identified by a SHA-256 over its path and its content: for a multipart upload
the form fields (sorted) and the file's bytes, read from the spooled file in chunks; for a
JSON body the bytes as received, hashed while they stream in. Not the multipart framing:
a client re-sending the same file and form picks a new boundary each time.

Within 24 h the same key answers what the first request answered (same batchId, same
status code, header `Idempotent-Replayed: true`); the same key with a different request
answers 422. While the first request is still being handled, a second waits for it (up to
WAIT_S) and then answers 409. A request that fails (4xx) does not keep the key.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, BinaryIO

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from dialbatch.api.errors import ApiError, BadRequest, Conflict
from dialbatch.store import idempotency
from dialbatch.store.engine import Database

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
WAIT_S = 30.0
POLL_S = 0.2
_HASH_CHUNK = 1 << 16

# Completes the key's record inside the transaction that creates the batch.
Complete = Callable[[AsyncConnection, dict[str, Any]], Awaitable[None]]


class KeyReused(ApiError):
    status_code = 422
    error = "Idempotency key reused"


def read_key(request: Request) -> str | None:
    """The request's key, or None; a 400 for one that is empty, too long or not printable."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > MAX_KEY_CHARS or not key.isprintable() or not key.isascii():
        raise BadRequest(
            f"{HEADER} must be 1 to {MAX_KEY_CHARS} printable ASCII characters, e.g. a UUID"
        )
    return key


def form_hash(path: str, fields: Mapping[str, str], file: BinaryIO | None) -> str:
    """The identity of a multipart request (blocking: the file is read; run in a thread)."""
    h = hashlib.sha256(f"form\0{path}\0".encode())
    for name in sorted(fields):
        h.update(f"{name}\0{fields[name]}\0".encode())
    if file is not None:
        h.update(b"file\0")
        file.seek(0)
        while chunk := file.read(_HASH_CHUNK):
            h.update(chunk)
        file.seek(0)
    return h.hexdigest()


def body_hasher(path: str) -> Any:
    """A running SHA-256 for a body read as it streams in (`.update(chunk)`)."""
    return hashlib.sha256(f"body\0{path}\0".encode())


async def run_once(
    db: Database,
    workspace: str,
    key: str | None,
    request_hash: str,
    create: Callable[[Complete], Awaitable[dict[str, Any]]],
    status_code: int = 200,
) -> dict[str, Any] | JSONResponse:
    """Run `create` once per key: it must call the `Complete` it is given with its response
    body inside the transaction that creates what it creates."""

    async def nothing(_conn: AsyncConnection, _body: dict[str, Any]) -> None:
        return None

    if key is None:
        return await create(nothing)
    held = await _take(db, workspace, key, request_hash)
    if isinstance(held, idempotency.Replay):
        return JSONResponse(
            held.response, status_code=held.status_code, headers={"Idempotent-Replayed": "true"}
        )

    async def complete(conn: AsyncConnection, body: dict[str, Any]) -> None:
        await idempotency.complete(conn, workspace, key, status_code, body)

    try:
        return await create(complete)
    except BaseException:
        async with db.write() as conn:
            await idempotency.release(conn, workspace, key, held)
        raise


async def _take(
    db: Database, workspace: str, key: str, request_hash: str
) -> idempotency.Claimed | idempotency.Replay:
    deadline = time.monotonic() + WAIT_S
    while True:
        async with db.write() as conn:
            found = await idempotency.claim(conn, workspace, key, request_hash)
        if isinstance(found, idempotency.Claimed | idempotency.Replay):
            return found
        if isinstance(found, idempotency.Mismatch):
            raise KeyReused(
                f"{HEADER} {key!r} was already used within 24 h for a different request "
                "(another file, form or body); use a new key for a new batch"
            )
        if time.monotonic() >= deadline:
            raise Conflict(
                f"A request with {HEADER} {key!r} is still in progress; retry in a moment "
                "to receive its response"
            )
        await asyncio.sleep(POLL_S)
