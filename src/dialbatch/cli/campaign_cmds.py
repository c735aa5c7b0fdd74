"""Steering a running campaign from the command line (extensions): `pause`, `resume` (one
batch, or with `--all` every batch of the workspace), `retry-failed`, `call` (one call
with every dial it took), `failure-stop` (the workspace's automatic stop on failure
spikes), `retry-policy` (the workspace's default retry rule per outcome), `caps` and
`settings` (the workspace's dialing rules), `limits` (a running batch's share) and
`caller-numbers` (an agent's pool of caller numbers). Connection options as for the other client
commands."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from dialbatch.cli import retry_policy_cmd
from dialbatch.cli.client_cmds import (
    DEFAULT_URL,
    ApiKey,
    BatchId,
    Interval,
    Url,
    WorkspaceId,
    _client,
    _fail,
    _iso_time,
    _watch,
    console,
    window_from_file,
)
from dialbatch.domain.caller_pool import local_key

OptionalBatchId = Annotated[
    str | None,
    typer.Argument(metavar="[BATCH_ID]", help="The batch id; leave out with --all."),
]
AllBatches = Annotated[
    bool,
    typer.Option(
        "--all",
        help="Every batch of the workspace at once (an emergency stop), not one batch.",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        help="Sent as Idempotency-Key: repeating the command within 24 h makes no second batch.",
    ),
]


def register(app: typer.Typer) -> None:
    """Add the campaign commands to the `dialbatch` command."""
    app.command()(pause)
    app.command()(resume)
    app.command("retry-failed")(retry_failed)
    app.command()(call)
    app.command("failure-stop")(failure_stop)
    app.command()(caps)
    app.command("retry-policy")(retry_policy_cmd.retry_policy)
    app.command()(consent)
    app.command()(settings)
    app.command()(limits)
    app.command("caller-numbers")(caller_numbers)


def _target(batch_id: str | None, all_batches: bool) -> None:
    if all_batches == (batch_id is not None):
        _fail("name one BATCH_ID, or pass --all for every batch of the workspace")


def pause(
    batch_id: OptionalBatchId = None,
    all_batches: AllBatches = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Pause a batch (or, with --all, the workspace): no new dial starts; live calls run to
    their end. `dialbatch resume` goes on where it stopped."""
    _target(batch_id, all_batches)
    with _client(url, api_key, workspace) as client:
        if batch_id is None:
            ws = client.pause_workspace()
            console.print(f"[bold]{ws['workspaceId']}[/bold] paused: {escape(ws['message'])}")
            return
        result = client.pause_batch(batch_id)
    console.print(f"[bold]{batch_id}[/bold] {result['status']}: {escape(result['message'])}")


