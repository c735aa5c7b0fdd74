"""sipp as the far end of our SIP calls, on loopback, one sipp process per test.

sipp comes from the Debian package `sip-tester`: installed here when missing and we are
root; if it still cannot be had the SIP tests skip, or fail under CI=true.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from dialbatch.domain.outcomes import CallEvent
from dialbatch.providers.base import CallProgress, ProviderEvent, Stage
from dialbatch.providers.sip.adapter import SipProvider
from dialbatch.providers.sip.config import SipSettings

SCENARIOS = Path(__file__).parent / "scenarios"


def _install_sipp() -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "sip-tester"]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True)
        subprocess.run(cmd, env=env, capture_output=True)


@pytest.fixture(scope="session")
def sipp_bin() -> str:
    path = shutil.which("sipp")
    if path is None:
        _install_sipp()
        path = shutil.which("sipp")
    if path is None:
        message = "sipp (Debian package sip-tester) is not installed and could not be installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _bound(port: int) -> bool:
    """Whether some socket has UDP `port` bound, asked without binding it ourselves (a probe
    bind could make sipp's own bind fail)."""
    try:
        table = Path("/proc/net/udp").read_text()
    except OSError:
        return True  # not Linux: rely on the start-up retry instead
    return any(line.split()[1].endswith(f":{port:04X}") for line in table.splitlines()[1:])


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_media_ports() -> int:
    """An even port with the next three free: sipp's audio (+RTCP) and video media ports,
    below Linux's ephemeral range so that no port-0 socket takes them meanwhile."""
    for _ in range(200):
        port = random.randrange(21000, 32000, 2)
        if all(_udp_free(port + i) for i in range(4)):
            return port
    raise RuntimeError("no free media ports")


@dataclass
class Sipp:
    port: int
    media_port: int
    process: asyncio.subprocess.Process
    log: Path

    @property
    def trunk(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def finished(self, timeout: float = 40) -> int:
        """sipp's exit status: 0 when every call went as its scenario says."""
        return await asyncio.wait_for(self.process.wait(), timeout)

    def errors(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]


StartSipp = Callable[..., Awaitable[Sipp]]


@pytest.fixture
async def start_sipp(sipp_bin: str, tmp_path: Path) -> AsyncIterator[StartSipp]:
    started: list[Sipp] = []

    async def start(scenario: str, *, calls: int = 1, talk_ms: int = 2000) -> Sipp:
        for _ in range(3):  # a port picked as free can be taken before sipp binds it
            sipp = await launch(scenario, calls, talk_ms)
            if sipp is not None:
                return sipp
        raise AssertionError("sipp could not bind its ports three times in a row")

    async def launch(scenario: str, calls: int, talk_ms: int) -> Sipp | None:
        port, media = free_udp_port(), free_media_ports()
        log = tmp_path / f"{scenario}-{port}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sipp_bin, "-sf", f"{scenario}.xml", "-i", "127.0.0.1", "-p", str(port),
                "-mp", str(media), "-m", str(calls), "-d", str(talk_ms), "-nostdin",
                "-timeout", "60s", "-timeout_error",
                cwd=SCENARIOS, stdout=subprocess.DEVNULL, stderr=out,
            )  # fmt: skip
        sipp = Sipp(port, media, process, log)
        started.append(sipp)
        for _ in range(200):  # until sipp listens
            if _bound(port) or process.returncode is not None:
                break
            await asyncio.sleep(0.02)
        if process.returncode is not None and "Address already in use" in sipp.errors():
            return None
        assert process.returncode is None, f"sipp exited at start: {sipp.errors()}"
        return sipp

    yield start
    for sipp in started:
        if sipp.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                sipp.process.kill()
            await sipp.process.wait()


class Events:
    """The sink: every event the provider reports; outcomes awaitable by dial key."""

    def __init__(self) -> None:
        self.events: list[ProviderEvent] = []
        self._changed = asyncio.Event()

    def stages(self, dial_key: str) -> list[Stage]:
        return [
            e.stage for e in self.events if isinstance(e, CallProgress) and e.dial_key == dial_key
        ]

    async def __call__(self, event: ProviderEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def of(self, dial_key: str, timeout: float = 20) -> CallEvent:
        async with asyncio.timeout(timeout):
            while True:
                found = [
                    e for e in self.events if isinstance(e, CallEvent) and e.dial_key == dial_key
                ]
                if found:
                    assert len(found) == 1, f"a call reported twice: {found}"
                    return found[0]
                self._changed.clear()
                await self._changed.wait()


def sip_settings(trunk: str | None = "127.0.0.1:9") -> SipSettings:
    return SipSettings(
        trunk=trunk, bind_host="127.0.0.1", bind_port=0, rtp_port_min=0, rtp_port_max=0
    )


@pytest.fixture
async def events() -> Events:
    return Events()


@pytest.fixture
async def provider(events: Events) -> AsyncIterator[SipProvider]:
    """A SIP provider on a free local port; each test points its agent at its own sipp."""
    sip = SipProvider(events, sip_settings())
    yield sip
    await sip.aclose()
