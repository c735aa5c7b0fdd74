"""`dialbatch`: run the server or a worker, migrate, and manage workspaces, keys and agents."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from dialbatch import logs
from dialbatch.cli import _help  # noqa: F401  (flags without <bool> in --help)
from dialbatch.settings import Settings
from dialbatch.store import migrate as migrations
from dialbatch.store import workspaces
from dialbatch.store.engine import Database

app = typer.Typer(
    help="dialbatch: batch outbound calling for AI voice agents.", no_args_is_help=True
)
workspaces_app = typer.Typer(help="Manage workspaces.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
agents_app = typer.Typer(help="Manage agents.", no_args_is_help=True)
app.add_typer(workspaces_app, name="workspaces")
app.add_typer(keys_app, name="keys")
app.add_typer(agents_app, name="agents")

console = Console(soft_wrap=True)  # never break a key or a URL across lines
err = Console(stderr=True)
T = TypeVar("T")
log = logging.getLogger("dialbatch.worker")
LogFormatOption = Annotated[
    logs.LogFormat | None,
    typer.Option(help="Log lines as text or JSON objects (DIALBATCH_LOG_FORMAT)"),
]


def _with_db(fn: Callable[[Database], Awaitable[T]]) -> T:
    settings = Settings()
    migrations.upgrade(settings.effective_database_url)

    async def run() -> T:
        db = Database(settings.effective_database_url)
        try:
            return await fn(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (DIALBATCH_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (DIALBATCH_PORT)")] = None,
    dispatch: Annotated[
        bool | None,
        typer.Option("--dispatch/--no-dispatch", help="Also run a dispatcher (DIALBATCH_DISPATCH)"),
    ] = None,
    log_format: LogFormatOption = None,
) -> None:
    """Apply migrations, bootstrap the demo workspace, and serve the API (and dispatcher)."""
    import uvicorn

    from dialbatch.bootstrap import cli_lines, curl_lines, ensure_demo, profile_line
    from dialbatch.server import Runtime, settle_heap

    settings = Settings()
    host = host or settings.host
    port = port or settings.port
    dispatch = settings.dispatch if dispatch is None else dispatch
    # Bound first: a port in use fails here, before a key and curl lines that could not
    # work are printed.
    sock = _bind(host, port)
    fmt = _setup_logging(settings, log_format)
    migrations.ensure_schema(
        settings.effective_database_url, log_level=settings.log_level, log_format=fmt
    )

    async def bootstrap() -> Any:
        db = Database(settings.effective_database_url)
        try:
            return await ensure_demo(db, settings)
        finally:
            await db.dispose()

    demo = asyncio.run(bootstrap())
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    console.print(f"[bold]dialbatch[/bold] on {base}  (database: {_safe_url(settings)})")
    console.print(
        f"demo workspace [cyan]{demo.workspace_id}[/cyan], agent [cyan]{demo.agent_id}[/cyan], "
        f"API key [yellow]{demo.api_key}[/yellow]"
    )
    if not settings.demo_api_key:
        console.print(
            "(a fresh demo key is issued at every start; pin one with DIALBATCH_DEMO_API_KEY)"
        )
    console.print(profile_line(demo), highlight=False, soft_wrap=True, markup=False)
    console.print(curl_lines(demo, base), highlight=False, soft_wrap=True)
    console.print(cli_lines(demo, base), highlight=False, soft_wrap=True, markup=False)
    runtime = Runtime.build(settings, dispatch=dispatch)
    config = uvicorn.Config(
        runtime.app(),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=logs.uvicorn_log_config(settings.log_level, fmt),
    )
    settle_heap()
    _run_server(config, runtime.hurry, sock)


def _run_server(config: Any, hurry: Callable[[], None], sock: socket.socket) -> None:
    """uvicorn's server, except that a second Ctrl-C hurries the stop instead of skipping
    the application's shutdown (which places and records written intents and hands live
    calls over: skipping it could lose them). A third one is uvicorn's own."""
    import uvicorn

    class Server(uvicorn.Server):
        hurried = False

        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.should_exit and not self.hurried:
                self.hurried = True
                with contextlib.suppress(RuntimeError):  # no loop: nothing to hurry
                    asyncio.get_running_loop().call_soon_threadsafe(hurry)
                return
            super().handle_exit(sig, frame)

    Server(config).run(sockets=[sock])


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to host:port for the server; exits with a clear message if taken."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        reason = (
            "is already in use (another dialbatch serve?)"
            if getattr(exc, "errno", None) == errno.EADDRINUSE
            else f"cannot be bound: {exc.strerror or exc}"
        )
        _fail(f"port {port} on {host} {reason}; choose another with --port or DIALBATCH_PORT")
    sock.set_inheritable(True)
    return sock


