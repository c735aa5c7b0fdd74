"""A real browser against a real server: Debian's Chromium driven by Playwright, and
`dialbatch serve` in its own process on a free port of 127.0.0.1.

Chromium comes from the Debian package `chromium` (never from `playwright install`, which
downloads a browser build): installed here when missing and we are root; if it still cannot be
had the browser tests skip, or fail under CI=true.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._chromium import CHROMIUM_ARGS, chromium_or_skip

API_KEY = "web-test-key-0001"
WORKSPACE = "ws_demo"
# Simulated calls last a tenth of their simulated length: ring 0.2-1.2 s, talk ~4.5 s, so a
# dozen calls finish in seconds while a page can still see them running.
TIME_SCALE = "0.1"
START_TIMEOUT_S = 180


@pytest.fixture(scope="session")
def chromium_path() -> str:
    return chromium_or_skip()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """Headless Chromium, one per test module; each test opens its own context.

    Not one per session: while Playwright's sync API runs, its event loop counts as running
    in this thread, and the async tests of a later module could not start theirs.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - a dev install has it
        if os.environ.get("CI") == "true":
            pytest.fail("playwright is not installed (pip install -e '.[dev]')")
        pytest.skip("playwright is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A `dialbatch serve` process and what a client needs to talk to it."""

    url: str
    workspace_id: str
    api_key: str
    data_dir: Path
    log: Path
    proc: subprocess.Popen[bytes] = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key, "x-workspace-id": self.workspace_id}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=30)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`dialbatch serve` (API + dispatcher + simulated provider) on SQLite in a temporary
    folder, one per test module: a start imports every provider's SDK, which takes a minute
    on a loaded 2-core machine."""
    port = _free_port()
    folder = tmp_path_factory.mktemp("served")
    data_dir = folder / "data"
    log = folder / "server.log"
    # Only the settings chosen here: none of the caller's DIALBATCH_* (a database URL, a
    # demo workspace id) may leak into this server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALBATCH_")}
    env |= {
        "DIALBATCH_DATA_DIR": str(data_dir),
        "DIALBATCH_HOST": "127.0.0.1",
        "DIALBATCH_PORT": str(port),
        "DIALBATCH_DEMO_API_KEY": API_KEY,
        "DIALBATCH_SIMULATED_TIME_SCALE": TIME_SCALE,
        "DIALBATCH_LOG_LEVEL": "warning",
    }
    dialbatch = Path(sys.executable).with_name("dialbatch")
    with log.open("wb") as out:
        proc = subprocess.Popen([str(dialbatch), "serve"], env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    served = Served(url, WORKSPACE, API_KEY, data_dir, log, proc)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dialbatch serve exited:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"dialbatch serve did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
