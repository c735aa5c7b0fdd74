"""Debian's Chromium for the browser tests (tests/web and tests/api/browser), one copy.

It comes from the Debian package `chromium`, never from `playwright install` (which
downloads a browser build): installed here when missing and we are root; if it still cannot
be had the browser tests skip, or fail under CI=true.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

CHROMIUM = "/usr/bin/chromium"
# The flags these machines need: without the background-networking ones Chromium keeps
# trying hosts outside, which the closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _install_chromium() -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Wait for a dpkg lock held by another install rather than fail at once.
    cmd = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y"]
    cmd += ["--no-install-recommends", "chromium"]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True)
        subprocess.run(cmd, env=env, capture_output=True)


def chromium_or_skip() -> str:
    """The Chromium binary, installed if need be; skips (fails under CI=true) without it."""
    if not os.path.exists(CHROMIUM):
        _install_chromium()
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} (Debian package chromium) is not installed and could not be"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM
