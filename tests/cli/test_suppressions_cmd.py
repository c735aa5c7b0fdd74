"""`dialbatch suppressions add|import|list|remove` against a real server over HTTP."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_client_cmds import run
from tests.client._server import LiveServer


def test_add_import_list_remove(server: LiveServer, tmp_path: Path) -> None:
    added = run(
        server, "suppressions", "add", "2025550160", "--default-country", "US", "--reason", "asked"
    )
    assert added.exit_code == 0 and "suppressed 1 number(s)" in added.stdout, added.output
    dnc = tmp_path / "dnc.csv"
    dnc.write_text("phone_number,reason\n+12025550161,complaint\n+12025550162,\n")
    imported = run(server, "suppressions", "import", str(dnc), "--reason", "list")
    assert imported.exit_code == 0 and "suppressed 2 number(s)" in imported.stdout

    listed = run(server, "suppressions", "list")
    assert listed.exit_code == 0 and "3 total" in listed.stdout
    for number in ("+12025550160", "+12025550161", "+12025550162"):
        assert number in listed.stdout
    assert "complaint" in listed.stdout and "never" in listed.stdout

    removed = run(server, "suppressions", "remove", "+12025550160")
    assert removed.exit_code == 0 and "+12025550160" in removed.stdout
    assert "+12025550160" not in run(server, "suppressions", "list").stdout
    again = run(server, "suppressions", "remove", "+12025550160")
    assert again.exit_code == 1 and "not on this workspace's suppression list" in again.stderr


def test_an_invalid_number_adds_nothing_and_says_which(server: LiveServer) -> None:
    bad = run(server, "suppressions", "add", "+12025550170", "12")
    assert bad.exit_code == 1 and "not valid phone numbers" in bad.stderr, bad.output
    assert "0 total" in run(server, "suppressions", "list").stdout
