"""`dialbatch webhooks add|list|remove|deliveries|replay`: a workspace's webhook endpoints,
over HTTP through `dialbatch.client`, connected like the other client commands."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from dialbatch.cli.client_cmds import DEFAULT_URL, ApiKey, Url, WorkspaceId, _client, console, err

app = typer.Typer(help="Manage webhook endpoints (outbound events).", no_args_is_help=True)

WebhookId = Annotated[str, typer.Argument(metavar="WEBHOOK_ID", help="As `add` printed it.")]
EVENT_NAMES = (
    "call.started, call.completed, call.failed, batch.started, batch.completed, "
    "batch.cancelled, batch.paused"
)


@app.command("add")
def add(
    target: Annotated[str, typer.Argument(metavar="URL", help="http(s) URL to POST events to.")],
    event: Annotated[
        list[str],
        typer.Option("--event", "-e", help=f"An event to send (repeat): {EVENT_NAMES}."),
    ],
    description: Annotated[str, typer.Option(help="A label.")] = "",
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Add an endpoint; prints its signing secret, which is shown only this once."""
    with _client(url, api_key, workspace) as client:
        made = client.create_webhook(target, event, description)
    console.print(f"webhook [cyan]{made['id']}[/cyan] -> {escape(made['url'])}")
    console.print(f"events: {', '.join(made['events'])}")
    console.print(f"secret: [yellow]{made.get('secret', '')}[/yellow]")
    err.print("keep the secret now: it verifies the signatures and is never shown again")


@app.command("list")
def list_(url: Url = DEFAULT_URL, api_key: ApiKey = "", workspace: WorkspaceId = "") -> None:
    """List the workspace's endpoints."""
    with _client(url, api_key, workspace) as client:
        found = client.list_webhooks()
    # One line each (URLs are long; a table would wrap them).
    for w in found:
        label = f"  ({escape(w['description'])})" if w["description"] else ""
        console.print(f"{w['id']}  {escape(w['url'])}  {', '.join(w['events'])}{label}")
    console.print(f"{len(found)} webhook(s)")


@app.command("remove")
def remove(
    webhook_id: WebhookId, url: Url = DEFAULT_URL, api_key: ApiKey = "", workspace: WorkspaceId = ""
) -> None:
    """Remove an endpoint: nothing more is sent to it (its delivery log stays)."""
    with _client(url, api_key, workspace) as client:
        client.delete_webhook(webhook_id)
    console.print(f"removed {webhook_id}")


@app.command("deliveries")
def deliveries(
    webhook_id: WebhookId,
    status: Annotated[
        str, typer.Option(help="all, pending, delivered, dead or cancelled.")
    ] = "all",
    page: Annotated[int, typer.Option(min=1)] = 1,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """An endpoint's deliveries, newest first, with the last attempt's answer."""
    with _client(url, api_key, workspace) as client:
        found = client.list_webhook_deliveries(webhook_id, status, page, limit)
    table = Table(box=None)
    for column in ("Delivery", "Event", "Status", "Attempts", "Last answer"):
        table.add_column(column)
    for d in found["deliveries"]:
        last = d["attemptLog"][-1] if d["attemptLog"] else None
        answer = ""
        if last is not None:
            answer = str(last["statusCode"] or last["error"] or "")
            if last["latencyMs"] is not None:
                answer += f" ({last['latencyMs']} ms)"
        table.add_row(str(d["id"]), d["event"], d["status"], str(d["attempts"]), escape(answer))
    console.print(table)
    pages = found["pagination"]
    console.print(f"page {pages['page']} of {max(pages['totalPages'], 1)}, {pages['total']} total")


@app.command("replay")
def replay(
    webhook_id: WebhookId,
    delivery_id: Annotated[int, typer.Argument(metavar="DELIVERY_ID")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Send a delivery (a dead letter, say) again now."""
    with _client(url, api_key, workspace) as client:
        d = client.replay_webhook_delivery(webhook_id, delivery_id)
    console.print(f"delivery {d['id']} ({d['event']}) is {d['status']} again")