def _setup_logging(settings: Settings, option: logs.LogFormat | None) -> logs.LogFormat:
    fmt: logs.LogFormat = option or settings.log_format
    logs.setup(settings.log_level, fmt)
    return fmt


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.effective_database_url).render_as_string(hide_password=True)


@app.command()
def worker(log_format: LogFormatOption = None) -> None:
    """Run a dispatcher only (no HTTP), against DIALBATCH_DATABASE_URL."""
    from dialbatch.server import Runtime, settle_heap

    settings = Settings()
    fmt = _setup_logging(settings, log_format)
    migrations.ensure_schema(
        settings.effective_database_url, log_level=settings.log_level, log_format=fmt
    )

    async def main() -> None:
        runtime = Runtime.build(settings, dispatch=True)
        stop = asyncio.Event()

        def on_signal() -> None:
            if stop.is_set():  # told twice: stop waiting for live calls (nothing is lost)
                log.info("stopping now; live calls are handed over", extra={"worker": owner})
                runtime.hurry()
            stop.set()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        if settings.metrics_port:
            from prometheus_client import start_http_server

            # A worker has no API: its counters are served on a port of their own.
            start_http_server(settings.metrics_port, addr=settings.host)
        await runtime.start()
        owner = runtime.dispatcher.owner
        log.info("worker started; SIGTERM drains and exits", extra={"worker": owner})
        await stop.wait()
        log.info("worker draining", extra={"worker": owner})
        await runtime.stop()
        log.info("worker stopped", extra={"worker": owner})

    settle_heap()
    asyncio.run(main())


@app.command()
def migrate() -> None:
    """Bring the database to the latest schema."""
    settings = Settings()
    migrations.upgrade(settings.effective_database_url)
    console.print(f"database at head: {_safe_url(settings)}")


@workspaces_app.command("create")
def workspaces_create(
    workspace_id: Annotated[str | None, typer.Option("--id", help="Workspace id")] = None,
    name: Annotated[str, typer.Option(help="Display name")] = "",
    max_concurrent_calls: Annotated[int, typer.Option(min=1)] = 10,
    calls_per_second: Annotated[float, typer.Option(min=0.01)] = 5.0,
) -> None:
    """Create a workspace and its first API key (shown once)."""

    async def run(db: Database) -> tuple[str, str]:
        async with db.write() as conn:
            if workspace_id and await workspaces.workspace_exists(conn, workspace_id):
                _fail(f"workspace {workspace_id!r} already exists")
            wid = await workspaces.create_workspace(
                conn,
                workspace_id=workspace_id,
                name=name,
                max_concurrent_calls=max_concurrent_calls,
                calls_per_second=calls_per_second,
            )
            _, secret = await workspaces.create_api_key(conn, wid, name="initial")
        return wid, secret

    wid, secret = _with_db(run)
    console.print(f"workspace: {wid}\napi key:   {secret}  (shown once; stored only as a hash)")


def _require_workspace(conn_exists: bool, workspace_id: str) -> None:
    if not conn_exists:
        _fail(f"no workspace {workspace_id!r}")


