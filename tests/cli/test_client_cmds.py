"""The client commands against a real server over HTTP, as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from dialbatch.cli.client_cmds import _gate_line
from dialbatch.cli.main import app
from dialbatch.client import Client
from dialbatch.client.types import BatchProgress
from dialbatch.settings import Settings
from tests.client._server import LiveServer
from tests.conftest import csv_bytes, numbers

SUMMARY = re.compile(
    r"(?P<id>batch_\w+) (?P<status>\w+): (?P<total>\d+) calls, waiting (?P<waiting>\d+), "
    r"active (?P<active>\d+), completed (?P<completed>\d+), failed (?P<failed>\d+), "
    r"cancelled (?P<cancelled>\d+), average (?P<average>[\d.]+) s"
)


def run(server: LiveServer, *args: str, input: bytes | None = None, **env: str | None) -> Result:
    return CliRunner().invoke(app, list(args), env={**server.env, **env}, input=input)


def write_contacts(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "contacts.csv"
    rows = [f"{p},First{i},Last{i},p{i}@example.com" for i, p in enumerate(numbers(n))]
    path.write_bytes(csv_bytes(rows))
    return path


def submit_quietly(server: LiveServer, path: Path, *extra: str) -> str:
    result = run(server, "submit", str(path), "--agent", "agent_demo", "-q", *extra)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def sdk(server: LiveServer) -> Client:
    return Client(server.url, server.demo.api_key, server.demo.workspace_id)


def wait(server: LiveServer, batch_id: str) -> BatchProgress:
    with sdk(server) as client:
        return client.wait(batch_id, poll_interval=0.05, timeout=60)


def later() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_submit_and_watch_reach_completion_and_print_the_counts(
    server: LiveServer, tmp_path: Path
) -> None:
    path = write_contacts(tmp_path, 12)
    result = run(
        server, "submit", str(path), "--agent", "agent_demo", "--watch", "--interval", "0.05"
    )

    assert result.exit_code == 0, result.output
    assert re.match(r"batch_\w+ queued: Batch created with 12 calls", result.stdout)
    summary = SUMMARY.search(result.stdout)
    assert summary, result.stdout
    with sdk(server) as client:
        progress = client.get_progress(summary["id"])
    assert progress["isComplete"] is True
    assert summary["status"] == progress["status"] == "completed"
    for key in ("waiting", "active", "completed", "failed", "cancelled", "total"):
        assert int(summary[key]) == progress[key], key
    assert int(summary["completed"]) + int(summary["failed"]) == 12


def test_watch_an_existing_batch_then_read_its_status(server: LiveServer, tmp_path: Path) -> None:
    batch_id = submit_quietly(server, write_contacts(tmp_path, 8))
    assert re.fullmatch(r"batch_[0-9a-f]+", batch_id)

    watched = run(server, "watch", batch_id, "--interval", "0.05")
    assert watched.exit_code == 0, watched.output
    summary = SUMMARY.search(watched.stdout)
    assert summary and summary["id"] == batch_id and summary["total"] == "8"

    status = run(server, "status", batch_id)
    assert status.exit_code == 0, status.output
    assert re.search(rf"Batch\s+{batch_id}", status.stdout)
    assert re.search(r"Status\s+completed \(complete\)", status.stdout)
    assert re.search(rf"^ *Completed +{summary['completed']} *$", status.stdout, re.M)
    assert re.search(rf"^ *Failed +{summary['failed']} *$", status.stdout, re.M)
    assert "Scheduled for" not in status.stdout

    listed = run(server, "batches")
    assert listed.exit_code == 0, listed.output
    assert re.search(rf"{batch_id}\s+completed\s+8\s", listed.stdout)


def test_export_writes_one_row_per_call_with_metadata_columns(
    server: LiveServer, tmp_path: Path
) -> None:
    batch_id = submit_quietly(server, write_contacts(tmp_path, 101))  # two pages of 100
    final = wait(server, batch_id)
    out = tmp_path / "out" / "calls.csv"
    out.parent.mkdir()

    result = run(server, "export", batch_id, "-o", str(out))

    assert result.exit_code == 0, result.output
    assert f"exported 101 calls of {batch_id} to {out}" in result.stderr
    assert list(out.parent.iterdir()) == [out]  # no partial file left behind
    with out.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == [
        "jobId",
        "phone_number",
        "status",
        "startTime",
        "endTime",
        "duration",
        "attempts",
        "error",
        "outcome",
        "transcript",
        "summary",
        "data",
        "first_name",
        "last_name",
        "email",
        "timezone",  # extension: the recipient's own zone and consent, after the metadata
        "consent_basis",
        "consent_at",
    ]
    assert [r["jobId"] for r in rows] == [f"call_{batch_id[6:]}_{i}" for i in range(101)]
    # "+" starts a formula in a spreadsheet: the number is kept as text.
    assert [r["phone_number"] for r in rows] == ["'" + n for n in numbers(101)]
    assert [r["first_name"] for r in rows] == [f"First{i}" for i in range(101)]
    assert sum(r["status"] == "completed" for r in rows) == final["completed"]
    for r in rows:
        assert int(r["startTime"]) <= int(r["endTime"])
        assert int(r["attempts"]) >= 1
        if r["status"] == "completed":
            assert float(r["duration"]) > 0 and r["error"] == ""
            # the simulated agent's transcript greets the contact by the CSV's name
            assert r["outcome"] and f"Hello {r['first_name']}" in r["transcript"]
        else:
            assert r["error"] and r["duration"] == "" and r["transcript"] == ""


def test_export_as_json_lines(server: LiveServer, tmp_path: Path) -> None:
    batch_id = submit_quietly(server, write_contacts(tmp_path, 3))
    wait(server, batch_id)
    result = run(server, "export", batch_id, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [c["metadata"]["first_name"] for c in lines] == ["First0", "First1", "First2"]
    assert "exported 3 calls" in result.stderr
    bad = run(server, "export", batch_id, "--format", "xlsx")
    assert bad.exit_code == 1 and "csv or jsonl" in bad.stderr


def test_export_to_stdout_with_a_status_filter(server: LiveServer, tmp_path: Path) -> None:
    batch_id = submit_quietly(server, write_contacts(tmp_path, 20))
    final = wait(server, batch_id)

    result = run(server, "export", batch_id, "-o", "-", "--status", "failed")

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == final["failed"]
    assert {r["status"] for r in rows} <= {"failed"}
    assert f"exported {final['failed']} calls" in result.stderr


def test_cancel_a_scheduled_batch(server: LiveServer, tmp_path: Path) -> None:
    batch_id = submit_quietly(server, write_contacts(tmp_path, 5), "--scheduled-at", later())
    status = run(server, "status", batch_id)
    assert re.search(r"^ *Status +queued *$", status.stdout, re.M)
    assert "Scheduled for" in status.stdout

    result = run(server, "cancel", batch_id)

    assert result.exit_code == 0, result.output
    assert f"{batch_id} cancelled: Batch cancelled" in result.stdout
    assert "0 completed, 0 failed, 5 cancelled of 5 calls" in result.stdout
    assert re.search(r"Status\s+cancelled \(complete\)", run(server, "status", batch_id).stdout)


def test_submit_from_stdin_with_extensions_prints_what_was_left_out(
    server: LiveServer,
) -> None:
    csv_in = csv_bytes(
        [
            "2025550100,Ada,L,a@example.com",
            "12345,Bad,Row,b@example.com",
            "+12025550100,Ada,Again,a2@example.com",
        ]
    )
    result = run(
        server,
        "submit",
        "-",
        "--agent",
        "agent_demo",
        "--default-country",
        "US",
        "--skip-invalid",
        "--dedupe",
        "--callback-json",
        '{"enabled": true, "maxAttempts": 2, "gaps": [{"hours": 1}]}',
        input=csv_in,
    )
    assert result.exit_code == 0, result.output
    assert "Batch created with 1 calls" in result.stdout
    assert "left out 2 row(s), 1 of them duplicate(s):" in result.stdout
    assert "  row 3, column phone_number: " in result.stdout
    assert "  row 4, column phone_number: duplicate of row 2" in result.stdout


def test_ctrl_c_stops_watching_and_leaves_the_batch_running(
    server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = submit_quietly(server, write_contacts(tmp_path, 3), "--scheduled-at", later())

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("dialbatch.client._sync.time.sleep", interrupt)
    result = run(server, "watch", batch_id)
    monkeypatch.undo()

    assert result.exit_code == 130
    assert f"stopped watching; {batch_id} keeps running" in result.stderr
    assert "is scheduled for" in result.stdout
    with sdk(server) as client:
        assert client.get_batch(batch_id)["status"] == "queued"


# -- errors: the server's message, exit 1, no traceback -------------------------------------


def assert_fails_with(result: Result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert f"error: {message}" in result.stderr
    assert "Traceback" not in result.output


def test_a_bad_key_exits_1_with_the_servers_message(server: LiveServer, tmp_path: Path) -> None:
    path = write_contacts(tmp_path, 1)
    for args in (["batches"], ["submit", str(path), "--agent", "agent_demo"]):
        assert_fails_with(
            run(server, *args, DIALBATCH_API_KEY="wrong"), "Invalid API key or workspace"
        )
    # a flag overrides the environment
    fixed = run(server, "batches", "--api-key", server.demo.api_key, DIALBATCH_API_KEY="wrong")
    assert fixed.exit_code == 0, fixed.output


@pytest.mark.parametrize("command", ["status", "watch", "cancel", "export"])
def test_an_unknown_batch_exits_1_with_the_servers_message(
    server: LiveServer, command: str, tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "x.csv"
    result = run(server, command, "batch_nope", *(["-o", str(out)] if command == "export" else []))
    assert_fails_with(result, "No batch with id 'batch_nope' in this workspace")
    assert list(out.parent.iterdir()) == []


def test_cancelling_a_finished_batch_exits_1(server: LiveServer, tmp_path: Path) -> None:
    batch_id = submit_quietly(server, write_contacts(tmp_path, 2))
    wait(server, batch_id)
    assert_fails_with(
        run(server, "cancel", batch_id), f"Batch {batch_id} is already completed; nothing to cancel"
    )


def test_an_invalid_csv_exits_1_with_its_row_problems(server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(csv_bytes(["+12025550100,A,B,a@example.com", "12345,C,D,c@example.com"]))

    result = run(server, "submit", str(path), "--agent", "agent_demo")

    assert result.exit_code == 1, result.output
    assert "row 3, column phone_number: " in result.stderr
    assert "(value '12345')" in result.stderr
    assert "submit again with: --default-country" in " ".join(result.stderr.split())


def test_local_mistakes_exit_1(server: LiveServer, tmp_path: Path) -> None:
    path = write_contacts(tmp_path, 1)
    assert_fails_with(
        run(server, "submit", "missing.csv", "--agent", "agent_demo"), "no such file: missing.csv"
    )
    assert_fails_with(
        run(server, "submit", str(path), "--agent", "a", "--callback-json", "{oops"),
        "--callback-json is not valid JSON",
    )
    assert_fails_with(
        run(server, "batches", DIALBATCH_API_KEY=None),
        "no API key: set DIALBATCH_API_KEY or pass --api-key",
    )
    assert_fails_with(
        run(server, "batches", DIALBATCH_WORKSPACE_ID=None),
        "no workspace: set DIALBATCH_WORKSPACE_ID or pass --workspace",
    )
    assert_fails_with(
        run(server, "batches", "--url", "http://127.0.0.1:9"), "cannot reach http://127.0.0.1:9"
    )


def test_cancel_with_hangup_active(server: LiveServer, tmp_path: Path) -> None:
    batch_id = submit_quietly(server, write_contacts(tmp_path, 3), "--scheduled-at", later())
    result = run(server, "cancel", batch_id, "--hangup-active")
    assert result.exit_code == 0, result.output
    assert "0 completed, 0 failed, 3 cancelled of 3 calls" in result.stdout
    assert "0 live call(s) being hung up" in result.stdout


def test_status_warns_when_no_worker_is_alive(
    server: LiveServer, settings: Settings, tmp_path: Path
) -> None:
    import asyncio

    import sqlalchemy as sa

    from dialbatch.store.engine import Database
    from dialbatch.store.tables import workers

    batch_id = submit_quietly(server, write_contacts(tmp_path, 3), "--scheduled-at", later())
    assert "no worker" not in run(server, "status", batch_id).stderr

    async def forget_workers() -> None:  # as if the only worker had died a while ago
        db = Database(settings.effective_database_url)
        async with db.write() as conn:
            await conn.execute(sa.delete(workers))
        await db.dispose()

    warned = []
    for _ in range(3):  # the live worker's next beat (every 15 s) may land in between
        asyncio.run(forget_workers())
        result = run(server, "status", batch_id)
        assert result.exit_code == 0
        warned.append("no worker has been seen in the last minute" in result.stderr)
        if warned[-1]:
            break
    assert any(warned)


def test_watch_reports_the_rate() -> None:
    from dialbatch.cli.client_cmds import _rate

    assert _rate(2.5) == "2.5 calls/s"
    assert _rate(0.5) == "30.0 calls/min"


def test_the_gate_summary_reads_as_words() -> None:
    assert _gate_line(None) is None
    assert _gate_line({"waitingForWindow": 0, "waitingForCap": 0, "refused": {}}) is None
    line = _gate_line({"waitingForWindow": 3, "waitingForCap": 1, "refused": {"suppressed": 2}})
    assert line == (
        "3 waiting for their calling window, 1 waiting for a frequency cap, 2 refused (suppressed)"
    )


def test_submit_sends_max_concurrency_and_priority_and_status_shows_them(
    server: LiveServer, tmp_path: Path
) -> None:
    path = write_contacts(tmp_path, 3)
    batch_id = submit_quietly(
        server, path, "--scheduled-at", later(), "--max-concurrency", "4", "--priority", "-3"
    )
    with sdk(server) as client:
        batch = client.get_batch(batch_id)
    assert (batch.get("maxConcurrency"), batch.get("priority")) == (4, -3)
    shown = run(server, "status", batch_id).stdout
    assert re.search(r"Max concurrency\s+4", shown) and re.search(r"Priority\s+-3", shown)
    out_of_range = run(server, "submit", str(path), "--agent", "agent_demo", "--priority", "101")
    assert out_of_range.exit_code == 2 and "--priority" in out_of_range.output
