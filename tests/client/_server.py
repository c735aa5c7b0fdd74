"""A real uvicorn server in a thread, on a free port of 127.0.0.1, for the blocking client
and the CLI (which cannot use an in-process ASGI transport)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import uvicorn

from dialbatch.bootstrap import Demo, ensure_demo
from dialbatch.server import Runtime
from dialbatch.settings import Settings
from dialbatch.store.engine import Database


@dataclass(frozen=True)
class LiveServer:
    url: str
    demo: Demo

    @property
    def env(self) -> dict[str, str]:
        """The client's environment variables for the demo workspace."""
        return {
            "DIALBATCH_URL": self.url,
            "DIALBATCH_API_KEY": self.demo.api_key,
            "DIALBATCH_WORKSPACE_ID": self.demo.workspace_id,
        }


async def _bootstrap(settings: Settings) -> Demo:
    db = Database(settings.effective_database_url)
    try:
        return await ensure_demo(db, settings)
    finally:
        await db.dispose()


@contextmanager
def live_server(settings: Settings, *, dispatch: bool = True) -> Iterator[LiveServer]:
    """Serve the API (with its dispatcher) until the block ends, then shut down cleanly."""
    demo = asyncio.run(_bootstrap(settings))
    # The app's lifespan starts and stops the runtime.
    app = Runtime.build(settings, dispatch=dispatch).app()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield LiveServer(url=f"http://127.0.0.1:{port}", demo=demo)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        assert not thread.is_alive(), "the test server did not stop"


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    """The API over real HTTP on 127.0.0.1, with a running dispatcher and the demo workspace."""
    with live_server(settings) as live:
        yield live