@keys_app.command("create")
def keys_create(
    workspace: Annotated[str, typer.Option("--workspace", "-w", help="Workspace id")],
    name: Annotated[str, typer.Option(help="A label for the key")] = "",
) -> None:
    """Create an API key (the secret is shown once)."""

    async def run(db: Database) -> tuple[str, str]:
        async with db.write() as conn:
            _require_workspace(await workspaces.workspace_exists(conn, workspace), workspace)
            return await workspaces.create_api_key(conn, workspace, name=name)

    key_id, secret = _with_db(run)
    console.print(f"key id:  {key_id}\napi key: {secret}  (shown once; stored only as a hash)")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id (not the secret)")]) -> None:
    """Revoke an API key; requests with it are refused from now on."""

    async def run(db: Database) -> bool:
        async with db.write() as conn:
            return await workspaces.revoke_api_key(conn, key_id)

    if not _with_db(run):
        _fail(f"no live key {key_id!r}")
    console.print(f"revoked {key_id}")


@keys_app.command("list")
def keys_list(workspace: Annotated[str, typer.Option("--workspace", "-w")]) -> None:
    """List a workspace's keys (ids and dates; secrets are never stored)."""

    async def run(db: Database) -> list[dict[str, Any]]:
        async with db.read() as conn:
            return await workspaces.list_api_keys(conn, workspace)

    for k in _with_db(run):
        state = "revoked" if k["revoked_at"] else "live"
        console.print(f"{k['id']}  {state:7}  {k['name']}")


@agents_app.command("create")
def agents_create(
    workspace: Annotated[str, typer.Option("--workspace", "-w")],
    name: Annotated[str, typer.Option()],
    provider: Annotated[str, typer.Option()] = "simulated",
    config: Annotated[str, typer.Option(help="providerConfig as JSON")] = "{}",
    agent_id: Annotated[str | None, typer.Option("--id")] = None,
) -> None:
    """Create an agent; prints its id and its signing secret (for its result reports)."""
    from dialbatch.providers.registry import KNOWN_PROVIDERS, validate_agent_config
    from dialbatch.signing import AgentSecrets

    if provider not in KNOWN_PROVIDERS:
        _fail(f"unknown provider {provider!r}; known: {', '.join(KNOWN_PROVIDERS)}")
    try:
        provider_config = json.loads(config)
        validate_agent_config(provider, provider_config)
    except ValueError as exc:  # JSONDecodeError is one
        _fail(f"--config: {exc}")

    async def run(db: Database) -> Any:
        async with db.write() as conn:
            _require_workspace(await workspaces.workspace_exists(conn, workspace), workspace)
            if agent_id and await workspaces.get_agent(conn, workspace, agent_id):
                _fail(f"agent {agent_id!r} already exists")
            agent = await workspaces.create_agent(
                conn,
                workspace,
                name=name,
                provider=provider,
                provider_config=provider_config,
                agent_id=agent_id,
            )
            return agent

    agent = _with_db(run)
    secret = AgentSecrets.from_settings(Settings()).secret_for(
        workspace, agent.id, agent.secret_version
    )
    console.print(f"agent: {agent.id}")
    console.print(f"signing secret: {secret}  (shown once; rotate with the API)")


@agents_app.command("list")
def agents_list(workspace: Annotated[str, typer.Option("--workspace", "-w")]) -> None:
    """List a workspace's agents."""

    async def run(db: Database) -> list[Any]:
        async with db.read() as conn:
            return await workspaces.list_agents(conn, workspace)

    for agent in _with_db(run):
        console.print(f"{agent.id}  {agent.provider:10}  {agent.name}")


from dialbatch.cli import carrier_cmd, client_cmds  # noqa: E402

carrier_cmd.register(app)
client_cmds.register(app)

from dialbatch.cli import campaign_cmds  # noqa: E402

campaign_cmds.register(app)

from dialbatch.cli import suppressions_cmd, webhooks_cmd  # noqa: E402

app.add_typer(webhooks_cmd.app, name="webhooks")
app.add_typer(suppressions_cmd.app, name="suppressions")
