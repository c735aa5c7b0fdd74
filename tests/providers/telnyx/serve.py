"""Serving an ASGI app over real HTTP on 127.0.0.1 (a free port) inside a test: Telnyx's
stand-in must POST webhooks to dialbatch, and dialbatch's SDK must reach the stand-in."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn


def free_socket() -> socket.socket:
    """A listening-ready socket on 127.0.0.1 with a port chosen by the OS: its URL can be
    known before the app that will serve it exists."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


@asynccontextmanager
async def serving(app: Any, sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Serve `app` (lifespan off: the test starts and stops what the app uses) and yield
    its base URL."""
    sock = sock or free_socket()
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # raises the startup error
        await asyncio.sleep(0.01)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        await task
        sock.close()
