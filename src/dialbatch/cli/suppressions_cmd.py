"""`dialbatch suppressions add|import|list|remove`: the workspace's do-not-call list, over
HTTP through `dialbatch.client`, connected like the other client commands."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from dialbatch.cli.client_cmds import DEFAULT_URL, ApiKey, Url, WorkspaceId, _client, console

app = typer.Typer(help="Manage the suppression (do-not-call) list.", no_args_is_help=True)

Reason = Annotated[str, typer.Option(help="Why (kept with the number).")]
ExpiresAt = Annotated[
    str, typer.Option(help="ISO 8601 time or epoch ms when the entry lapses; default: never.")
]
Country = Annotated[
    str, typer.Option(help="ISO country code for numbers written without +, e.g. US.")
]


@app.command("add")
def add(
    numbers: Annotated[list[str], typer.Argument(metavar="NUMBER...", help="Numbers to suppress.")],
    reason: Reason = "",
    expires_at: ExpiresAt = "",
    default_country: Country = "",
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Suppress numbers: refused at upload and never dialed, even in running batches."""
    with _client(url, api_key, workspace) as client:
        added = client.suppress(numbers, reason, expires_at or None, default_country or None)
    console.print(f"suppressed {added['added']} number(s)")


@app.command("import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="CSV with phone_number (and optional reason)."
        ),
    ],
    reason: Reason = "",
    expires_at: ExpiresAt = "",
    default_country: Country = "",
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Suppress every number of a CSV; any invalid row adds nothing and is listed."""
    with _client(url, api_key, workspace) as client:
        added = client.import_suppressions(
            file, reason, expires_at or None, default_country or None
        )
    console.print(f"suppressed {added['added']} number(s) from {escape(file.name)}")


@app.command("list")
def list_(
    page: Annotated[int, typer.Option(min=1)] = 1,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """The numbers suppressed now, newest first."""
    with _client(url, api_key, workspace) as client:
        found = client.list_suppressions(page, limit)
    table = Table(box=None)
    for column in ("Number", "Reason", "Source", "Added (UTC)", "Expires (UTC)"):
        table.add_column(column)
    for s in found["suppressions"]:
        table.add_row(
            s["phoneNumber"],
            escape(s["reason"]),
            s["source"] + (f" {s['jobId']}" if s["jobId"] else ""),
            _utc(s["createdAt"]),
            _utc(s["expiresAt"]) if s["expiresAt"] is not None else "never",
        )
    console.print(table)
    pages = found["pagination"]
    console.print(f"page {pages['page']} of {max(pages['totalPages'], 1)}, {pages['total']} total")


@app.command("remove")
def remove(
    number: Annotated[str, typer.Argument(metavar="NUMBER", help="In E.164, e.g. +12025550100.")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Take a number off the list: it may be called again."""
    with _client(url, api_key, workspace) as client:
        done = client.remove_suppression(number)
    console.print(f"removed {done['phoneNumber']}")


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
