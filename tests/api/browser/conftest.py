"""A headless Chromium (Debian's, driven by Playwright) and a real server on 127.0.0.1, for
the offline /docs and /redoc tests (the dashboard's own browser fixtures are in tests/web).

Chromium comes from the Debian package `chromium`: installed here with apt-get when
/usr/bin/chromium is missing and we are root; if it still cannot be had the browser tests
skip, or fail under CI=true. Playwright's own browser download (`playwright install`) is
never used: nothing is fetched from outside the package registries.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from dialbatch.settings import Settings
from tests._chromium import CHROMIUM_ARGS, chromium_or_skip
from tests.client._server import LiveServer
from tests.client._server import live_server as serve

LOCAL_HOSTS = {"127.0.0.1"}


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    return Path(chromium_or_skip())


@pytest.fixture
def browser(chromium_path: Path, live_server: LiveServer) -> Iterator[Any]:
    """A headless Chromium for one test, with the live server already up.

    Playwright's sync API runs an event loop on the main thread while it is open, and no
    asyncio test or fixture (the PostgreSQL database's set-up, pytest-asyncio's tests) can
    run meanwhile. So it lives for one test only, and starts after the server and its
    database (it depends on `live_server` for that order); browser tests are plain `def`
    tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Requests:
    """Every URL a page asked for, and those that would have left 127.0.0.1 (aborted)."""

    seen: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)


@pytest.fixture
def page_of(browser: Any) -> Iterator[Any]:
    """`page_of()` -> (page, requests): a fresh page whose requests are recorded, and any
    request to a host other than 127.0.0.1 is aborted and listed in `requests.outside`."""
    contexts: list[Any] = []

    def make() -> tuple[Any, Requests]:
        context = browser.new_context()
        contexts.append(context)
        requests = Requests()

        def route(r: Any) -> None:
            url = r.request.url
            requests.seen.append(url)
            host = urlsplit(url).hostname
            if url.startswith(("data:", "blob:", "about:")) or host in LOCAL_HOSTS:
                r.continue_()
            else:
                requests.outside.append(url)
                r.abort()

        context.route("**/*", route)
        return context.new_page(), requests

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The app over real HTTP on 127.0.0.1 (with its dispatcher and the demo workspace).

    Started and stopped on a thread of its own: Playwright's sync API keeps an event loop
    running on the main thread, where the server's set-up (asyncio.run) cannot run."""
    ready: queue.Queue[LiveServer | BaseException] = queue.Queue()
    stop = threading.Event()

    def run() -> None:
        try:
            with serve(settings) as live:
                ready.put(live)
                stop.wait()
        except BaseException as exc:
            ready.put(exc)

    thread = threading.Thread(target=run, name="live-server", daemon=True)
    thread.start()
    started = ready.get(timeout=60)
    if isinstance(started, BaseException):
        raise started
    try:
        yield started
    finally:
        stop.set()
        thread.join(timeout=30)
