"""`dialbatch retry-policy`: show or set the workspace's default retry rule per outcome
(extension, docs/retries.md)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from dialbatch.cli.client_cmds import (
    DEFAULT_URL,
    ApiKey,
    Url,
    WorkspaceId,
    _client,
    _fail,
    _json_arg,
    console,
)


def retry_policy(
    policy: Annotated[
        str | None,
        typer.Argument(
            metavar="[FILE|JSON]",
            help='The new default, inline or in a file: {"busy": {"maxDials": 3, '
            '"gapsSeconds": [60, 120]}, "no-answer": {"maxDials": 2, "gapsSeconds": [3600]}, '
            '"voicemail": false}. Leave out to show the current one.',
        ),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the default.")] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Show or set the workspace's default retry rule per outcome: each new batch that
    sends no smartCallbackConfig takes it (its own --retry-policy wins per outcome).
    Running batches keep the rules they were created with."""
    if clear and policy is not None:
        _fail("--clear takes no policy")
    with _client(url, api_key, workspace) as client:
        if clear:
            shown = client.set_retry_policy(None)["retryPolicy"]
        elif policy is not None:
            shown = client.set_retry_policy(_json_arg(policy, "POLICY"))["retryPolicy"]
        else:
            shown = client.get_workspace().get("retryPolicy")
    if not shown:
        console.print(
            "no default retry policy: new batches follow their smartCallbackConfig "
            "(without it, only failed dials are retried)"
        )
        return
    print_policy(shown, "default retry policy of new batches")


def print_policy(policy: dict[str, Any], title: str) -> None:
    """One row per outcome: whether it is retried, up to how many dials, after which gaps."""
    table = Table(title=title)
    for column in ("outcome", "retried", "max dials", "gaps (s)", "counting"):
        table.add_column(column)
    for outcome, rule in policy.items():
        if not rule.get("retry"):
            table.add_row(outcome, "no", "1", "", "")
            continue
        gaps = ", ".join(f"{g:g}" for g in rule.get("gapsSeconds", []))
        table.add_row(
            outcome, "yes", str(rule["maxDials"]), gaps + " (last repeats)", rule["counting"]
        )
    console.print(table)
