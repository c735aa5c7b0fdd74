"""The admin commands: a key made on the command line opens its workspace's API, and a
revoked one no longer does."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from dialbatch.cli.main import app
from dialbatch.server import Runtime
from dialbatch.settings import Settings

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DIALBATCH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DIALBATCH_DATABASE_URL", raising=False)
    return tmp_path


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


async def agents_status(key: str, workspace: str) -> int:
    runtime = Runtime.build(Settings(), dispatch=False)
    transport = httpx.ASGITransport(app=runtime.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(
            "/v1/api/agents", headers={"x-api-key": key, "x-workspace-id": workspace}
        )
    await runtime.db.dispose()
    return response.status_code


def test_workspace_key_agent_lifecycle(env: Path) -> None:
    out = invoke("workspaces", "create", "--id", "ws_acme", "--max-concurrent-calls", "3")
    first_key = re.search(r"api key:\s+(\S+)", out)
    assert first_key is not None
    out = invoke("keys", "create", "-w", "ws_acme", "--name", "ci")
    key_id = re.search(r"key id:\s+(\S+)", out)
    key = re.search(r"api key:\s+(\S+)", out)
    assert key_id is not None and key is not None
    invoke("agents", "create", "-w", "ws_acme", "--name", "Sales", "--id", "agent_sales")
    assert "agent_sales" in invoke("agents", "list", "-w", "ws_acme")
    assert "live" in invoke("keys", "list", "-w", "ws_acme")

    assert asyncio.run(agents_status(key.group(1), "ws_acme")) == 200
    assert asyncio.run(agents_status(key.group(1), "ws_demo")) == 401
    invoke("keys", "revoke", key_id.group(1))
    assert asyncio.run(agents_status(key.group(1), "ws_acme")) == 401
    assert asyncio.run(agents_status(first_key.group(1), "ws_acme")) == 200


def test_errors_exit_nonzero_with_a_message(env: Path) -> None:
    invoke("workspaces", "create", "--id", "ws_x")
    for args in (
        ["workspaces", "create", "--id", "ws_x"],
        ["keys", "create", "-w", "ws_missing"],
        ["keys", "revoke", "key_nope"],
        ["agents", "create", "-w", "ws_x", "--name", "a", "--provider", "carrier-pigeon"],
        ["agents", "create", "-w", "ws_x", "--name", "a", "--config", "{not json"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, args
        assert "error" in result.output.lower()


def test_no_secret_is_stored_in_the_clear(env: Path) -> None:
    out = invoke("workspaces", "create", "--id", "ws_s")
    key = re.search(r"api key:\s+(\S+)", out)
    assert key is not None
    raw = b"".join(p.read_bytes() for p in env.glob("dialbatch.db*"))
    assert key.group(1).encode() not in raw


def test_migrate_creates_a_missing_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "not" / "yet" / "there"
    monkeypatch.setenv("DIALBATCH_DATA_DIR", str(data))
    monkeypatch.delenv("DIALBATCH_DATABASE_URL", raising=False)
    assert "database at head" in invoke("migrate")
    assert (data / "dialbatch.db").exists()


def test_serve_on_a_port_in_use_fails_before_printing_a_key(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("DIALBATCH_PORT", str(port))
        result = runner.invoke(app, ["serve"])
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.output
    assert "API key" not in result.output and "curl" not in result.output


def test_flags_show_no_value_in_help() -> None:
    for command in (["submit", "--help"], ["cancel", "--help"], ["serve", "--help"]):
        result = runner.invoke(app, command, env={"COLUMNS": "160"})
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.output, result.output
    assert "--hangup-active" in runner.invoke(app, ["cancel", "--help"]).output
