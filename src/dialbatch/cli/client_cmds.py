"""Client commands (submit, watch, status, cancel, export, batches): they speak to a running
server over HTTP through `dialbatch.client`, so they work against any dialbatch server.

Connection: `--url`, `--api-key`, `--workspace`, or `DIALBATCH_URL`, `DIALBATCH_API_KEY`,
`DIALBATCH_WORKSPACE_ID`. A refusal prints the server's message and exits with 1.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from dialbatch.client import Client, CsvSource, DialbatchError
from dialbatch.client.types import Batch, BatchProgress, GateCounts, ValidateResult
from dialbatch.client.types import Progress as Counts

DEFAULT_URL = "http://127.0.0.1:8000"
MAX_PROBLEMS_SHOWN = 20
EXIT_INTERRUPTED = 130

console = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

Url = Annotated[str, typer.Option("--url", envvar="DIALBATCH_URL", help="Server URL.")]
ApiKey = Annotated[
    str,
    typer.Option(
        "--api-key", envvar="DIALBATCH_API_KEY", help="API key (x-api-key).", show_default=False
    ),
]
WorkspaceId = Annotated[
    str,
    typer.Option(
        "--workspace", envvar="DIALBATCH_WORKSPACE_ID", help="Workspace id (x-workspace-id)."
    ),
]
Interval = Annotated[
    float, typer.Option("--interval", min=0.01, help="Seconds between progress reads.")
]
BatchId = Annotated[
    str, typer.Argument(metavar="BATCH_ID", help="The batch id, as `submit` printed it.")
]


def register(app: typer.Typer) -> None:
    """Add the client commands to the `dialbatch` command."""
    for command in (submit, watch, status, cancel, export, batches):
        app.command()(command)


def submit(
    file: Annotated[
        str,
        typer.Argument(
            metavar="FILE", help="The CSV: a phone_number column; other columns become metadata."
        ),
    ],
    agent: Annotated[str, typer.Option("--agent", help="Id of the agent that makes the calls.")],
    scheduled_at: Annotated[
        str | None,
        typer.Option(
            "--scheduled-at",
            help="Start later: 2025-01-31T09:00:00Z, a time with an offset, or epoch ms.",
        ),
    ] = None,
    default_country: Annotated[
        str | None,
        typer.Option("--default-country", help="Country (ISO code, e.g. US) of numbers without +."),
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Leave invalid rows out; queue the rest.")
    ] = False,
    dedupe: Annotated[
        bool, typer.Option("--dedupe", help="Drop rows whose number repeats an earlier row.")
    ] = False,
    require_consent: Annotated[
        bool,
        typer.Option(
            "--require-consent",
            help="Refuse rows without consent_basis and consent_at (extension; the "
            "workspace's setting may require it anyway).",
        ),
    ] = False,
    callback_json: Annotated[
        str | None,
        typer.Option(
            "--callback-json",
            help='smartCallbackConfig: {"enabled": true, "maxAttempts": 3, "gaps": [{"hours": 4}]}',
        ),
    ] = None,
    failure_stop_json: Annotated[
        str | None,
        typer.Option(
            "--failure-stop",
            help='When the batch pauses itself on a failure spike (extension): {"lastDials": '
            '20, "failedShare": 0.5, "withinSeconds": 120} or {"enabled": false}.',
        ),
    ] = None,
    retry_policy_json: Annotated[
        str | None,
        typer.Option(
            "--retry-policy",
            metavar="FILE|JSON",
            help='The retry rule per outcome (extension), inline or in a file: {"busy": '
            '{"maxDials": 3, "gapsSeconds": [60, 120]}, "voicemail": false}. See docs/retries.md.',
        ),
    ] = None,
    window_file: Annotated[
        str | None,
        typer.Option(
            "--window-file",
            help="A JSON file with the batch's callingWindow (extension; docs/compliance.md): "
            'when, in each recipient\'s own time, a call may start, e.g. {"days": {"mon": '
            '[["09:00", "17:00"]]}}. Default: the workspace\'s window, if any.',
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="The batch's complianceProfile (extension): none, us or ca; at least as "
            "strict as the workspace's. Default: the workspace's.",
        ),
    ] = None,
    max_concurrency: Annotated[
        int | None,
        typer.Option(
            "--max-concurrency",
            min=1,
            help="At most this many of the batch's calls live at once (extension; default: "
            "only the workspace's cap).",
        ),
    ] = None,
    priority: Annotated[
        int | None,
        typer.Option(
            "--priority",
            min=-100,
            max=100,
            help="-100 to 100 (extension; default 0): the workspace's higher-priority batches "
            "are dialed first; equal priorities share.",
        ),
    ] = None,
    watch_after: Annotated[
        bool, typer.Option("--watch", help="Then watch the batch until it is complete.")
    ] = False,
    interval: Interval = 1.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the batch id.")] = False,
    rows_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='FILE is JSON rows, [{"phone_number": ..., ...}] or {"calls": [...]}, sent '
            "as a JSON body (extension) instead of a CSV upload.",
        ),
    ] = False,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            help="Sent as Idempotency-Key: repeating the command within 24 h makes no second "
            "batch (extension).",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check FILE and estimate the run, creating nothing (extension): row counts "
            "and problems, time zones, and when the batch would finish.",
        ),
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Start a batch: upload FILE (- for stdin) and queue one call per row."""
    callback = _callback_config(callback_json)
    stop = _callback_config(failure_stop_json, "--failure-stop")
    retry_policy = _json_arg(retry_policy_json, "--retry-policy")
    source = _csv_source(file)
    with _client(url, api_key, workspace) as client:
        options: dict[str, Any] = {
            "scheduled_at": scheduled_at,
            "smart_callback": callback,
            "default_country": default_country,
            "skip_invalid": skip_invalid,
            "dedupe": dedupe,
            "idempotency_key": idempotency_key,
            "failure_stop": stop,
            "retry_policy": retry_policy,
            "require_consent": require_consent,
            "calling_window": window_from_file(window_file),
            "compliance_profile": profile,
            "max_concurrency": max_concurrency,
            "priority": priority,
        }
        if dry_run:
            del options["idempotency_key"]
            if rows_json:
                checked = client.validate_rows(_json_rows(source), agent, **options)
            else:
                checked = client.validate_batch(source, agent, **options)
            _print_preview(checked)
            if not checked["valid"]:
                raise typer.Exit(1)
            return
        if rows_json:
            started = client.create_batch_from_rows(_json_rows(source), agent, **options)
        else:
            started = client.start_batch(source, agent, **options)
        batch_id = started["batchId"]
        if quiet:
            typer.echo(batch_id)
        else:
            console.print(
                f"[bold]{batch_id}[/bold] {started['status']}: {escape(started['message'])}"
            )
            _print_left_out(
                started.get("skippedRows", []),
                started.get("skipped", 0),
                started.get("duplicatesRemoved", 0),
            )
        if watch_after:
            _watch(client, batch_id, interval)


