"""`dialbatch webhooks add|list|remove|deliveries` against a real server over HTTP."""

from __future__ import annotations

import re

from tests.cli.test_client_cmds import run
from tests.client._server import LiveServer

PUBLIC = "https://93.184.216.34/hooks"  # a literal public address; no event is sent here


def test_add_list_remove(server: LiveServer) -> None:
    added = run(server, "webhooks", "add", PUBLIC, "-e", "call.completed", "-e", "batch.completed")
    assert added.exit_code == 0, added.output
    webhook_id = re.search(r"webhook (wh_\w+)", added.stdout).group(1)  # type: ignore[union-attr]
    assert re.search(r"secret: whsec_[A-Za-z0-9+/=]{40,}", added.stdout)
    assert "never shown again" in added.stderr

    listed = run(server, "webhooks", "list")
    assert listed.exit_code == 0 and webhook_id in listed.stdout and "whsec_" not in listed.stdout
    assert "batch.completed, call.completed" in listed.stdout

    log = run(server, "webhooks", "deliveries", webhook_id)
    assert log.exit_code == 0 and "0 total" in log.stdout

    removed = run(server, "webhooks", "remove", webhook_id)
    assert removed.exit_code == 0 and webhook_id in removed.stdout
    assert webhook_id not in run(server, "webhooks", "list").stdout
    again = run(server, "webhooks", "remove", webhook_id)
    assert again.exit_code == 1 and "No webhook" in again.stderr


def test_refusals_say_what_to_fix(server: LiveServer) -> None:
    bad_event = run(server, "webhooks", "add", PUBLIC, "-e", "call.exploded")
    assert bad_event.exit_code == 1 and "call.completed" in bad_event.stderr
    loopback = run(server, "webhooks", "add", "http://127.0.0.1:9/x", "-e", "call.failed")
    assert loopback.exit_code == 1 and "loopback" in loopback.stderr
    not_http = run(server, "webhooks", "add", "ftp://93.184.216.34/x", "-e", "call.failed")
    assert not_http.exit_code == 1 and "http" in not_http.stderr
