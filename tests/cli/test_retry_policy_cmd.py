"""`dialbatch retry-policy` and `submit --retry-policy` against a real server over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.cli.test_client_cmds import run, sdk, submit_quietly, write_contacts
from tests.client._server import LiveServer

LATER = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
POLICY = {"busy": {"maxDials": 3, "gapsSeconds": [60, 120]}, "voicemail": False}


def test_the_workspace_default_is_shown_set_and_cleared(server: LiveServer, tmp_path: Path) -> None:
    assert "no default retry policy" in run(server, "retry-policy").stdout
    set_ = run(server, "retry-policy", json.dumps(POLICY))
    assert set_.exit_code == 0, set_.output
    assert "busy" in set_.stdout and "60, 120" in set_.stdout
    with sdk(server) as client:
        assert client.get_workspace()["retryPolicy"] == {
            "busy": {"retry": True, "maxDials": 3, "gapsSeconds": [60, 120], "counting": "dials"},
            "voicemail": {"retry": False},
        }
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"no-answer": {"maxDials": 2, "gapsSeconds": [3600]}}))
    from_file = run(server, "retry-policy", str(path))
    assert from_file.exit_code == 0 and "no-answer" in from_file.stdout
    assert "busy" not in run(server, "retry-policy").stdout  # replaced, not merged
    bad = run(server, "retry-policy", '{"busy": {"maxDials": 30, "gapsSeconds": [1]}}')
    assert bad.exit_code == 1 and "retryPolicy.busy.maxDials" in bad.stderr
    assert run(server, "retry-policy", "--clear", "{}").exit_code == 1
    cleared = run(server, "retry-policy", "--clear")
    assert cleared.exit_code == 0 and "no default retry policy" in cleared.stdout


def test_submit_sends_the_batchs_own_policy(server: LiveServer, tmp_path: Path) -> None:
    contacts = write_contacts(tmp_path, 2)
    inline = submit_quietly(
        server, contacts, "--scheduled-at", LATER, "--retry-policy", json.dumps(POLICY)
    )
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(POLICY))
    from_file = submit_quietly(
        server, contacts, "--scheduled-at", LATER, "--retry-policy", str(path)
    )
    with sdk(server) as client:
        for batch_id in (inline, from_file):
            shown = client.get_batch(batch_id)["retryPolicy"]
            assert shown["busy"]["gapsSeconds"] == [60, 120]
            assert shown["voicemail"] == {"retry": False}
            assert shown["no-answer"] == {"retry": False}  # no smartCallbackConfig: final
    missing = run(
        server,
        "submit",
        str(contacts),
        "--agent",
        "agent_demo",
        "--retry-policy",
        str(tmp_path / "nope.json"),
    )
    assert missing.exit_code == 1 and "--retry-policy" in missing.stderr
    bad = run(
        server,
        "submit",
        str(contacts),
        "--agent",
        "agent_demo",
        "--retry-policy",
        '{"voicemail": {"maxDials": 2}}',
    )
    assert bad.exit_code == 1 and "retryPolicy.voicemail.gapsSeconds" in bad.stderr