def watch(
    batch_id: BatchId,
    interval: Interval = 1.0,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Show a batch's progress until it is complete. Ctrl-C stops watching, not the batch."""
    with _client(url, api_key, workspace) as client:
        _watch(client, batch_id, interval)


def status(
    batch_id: BatchId,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Show a batch's status and counts."""
    with _client(url, api_key, workspace) as client:
        batch = client.get_batch(batch_id)
        stalled = _open(batch) and not _workers_alive(client)
    p = batch["progress"]
    rows: list[tuple[str, object]] = [
        ("Batch", batch["id"]),
        ("Status", batch["status"] + (" (complete)" if batch["isComplete"] else "")),
        ("Agent", batch.get("agentId")),
        ("Calls", batch["totalCalls"]),
        ("Waiting", p["waiting"]),
        ("Active", p["active"]),
        ("Completed", p["completed"]),
        ("Failed", p["failed"]),
        ("Cancelled", p.get("cancelled")),
        ("Average call", f"{p['averageCallDuration']:.1f} s"),
        ("Created", _iso_time(batch.get("createdAt"))),
        ("Scheduled for", _iso_time(_scheduled(batch.get("scheduledAt"), batch.get("createdAt")))),
        ("Started", _iso_time(p["startTime"])),
        ("Last completed", _iso_time(p["lastCompletedTime"])),
        ("Finished", _iso_time(p["completedTime"])),
        ("Cancelled at", _iso_time(batch.get("cancelledAt"))),
        # extensions
        ("Paused at", _iso_time(batch.get("pausedAt"))),
        ("Pause reason", batch.get("pauseReason")),
        ("Workspace", "paused" if batch.get("workspacePaused") else None),
        ("Max concurrency", batch.get("maxConcurrency")),
        ("Priority", batch.get("priority") or None),
        ("Retry of", batch.get("parentBatchId")),
        ("Retried as", ", ".join(batch.get("retryBatchIds") or [])),
        ("Gate", _gate_line(batch.get("gate"))),
    ]
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for name, value in rows:
        if value not in (None, ""):
            table.add_row(name, escape(str(value)))
    console.print(table)
    if stalled:
        err.print(
            "[yellow]warning:[/yellow] no worker has been seen in the last minute, so this "
            "batch's waiting calls are not being dialed; start one with `dialbatch worker` "
            "(or `dialbatch serve` without --no-dispatch)"
        )


def _gate_line(gate: GateCounts | None) -> str | None:
    """The gate summary in words, or None when the gate holds nothing back."""
    if not gate:
        return None
    parts = []
    if gate["waitingForWindow"]:
        parts.append(f"{gate['waitingForWindow']} waiting for their calling window")
    if gate["waitingForCap"]:
        parts.append(f"{gate['waitingForCap']} waiting for a frequency cap")
    parts += [f"{n} refused ({kind})" for kind, n in gate["refused"].items()]
    return ", ".join(parts) or None


def _open(batch: Batch) -> bool:
    """The batch still has calls to dial (now or at its scheduled time)."""
    waiting = batch["progress"]["waiting"]
    return batch["status"] in ("queued", "processing") and waiting > 0


def _workers_alive(client: Client) -> bool:
    """Whether /readyz lists a live worker; a server that does not say counts as yes."""
    try:
        ready = client.readiness()
    except (DialbatchError, httpx.HTTPError):
        return True
    workers = ready.get("workers")
    return not isinstance(workers, list) or bool(workers)


def cancel(
    batch_id: BatchId,
    hangup_active: Annotated[
        bool,
        typer.Option(
            "--hangup-active", help="Also hang up the calls that are live now (they end failed)."
        ),
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Cancel a batch: waiting calls are never dialed; active calls run to their end,
    unless --hangup-active hangs them up."""
    with _client(url, api_key, workspace) as client:
        result = client.cancel_batch(batch_id, hangup_active=hangup_active)
    d = result["details"]
    console.print(
        f"[bold]{result['batchId']}[/bold] {result['status']}: {escape(result['message'])}"
    )
    console.print(
        f"{d['completedCalls']} completed, {d['failedCalls']} failed, "
        f"{d['cancelledCalls']} cancelled of {d['totalCalls']} calls"
    )
    if "hungUpCalls" in result:
        console.print(f"{result['hungUpCalls']} live call(s) being hung up")


def export(
    batch_id: BatchId,
    output: Annotated[
        str, typer.Option("--output", "-o", help="The file to write; - for stdout.")
    ] = "-",
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="csv (one column per CSV column) or jsonl (one JSON object a line)."
        ),
    ] = "csv",
    call_status: Annotated[
        str,
        typer.Option(
            "--status", help="all, or one call status: waiting, active, completed, failed, ..."
        ),
    ] = "all",
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """Write every call of a batch with its result, one row per call, as the server streams it.

    Columns: jobId, phone_number, status, startTime, endTime (epoch ms), duration (s),
    attempts, error, and the result's outcome, transcript, summary and data; then one
    column per column of the uploaded CSV. In CSV, a cell that a spreadsheet would run as
    a formula starts with ' (the phone numbers' + among them).
    """
    with _client(url, api_key, workspace) as client:
        chunks = client.iter_export(batch_id, format=fmt, status=call_status)
        first = next(chunks, b"")  # a refusal surfaces before any file is created
        rows = RowCounter(csv_header=fmt.strip().lower() == "csv")
        with _output(output) as out:
            for chunk in itertools.chain([first], chunks):
                out.write(chunk)
                rows.feed(chunk)
    where = "stdout" if output == "-" else output
    err.print(f"exported {rows.count} calls of {batch_id} to {escape(where)}")


def batches(
    page: Annotated[int, typer.Option(min=1, help="Page, 1 for the newest.")] = 1,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Batches per page.")] = 20,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    workspace: WorkspaceId = "",
) -> None:
    """List the workspace's batches, newest first."""
    with _client(url, api_key, workspace) as client:
        listing = client.list_batches(page=page, limit=limit)
    table = Table(box=None)
    table.add_column("Batch", no_wrap=True, min_width=22)
    table.add_column("Status", no_wrap=True)
    table.add_column("Calls", no_wrap=True, justify="right")
    table.add_column("Created (UTC)", no_wrap=True)
    table.add_column("Starts (UTC)", no_wrap=True)
    for b in listing["batches"]:
        table.add_row(
            b["id"],
            b["status"],
            str(b["totalCalls"]),
            _minutes(b["createdAt"]),
            _minutes(_scheduled(b["scheduledAt"], b["createdAt"])),
        )
    console.print(table)
    pages = listing["pagination"]
    console.print(
        f"page {pages['page']} of {max(pages['totalPages'], 1)}, {pages['total']} batches"
    )


# -- export -------------------------------------------------------------------------------


class RowCounter:
    """Counts the records of a CSV or JSON Lines stream as it passes, chunk by chunk: a
    record ends at a newline outside quotes (a transcript may span lines inside its
    quotes; an escaped quote `""` flips the state twice)."""

    def __init__(self, *, csv_header: bool) -> None:
        self._lines = -1 if csv_header else 0
        self._quoted = False

    def feed(self, chunk: bytes) -> None:
        pieces = chunk.split(b"\n")
        for piece in pieces[:-1]:
            self._quoted ^= bool(piece.count(b'"') & 1)
            if not self._quoted:
                self._lines += 1
        self._quoted ^= bool(pieces[-1].count(b'"') & 1)

    @property
    def count(self) -> int:
        return max(self._lines, 0)


@contextmanager
def _output(target: str) -> Iterator[IO[bytes]]:
    """stdout for `-`; otherwise a file that appears only once complete."""
    if target == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    path = Path(target)
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


# -- shared -------------------------------------------------------------------------------


@contextmanager
def _client(url: str, api_key: str, workspace: str) -> Iterator[Client]:
    """A client; a refusal or a network failure ends the command with its message."""
    if not api_key:
        _fail("no API key: set DIALBATCH_API_KEY or pass --api-key")
    if not workspace:
        _fail("no workspace: set DIALBATCH_WORKSPACE_ID or pass --workspace")
    try:
        with Client(url, api_key, workspace) as client:
            yield client
    except DialbatchError as exc:
        _fail(exc.message, [*_problem_lines(exc.body), *_accept_lines(exc.body)])
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        _fail(f"cannot reach {url}: {exc or type(exc).__name__}")
    except OSError as exc:
        _fail(str(exc))


def _fail(message: str, details: Sequence[str] = ()) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}")
    for line in details:
        err.print(f"  {escape(line)}")
    raise typer.Exit(1)


def _problem_lines(body: Any) -> list[str]:
    """The row problems of a refused CSV, as lines (the first few)."""
    if not isinstance(body, dict) or not isinstance(body.get("problems"), list):
        return []
    problems = body["problems"]
    lines = [_describe_problem(p) for p in problems[:MAX_PROBLEMS_SHOWN]]
    count = body.get("problemCount", len(problems))
    if isinstance(count, int) and count > len(lines):
        lines.append(f"... and {count - len(lines)} more")
    return lines


_ACCEPT_FLAGS = {
    "dedupe": "--dedupe",
    "skipInvalid": "--skip-invalid",
    "defaultCountry": "--default-country <ISO code, e.g. US>",
}


def _accept_lines(body: Any) -> list[str]:
    """The submit options that would accept a refused CSV (the server's acceptWith)."""
    accept = body.get("acceptWith") if isinstance(body, dict) else None
    if not isinstance(accept, list) or not accept:
        return []
    flags = [_ACCEPT_FLAGS.get(str(a), str(a)) for a in accept]
    return ["to accept the file, submit again with: " + " or ".join(flags)]


def _describe_problem(problem: Any) -> str:
    if not isinstance(problem, dict):
        return str(problem)
    where = f"row {problem.get('row')}"
    if problem.get("column"):
        where += f", column {problem['column']}"
    value = f" (value {problem['value']!r})" if problem.get("value") is not None else ""
    return f"{where}: {problem.get('reason') or problem.get('message') or 'invalid'}{value}"


def _print_left_out(rows: Sequence[Any], skipped: int, duplicates: int) -> None:
    """The rows `--skip-invalid` and `--dedupe` left out (duplicates are among them)."""
    if not skipped:
        return
    among = f", {duplicates} of them duplicate(s)" if duplicates else ""
    console.print(f"left out {skipped} row(s){among}:")
    for line in _problem_lines({"problems": list(rows), "problemCount": skipped}):
        console.print(f"  {escape(line)}")


def _print_preview(v: ValidateResult) -> None:
    """What `submit --dry-run` shows: the verdict, the counts, the first problems, the time
    zones and the estimate."""
    console.print(("[green]" if v["valid"] else "[red]") + escape(v["message"]) + "[/]")
    console.print(
        f"Rows: {v['totalRows']}  valid: {v['validRows']}  invalid: {v['invalidRows']}  "
        f"repeated: {v['duplicateRows']}"
        + (f"  suppressed: {v['suppressedRows']}" if v.get("suppressedRows") else "")
    )
    for line in [_describe_problem(p) for p in v["problems"][:MAX_PROBLEMS_SHOWN]]:
        console.print(f"  {escape(line)}")
    if v["problemCount"] > MAX_PROBLEMS_SHOWN:
        console.print(f"  ... {v['problemCount'] - MAX_PROBLEMS_SHOWN} more")
    zones = ", ".join(f"{' or '.join(z['zones'])}: {z['calls']}" for z in v["timeZones"][:8])
    if len(v["timeZones"]) > 8:
        zones += f", {len(v['timeZones']) - 8} more"
    if v["unknownTimeZone"]:
        zones += f"{', ' if zones else ''}unknown: {v['unknownTimeZone']}"
    console.print(f"Time zones: {escape(zones) or '-'}")
    if v.get("outsideWindowAtStart") or v.get("windowCannotPlace"):
        console.print(
            f"Calling window at the start: {v.get('outsideWindowAtStart', 0)} calls wait for "
            f"it to open, {v.get('windowCannotPlace', 0)} have no known time zone and would "
            "not be dialed"
        )
    e = v["estimate"]
    basis = (
        f"the agent's last {e['historyDials']} dials"
        if e["callSecondsFrom"] == "history"
        else "a default, the agent has no dials yet"
    )
    console.print(
        f"Estimate: {_duration(e['durationSeconds'])}, finishing about "
        f"{_iso_time(e['finishAt'])} at {e['callsPerSecond']:g} calls/s (limited by "
        f"{e['limitedBy']}: {e['maxConcurrentCalls']} at once, "
        f"{e['workspaceCallsPerSecond']:g}/s; a call lasts {e['callSeconds']:g} s, from {basis})"
    )


def _duration(seconds: float) -> str:
    minutes, s = divmod(round(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m} min" if hours else f"{m} min {s} s" if m else f"{s} s"


def _callback_config(raw: str | None, option: str = "--callback-json") -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        _fail(f"{option} is not valid JSON: {exc.msg}")
    if not isinstance(config, dict):
        _fail(f"{option} must be a JSON object")
    return config


def _json_arg(raw: str | None, option: str) -> dict[str, Any] | None:
    """A JSON object given inline (it starts with `{`) or as the path of a file holding it."""
    if raw is None:
        return None
    text = raw
    if not raw.lstrip().startswith("{"):
        try:
            text = Path(raw).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"{option}: not inline JSON, and the file cannot be read: {exc}")
    return _callback_config(text, option)


def window_from_file(path: str | None) -> dict[str, Any] | None:
    """A calling window read from a JSON file (checked by the server: 400 naming the field)."""
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        _fail(f"no such file: {path}")
    try:
        window = json.loads(file.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        _fail(f"{path} is not valid JSON: {exc}")
    if not isinstance(window, dict):
        _fail(f'{path} must hold a JSON object such as {{"days": {{"mon": [["09:00", "17:00"]]}}}}')
    return window


def _json_rows(source: CsvSource) -> list[dict[str, Any]]:
    """The rows of a --json FILE: an array of objects, or an object with `calls`."""
    raw = source if isinstance(source, bytes) else Path(str(source)).read_bytes()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        _fail(f"the file is not valid JSON: {exc}")
    if isinstance(data, dict):
        data = data.get("calls")
    if not isinstance(data, list):
        _fail('the JSON file must be an array of rows, or an object with "calls": [...]')
    return data


def _csv_source(file: str) -> CsvSource:
    if file == "-":
        return sys.stdin.buffer.read()
    path = Path(file)
    if not path.is_file():
        _fail(f"no such file: {file}")
    return path


def _scheduled(scheduled_at: int | None, created_at: int | None) -> int | None:
    """The scheduled start, when the batch was given one (unscheduled batches start when
    created, and dialbatch reports that time as their `scheduledAt`)."""
    if scheduled_at is None or created_at is None or scheduled_at <= created_at:
        return None
    return scheduled_at


def _minutes(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _iso_time(ms: int | None, timespec: str = "seconds") -> str:
    """Epoch milliseconds as ISO 8601 UTC (`2025-01-31T09:00:00Z`); "" for None."""
    if ms is None:
        return ""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")


# -- watch --------------------------------------------------------------------------------


def _watch(client: Client, batch_id: str, interval: float) -> None:
    batch = client.get_batch(batch_id)
    scheduled = batch.get("scheduledAt")
    if not batch["isComplete"] and scheduled and scheduled > batch["timestamp"]:
        console.print(f"{batch_id} is scheduled for {_iso_time(scheduled)}")
    bar = Progress(
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        TextColumn("left"),
        TimeElapsedColumn(),
        TextColumn("elapsed"),
        console=console,
        speed_estimate_period=60,
    )
    task = bar.add_task(batch["status"], total=batch["totalCalls"])
    started = time.monotonic()
    counts = Text()

    def show(p: BatchProgress) -> None:
        bar.update(task, total=p["total"], completed=_finished(p), description=p["status"])
        counts.plain = _counts(p)

    try:
        # Transient: the summary line below replaces the display (and off a terminal, it is
        # all that is printed).
        with Live(Group(bar, counts), console=console, refresh_per_second=4, transient=True):
            final = client.wait(batch_id, poll_interval=interval, on_progress=show)
    except KeyboardInterrupt:
        err.print(f"stopped watching; {batch_id} keeps running (`dialbatch cancel {batch_id}`)")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    console.print(
        f"[bold]{batch_id}[/bold] {final['status']}: {final['total']} calls, {_counts(final)}"
    )
    finished, seconds = _finished(final), time.monotonic() - started
    if finished and seconds > 0:
        console.print(f"watched {seconds:.0f} s; {_rate(finished / seconds)}")


class RateColumn(ProgressColumn):
    """Calls finished per second (over the last minute), as the bar advances."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- calls/s" if speed is None else _rate(speed), style="progress.data.speed")


def _rate(per_second: float) -> str:
    if per_second >= 1 or per_second == 0:
        return f"{per_second:.1f} calls/s"
    return f"{per_second * 60:.1f} calls/min"


def _finished(p: Counts) -> int:
    return p["completed"] + p["failed"] + p.get("cancelled", 0)


def _counts(p: Counts) -> str:
    return (
        f"waiting {p['waiting']}, active {p['active']}, completed {p['completed']}, "
        f"failed {p['failed']}, cancelled {p.get('cancelled', 0)}, "
        f"average {p['averageCallDuration']:.1f} s"
    )