def resume(
    batch_id: OptionalBatchId = None,
    all_batches: AllBatches = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Resume a paused batch (or, with --all, the workspace)."""
    _target(batch_id, all_batches)
    with _client(url, api_key, workspace) as client:
        if batch_id is None:
            ws = client.resume_workspace()
            console.print(f"[bold]{ws['workspaceId']}[/bold] resumed: {escape(ws['message'])}")
            return
        result = client.resume_batch(batch_id)
    console.print(f"[bold]{batch_id}[/bold] {result['status']}: {escape(result['message'])}")


def limits(
    batch_id: BatchId,
    max_concurrency: Annotated[
        int | None,
        typer.Option("--max-concurrency", min=1, help="At most this many of its calls live."),
    ] = None,
    no_max_concurrency: Annotated[
        bool,
        typer.Option("--no-max-concurrency", help="Drop its own cap (the workspace's only)."),
    ] = False,
    priority: Annotated[
        int | None,
        typer.Option("--priority", min=-100, max=100, help="-100 to 100, higher first."),
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Change a running batch's maxConcurrency and/or priority; the next claim applies them."""
    if max_concurrency is not None and no_max_concurrency:
        _fail("give --max-concurrency or --no-max-concurrency, not both")
    if max_concurrency is None and not no_max_concurrency and priority is None:
        _fail("nothing to change: give --max-concurrency, --no-max-concurrency or --priority")
    with _client(url, api_key, workspace) as client:
        result = client.update_batch(
            batch_id,
            max_concurrency=max_concurrency,
            priority=priority,
            remove_max_concurrency=no_max_concurrency,
        )
    cap = result["maxConcurrency"]
    console.print(
        f"[bold]{batch_id}[/bold] maxConcurrency {cap if cap is not None else 'none'}, "
        f"priority {result['priority']}: {escape(result['message'])}"
    )


def retry_failed(
    batch_id: Annotated[str, typer.Argument(metavar="BATCH_ID", help="The batch to retry.")],
    outcome: Annotated[
        list[str] | None,
        typer.Option(
            "--outcome",
            help="Only calls whose last dial ended so: busy, no-answer, voicemail, failed, "
            "canceled (repeatable).",
        ),
    ] = None,
    error_contains: Annotated[
        str | None, typer.Option("--error-contains", help="Only calls whose error has this text.")
    ] = None,
    idempotency_key: IdempotencyKey = None,
    watch_after: Annotated[
        bool, typer.Option("--watch", help="Then watch the new batch until it is complete.")
    ] = False,
    interval: Interval = 1.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the new id.")] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Call a batch's failed numbers again: a new batch of them, with their original row
    variables, the same agent and callback settings."""
    with _client(url, api_key, workspace) as client:
        started = client.retry_failed(
            batch_id,
            outcome=outcome or None,
            error_contains=error_contains,
            idempotency_key=idempotency_key,
        )
        new_id = started["batchId"]
        if quiet:
            typer.echo(new_id)
        else:
            console.print(
                f"[bold]{new_id}[/bold] {started['status']}: {escape(started['message'])}"
            )
        if watch_after:
            _watch(client, new_id, interval)


def call(
    batch_id: BatchId,
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID", help="The call's jobId.")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Show one call and every dial it took: when, how it ended, the provider's code and
    the caller number used (its attempt history)."""
    with _client(url, api_key, workspace) as client:
        detail = client.get_call(batch_id, job_id)
    line = f"[bold]{escape(detail['jobId'])}[/bold] {escape(detail['phone_number'])}"
    console.print(f"{line} {detail['status']}")
    if detail.get("error"):
        console.print(escape(str(detail.get("error"))))
    history = detail.get("attemptHistory") or []
    if not history:
        console.print("Not dialed yet.")
        return
    table = Table()
    for name in ("#", "Started (UTC)", "Ended (UTC)", "Outcome", "Talk", "Code", "From"):
        table.add_column(name)
    for a in history:
        talk = "" if a["duration"] is None else f"{a['duration']:.1f} s"
        table.add_row(
            str(a["attempt"]),
            _iso_time(a["startTime"]),
            _iso_time(a["endTime"]),
            a["outcome"] or "(live)",
            talk,
            escape(a["providerCode"] or ""),
            escape(a["fromNumber"] or ""),
        )
    console.print(table)


def failure_stop(
    off: Annotated[bool, typer.Option("--off", help="Never pause batches by themselves.")] = False,
    default: Annotated[
        bool, typer.Option("--default", help="Back to the default rule (10 of the last 20).")
    ] = False,
    last_dials: Annotated[
        int | None, typer.Option("--last-dials", help="How many of the latest dials to weigh.")
    ] = None,
    failed_share: Annotated[
        float | None,
        typer.Option("--failed-share", help="The share of them that must have failed (0-1]."),
    ] = None,
    within: Annotated[
        int | None, typer.Option("--within", help="Only dials that ended this many seconds ago.")
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Show or set the workspace's automatic stop on failure spikes: a batch pauses itself
    when too many of its latest dials failed at the network or provider. With no option,
    shows the rule. Batches created with their own rule keep it."""
    given = {
        k: v
        for k, v in (
            ("lastDials", last_dials),
            ("failedShare", failed_share),
            ("withinSeconds", within),
        )
        if v is not None
    }
    if default and (off or given):
        _fail("--default cannot be combined with other options")
    with _client(url, api_key, workspace) as client:
        if default:
            rule = client.set_failure_stop(None)["failureStop"]
        elif off or given:
            rule = client.set_failure_stop({**given, **({"enabled": False} if off else {})})[
                "failureStop"
            ]
        else:
            rule = client.get_workspace()["failureStop"]
    if not rule["enabled"]:
        console.print("Automatic stop on failure spikes: off")
        return
    console.print(
        f"Automatic stop on failure spikes: a batch pauses itself when at least "
        f"{rule['failedShare']:g} of its last {rule['lastDials']} dials failed at the network "
        f"or provider within {rule['withinSeconds']} s"
    )


def caps(
    per_24h: Annotated[
        int | None, typer.Option("--per-24h", min=1, help="Dials per number per 24 hours.")
    ] = None,
    per_30d: Annotated[
        int | None, typer.Option("--per-30d", min=1, help="Dials per number per 30 days.")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the caps.")] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Show or set the workspace's frequency caps: at most N dials to one number, across
    every batch (extension). With no option, shows them."""
    with _client(url, api_key, workspace) as client:
        if clear:
            if per_24h is not None or per_30d is not None:
                _fail("--clear takes no cap")
            shown = client.set_frequency_caps()["frequencyCaps"]
        elif per_24h is not None or per_30d is not None:
            shown = client.set_frequency_caps(per_24h, per_30d)["frequencyCaps"]
        else:
            shown = client.get_workspace().get("frequencyCaps")
    if not shown:
        console.print("no frequency caps")
        return
    parts = []
    if "per24h" in shown:
        parts.append(f"{shown['per24h']} per 24 hours")
    if "per30d" in shown:
        parts.append(f"{shown['per30d']} per 30 days")
    console.print("frequency caps: at most " + ", ".join(parts) + " to one number")


def consent(
    require: Annotated[
        bool | None,
        typer.Option(
            "--require/--no-require",
            help="Every batch refuses rows without consent_basis and consent_at, or only "
            "batches submitted with --require-consent.",
        ),
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Show or set whether the workspace requires consent on every row (extension): a floor
    under each batch's own --require-consent. With no option, shows it."""
    with _client(url, api_key, workspace) as client:
        if require is None:
            required = bool(client.get_workspace().get("requireConsent"))
        else:
            required = client.set_require_consent(require)["requireConsent"]
    if required:
        console.print(
            "consent required: every batch refuses rows without consent_basis and consent_at"
        )
    else:
        console.print("consent not required (a batch may ask for it: submit --require-consent)")


def settings(
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="The compliance profile every batch obeys at least: none, us or ca "
            "(docs/compliance.md). Applies to running batches at their next dial.",
        ),
    ] = None,
    window_file: Annotated[
        str | None,
        typer.Option(
            "--window-file",
            help="A JSON file with the default callingWindow of batches that have none.",
        ),
    ] = None,
    clear_window: Annotated[
        bool, typer.Option("--clear-window", help="Remove the default calling window.")
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Show or change the workspace's dialing rules (extension): its compliance profile and
    its default calling window. With no option, shows them and the frequency caps."""
    if clear_window and window_file is not None:
        _fail("--clear-window and --window-file exclude each other")
    window = window_from_file(window_file)
    with _client(url, api_key, workspace) as client:
        if profile is not None:
            client.set_compliance_profile(profile)
        if window is not None or clear_window:
            client.set_default_calling_window(window)
        shown = client.get_workspace()
    console.print(f"compliance profile: {shown.get('complianceProfile', 'none')}")
    default = shown.get("callingWindow")
    console.print("default calling window: " + (escape(json.dumps(default)) if default else "none"))
    caps_shown = shown.get("frequencyCaps")
    console.print(f"frequency caps: {escape(json.dumps(caps_shown)) if caps_shown else 'none'}")


def _parse_limit(raw: str) -> tuple[str, dict[str, int]]:
    """`+12125550100=callsPerSecond:1,perDay:500` -> (number, limits)."""
    number, sep, rest = raw.partition("=")
    if not sep or not number.strip() or not rest.strip():
        _fail(f"--limit {raw!r}: write NUMBER=callsPerSecond:N,perDay:M")
    limits: dict[str, int] = {}
    for part in rest.split(","):
        key, sep, value = part.partition(":")
        if not sep or not value.strip().lstrip("-").isdigit():
            _fail(f"--limit {raw!r}: {part!r} is not NAME:WHOLE_NUMBER")
        limits[key.strip()] = int(value)
    return number.strip(), limits


def caller_numbers(
    agent_id: Annotated[str, typer.Argument(metavar="AGENT_ID", help="The agent.")],
    numbers: Annotated[
        list[str] | None,
        typer.Option(
            "--number",
            "-n",
            help="Replace the pool with these caller numbers, in order (repeatable).",
        ),
    ] = None,
    limit: Annotated[
        list[str] | None,
        typer.Option(
            "--limit",
            help="A number's own limits: NUMBER=callsPerSecond:N,perDay:M (repeatable; "
            "replaces every limit).",
        ),
    ] = None,
    no_limits: Annotated[
        bool, typer.Option("--no-limits", help="Remove every number's own limits.")
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Show an agent's pool of caller numbers (rotation, local presence, per-number limits)
    and its warnings; with --number and/or --limit, change it first."""
    if limit and no_limits:
        _fail("give --limit or --no-limits, not both")
    limits = dict(_parse_limit(x) for x in limit or []) if limit else ({} if no_limits else None)
    with _client(url, api_key, workspace) as client:
        if numbers is not None or limits is not None:
            agent = client.set_caller_numbers(
                agent_id, from_numbers=numbers, caller_number_limits=limits
            )
        else:
            agent = client.get_agent(agent_id)
    table = Table("caller number", "calls/s", "per day", "local to")
    for n in agent["fromNumbers"]:
        own = agent["callerNumberLimits"].get(n, {})
        table.add_row(
            n,
            str(own.get("callsPerSecond", "-")),
            str(own.get("perDay", "-")),
            local_key(n) or "-",
        )
    console.print(f"[bold]{agent['id']}[/bold] {escape(agent['name'])}")
    if agent["fromNumbers"]:
        console.print(table)
    else:
        console.print("no caller numbers: dials show the provider's default")
    for warning in agent["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
