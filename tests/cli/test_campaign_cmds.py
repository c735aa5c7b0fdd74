"""pause, resume, retry-failed and `submit --json` against a real server over HTTP."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.cli.test_client_cmds import run, sdk, submit_quietly, wait, write_contacts
from tests.client._server import LiveServer
from tests.conftest import numbers

# Far enough ahead that nothing is dialed (and nothing fails) during a test.
LATER = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_pause_and_resume_a_batch_and_the_workspace(server: LiveServer, tmp_path: Path) -> None:
    batch_id = submit_quietly(server, write_contacts(tmp_path, 3), "--scheduled-at", LATER)
    paused = run(server, "pause", batch_id)
    assert paused.exit_code == 0, paused.output
    assert f"{batch_id} paused" in paused.stdout
    shown = run(server, "status", batch_id)
    assert "paused" in shown.stdout and "Paused at" in shown.stdout
    resumed = run(server, "resume", batch_id)
    assert resumed.exit_code == 0 and f"{batch_id} queued" in resumed.stdout
    stop = run(server, "pause", "--all")
    assert stop.exit_code == 0 and "paused" in stop.stdout
    with sdk(server) as client:
        assert client.get_workspace()["paused"] is True
    assert run(server, "resume", "--all").exit_code == 0
    with sdk(server) as client:
        assert client.get_workspace()["paused"] is False
    both = run(server, "pause", batch_id, "--all")
    assert both.exit_code == 1 and "--all" in both.stderr
    assert run(server, "pause").exit_code == 1
    missing = run(server, "pause", "batch_00000000deadbeef")
    assert missing.exit_code == 1 and "No batch" in missing.stderr


def test_retry_failed_with_nothing_failed_says_so(server: LiveServer, tmp_path: Path) -> None:
    batch_id = submit_quietly(server, write_contacts(tmp_path, 2), "--scheduled-at", LATER)
    result = run(server, "retry-failed", batch_id, "--outcome", "busy")
    assert result.exit_code == 1 and "Nothing to retry" in result.stderr


def test_submit_json_rows_with_an_idempotency_key(server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text(
        json.dumps([{"phone_number": p, "name": f"N{i}"} for i, p in enumerate(numbers(3))])
    )
    args = ("--json", "--idempotency-key", "cli-rows-1")
    first = submit_quietly(server, path, *args)
    assert first.startswith("batch_")
    assert submit_quietly(server, path, *args) == first
    with sdk(server) as client:
        calls = list(client.iter_calls(first))
    assert [c["metadata"] for c in calls] == [{"name": "N0"}, {"name": "N1"}, {"name": "N2"}]
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"calls": [{"phone_number": "12"}]}))
    bad = run(server, "submit", str(wrapped), "--agent", "agent_demo", "--json")
    assert bad.exit_code == 1 and "calls[0]" in bad.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert "not valid JSON" in run(server, "submit", str(broken), "--agent", "a", "--json").stderr


def test_caps_are_shown_set_and_cleared(server: LiveServer) -> None:
    assert "no frequency caps" in run(server, "caps").stdout
    set_ = run(server, "caps", "--per-24h", "3", "--per-30d", "10")
    assert set_.exit_code == 0, set_.output
    assert "at most 3 per 24 hours, 10 per 30 days" in set_.stdout
    assert "3 per 24 hours" in run(server, "caps").stdout
    assert run(server, "caps", "--per-24h", "0").exit_code != 0  # refused before sending
    cleared = run(server, "caps", "--clear")
    assert cleared.exit_code == 0 and "no frequency caps" in cleared.stdout


def test_call_shows_every_dial(server: LiveServer, tmp_path: Path) -> None:
    batch_id = submit_quietly(server, write_contacts(tmp_path, 2))
    wait(server, batch_id)
    with sdk(server) as client:
        job_id = next(iter(client.iter_calls(batch_id)))["jobId"]
        detail = client.get_call(batch_id, job_id)
    history = detail["attemptHistory"]
    assert len(history) == detail["attempts"] >= 1
    shown = run(server, "call", batch_id, job_id)
    assert shown.exit_code == 0, shown.output
    assert job_id in shown.stdout and history[-1]["outcome"] in shown.stdout
    assert history[0]["providerCode"] in shown.stdout
    missing = run(server, "call", batch_id, f"{batch_id}_99")
    assert missing.exit_code == 1


def test_a_batch_that_paused_itself_shows_why(server: LiveServer, tmp_path: Path) -> None:
    with sdk(server) as client:
        agent = client.create_agent("failing", provider_config={"outcomes": {"failed": 1}})
    path = write_contacts(tmp_path, 60)
    rule = '{"lastDials": 4, "failedShare": 1}'
    batch_id = submit_quietly(server, path, "--failure-stop", rule, "--agent", agent["id"])
    with sdk(server) as client:
        deadline = time.monotonic() + 30
        while client.get_batch(batch_id)["status"] != "paused":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    shown = run(server, "status", batch_id)
    assert "Pause reason" in shown.stdout and "Paused automatically" in shown.stdout
    bad = run(server, "submit", str(path), "--agent", "agent_demo", "--failure-stop", "[1]")
    assert bad.exit_code == 1 and "--failure-stop must be a JSON object" in bad.stderr


def test_failure_stop_shows_and_sets_the_workspace_rule(server: LiveServer) -> None:
    shown = run(server, "failure-stop")
    assert shown.exit_code == 0 and "0.5 of its last 20 dials" in shown.stdout
    set_ = run(server, "failure-stop", "--last-dials", "8", "--within", "60")
    assert set_.exit_code == 0 and "last 8 dials" in set_.stdout and "60 s" in set_.stdout
    assert "off" in run(server, "failure-stop", "--off").stdout
    assert "last 20 dials" in run(server, "failure-stop", "--default").stdout
    bad = run(server, "failure-stop", "--failed-share", "3")
    assert bad.exit_code == 1 and "failureStop.failedShare" in bad.stderr


def test_submit_dry_run_creates_nothing(server: LiveServer, tmp_path: Path) -> None:
    path = write_contacts(tmp_path, 4)
    shown = run(server, "submit", str(path), "--agent", "agent_demo", "--dry-run")
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert "would be created with 4 calls" in out and "valid: 4" in out
    assert "America/New_York: 4" in out and "Estimate:" in out
    with path.open("a") as f:
        f.write("12,Bad,Row,x@example.com\n")
    refused = run(server, "submit", str(path), "--agent", "agent_demo", "--dry-run")
    assert refused.exit_code == 1 and "would be refused" in refused.stdout
    assert "row 6" in refused.stdout
    with sdk(server) as client:
        assert client.list_batches()["pagination"]["total"] == 0


def test_consent_is_shown_and_set_and_submit_sends_require_consent(
    server: LiveServer, tmp_path: Path
) -> None:
    assert "consent not required" in run(server, "consent").stdout
    path = write_contacts(tmp_path, 2)
    refused = run(server, "submit", str(path), "--agent", "agent_demo", "--require-consent")
    assert refused.exit_code == 1 and "requireConsent is on" in refused.stderr
    on = run(server, "consent", "--require")
    assert on.exit_code == 0 and "consent required" in on.stdout
    floor = run(server, "submit", str(path), "--agent", "agent_demo")
    assert floor.exit_code == 1 and "requireConsent is on" in floor.stderr
    off = run(server, "consent", "--no-require")
    assert off.exit_code == 0 and "consent not required" in off.stdout


def test_settings_show_and_set_the_profile_and_the_default_window(
    server: LiveServer, tmp_path: Path
) -> None:
    shown = run(server, "settings")
    assert shown.exit_code == 0, shown.output
    assert "compliance profile: none" in shown.stdout
    assert "default calling window: none" in shown.stdout
    window = tmp_path / "w.json"
    window.write_text(json.dumps({"days": {"mon": [["09:00", "17:00"]]}}))
    set_ = run(server, "settings", "--profile", "us", "--window-file", str(window))
    assert set_.exit_code == 0, set_.output
    assert "compliance profile: us" in set_.stdout
    assert '"mon": [["09:00", "17:00"]]' in set_.stdout
    bad = run(server, "settings", "--profile", "eu")
    assert bad.exit_code == 1 and "complianceProfile 'eu'" in bad.stderr
    cleared = run(server, "settings", "--clear-window")
    assert cleared.exit_code == 0 and "default calling window: none" in cleared.stdout
    assert "compliance profile: us" in cleared.stdout
    with sdk(server) as client:
        assert client.get_workspace()["complianceProfile"] == "us"


def test_submit_takes_a_profile_and_a_window_file(server: LiveServer, tmp_path: Path) -> None:
    window = tmp_path / "w.json"
    window.write_text(
        json.dumps({"timezone": "America/New_York", "days": {"sat": [["10:00", "12:00"]]}})
    )
    batch_id = submit_quietly(
        server,
        write_contacts(tmp_path, 2),
        "--profile",
        "ca",
        "--window-file",
        str(window),
        "--scheduled-at",
        LATER,
    )
    with sdk(server) as client:
        batch = client.get_batch(batch_id)
    assert batch.get("complianceProfile") == "ca"
    assert (batch.get("callingWindow") or {})["days"] == {"sat": [["10:00", "12:00"]]}
    missing = run(
        server,
        "submit",
        str(tmp_path / "c.csv"),
        "--agent",
        "agent_demo",
        "--window-file",
        str(tmp_path / "none.json"),
    )
    assert missing.exit_code == 1 and "no such file" in missing.stderr


def test_limits_change_a_running_batch(server: LiveServer, tmp_path: Path) -> None:
    batch_id = submit_quietly(server, write_contacts(tmp_path, 3), "--scheduled-at", LATER)
    changed = run(server, "limits", batch_id, "--max-concurrency", "2", "--priority", "7")
    assert changed.exit_code == 0, changed.output
    assert f"{batch_id} maxConcurrency 2, priority 7" in changed.stdout
    dropped = run(server, "limits", batch_id, "--no-max-concurrency")
    assert dropped.exit_code == 0 and "maxConcurrency none, priority 7" in dropped.stdout
    with sdk(server) as client:
        batch = client.get_batch(batch_id)
    assert (batch.get("maxConcurrency"), batch.get("priority")) == (None, 7)
    assert run(server, "limits", batch_id).exit_code == 1  # nothing to change
    run(server, "cancel", batch_id)
    finished = run(server, "limits", batch_id, "--priority", "1")
    assert finished.exit_code == 1 and "cancelled" in finished.stderr


def test_caller_numbers_are_shown_changed_and_refused_with_the_field(server: LiveServer) -> None:
    with sdk(server) as client:
        agent = client.create_agent("pool", from_numbers=["+12125550100"])
        assert client.get_agent(agent["id"])["fromNumbers"] == ["+12125550100"]
    shown = run(
        server,
        "caller-numbers",
        agent["id"],
        "-n",
        "+12125550100",
        "-n",
        "+13105550100",
        "--limit",
        "+13105550100=callsPerSecond:1,perDay:500",
    )
    assert shown.exit_code == 0, shown.output
    assert "+13105550100" in shown.stdout and "500" in shown.stdout and "+1310" in shown.stdout
    assert "warning" in shown.stdout  # 2 numbers for the workspace's cap
    with sdk(server) as client:
        got = client.get_agent(agent["id"])
    assert got["fromNumbers"] == ["+12125550100", "+13105550100"]
    assert got["callerNumberLimits"] == {"+13105550100": {"callsPerSecond": 1, "perDay": 500}}
    bad = run(server, "caller-numbers", agent["id"], "--limit", "+13105550100=perDay:0")
    assert bad.exit_code == 1 and "+13105550100.perDay" in bad.stderr
    shape = run(server, "caller-numbers", agent["id"], "--limit", "+13105550100")
    assert shape.exit_code == 1 and "NUMBER=callsPerSecond" in shape.stderr
    cleared = run(server, "caller-numbers", agent["id"], "--no-limits")
    assert cleared.exit_code == 0, cleared.output
    missing = run(server, "caller-numbers", "agent_nope")
    assert missing.exit_code == 1 and "agent_nope" in missing.stderr
