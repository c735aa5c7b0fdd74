"""First start: a demo workspace, API key and agent on the simulated provider, and curl
lines that work as pasted.

The demo key is shown once and stored only as a hash; when it is not pinned with
DIALBATCH_DEMO_API_KEY, every start issues a fresh one (revoking the previous demo key)
so that the printed lines always work.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from dialbatch.domain.ids import now_ms
from dialbatch.settings import Settings
from dialbatch.store import gate_settings, workspaces
from dialbatch.store.engine import Database
from dialbatch.store.tables import api_keys

DEMO_WORKSPACE = "ws_demo"
DEMO_AGENT = "agent_demo"
DEMO_KEY_NAME = "demo"

# NANP's 555-0100..0199 numbers are reserved for fiction, so a demo can never ring anyone.
_DEMO_ROWS = [
    ("+12025550101", "Ada", "Lovelace", "ada@example.com"),
    ("+12025550102", "Alan", "Turing", "alan@example.com"),
    ("+12025550103", "Grace", "Hopper", "grace@example.com"),
    ("+12025550104", "Edsger", "Dijkstra", "edsger@example.com"),
    ("+12025550105", "Barbara", "Liskov", "barbara@example.com"),
]


@dataclass(frozen=True)
class Demo:
    workspace_id: str
    api_key: str
    agent_id: str
    sample_csv: Path
    created: bool
    compliance_profile: str = "none"  # printed at start: which rule pack the demo obeys


async def ensure_demo(db: Database, settings: Settings) -> Demo:
    ws = settings.demo_workspace_id or DEMO_WORKSPACE
    async with db.write() as conn:
        await workspaces.lock_for_setup(
            conn
        )  # other processes starting now wait here, then find it made
        created = not await workspaces.workspace_exists(conn, ws)
        if created:
            await workspaces.create_workspace(
                conn,
                workspace_id=ws,
                name="Demo workspace",
                max_concurrent_calls=settings.demo_max_concurrent_calls,
                calls_per_second=settings.demo_calls_per_second,
            )
        else:
            await workspaces.set_limits(
                conn,
                ws,
                max_concurrent_calls=settings.demo_max_concurrent_calls,
                calls_per_second=settings.demo_calls_per_second,
            )
        if await workspaces.get_agent(conn, ws, DEMO_AGENT) is None:
            await workspaces.create_agent(
                conn,
                ws,
                agent_id=DEMO_AGENT,
                name="Demo agent (simulated provider)",
                provider="simulated",
                provider_config={"seed": settings.demo_seed},
            )
        key = settings.demo_api_key
        if key:
            if not await workspaces.verify_api_key(conn, ws, key):
                await workspaces.create_api_key(conn, ws, secret=key, name=DEMO_KEY_NAME)
        else:
            await conn.execute(
                api_keys.update()
                .where(
                    api_keys.c.workspace_id == ws,
                    api_keys.c.name == DEMO_KEY_NAME,
                    api_keys.c.revoked_at.is_(None),
                )
                .values(revoked_at=now_ms())
            )
            _, key = await workspaces.create_api_key(conn, ws, name=DEMO_KEY_NAME)
        profile = (await gate_settings.get(conn, ws)).compliance_profile
    sample = write_sample_csv(settings.data_dir)
    return Demo(
        workspace_id=ws,
        api_key=key,
        agent_id=DEMO_AGENT,
        sample_csv=sample,
        created=created,
        compliance_profile=profile,
    )


def profile_line(demo: Demo) -> str:
    """Which rule pack the demo workspace obeys, and how to change it (docs/compliance.md)."""
    if demo.compliance_profile == "none":
        return (
            "compliance profile: none (calls at any hour); US calling hours and state caps: "
            "dialbatch settings --profile us"
        )
    return (
        f"compliance profile: {demo.compliance_profile} (its calling hours and caps apply);"
        " back to none: dialbatch settings --profile none"
    )


def write_sample_csv(data_dir: Path) -> Path:
    path = data_dir.resolve() / "demo-contacts.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["phone_number,first_name,last_name,email"]
    lines += [",".join(row) for row in _DEMO_ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def curl_lines(demo: Demo, base_url: str) -> str:
    """Shell lines (bash) that start the demo batch and read its progress."""
    h = (
        f"-H {shlex.quote('x-api-key: ' + demo.api_key)} "
        f"-H {shlex.quote('x-workspace-id: ' + demo.workspace_id)}"
    )
    csv = shlex.quote(f"file=@{demo.sample_csv}")
    return "\n".join(
        [
            "# start a batch of 5 simulated calls and keep its id:",
            f"BATCH=$(curl -s {h} -F {csv} -F agentId={demo.agent_id} "
            f'{base_url}/v1/api/batch-calls | sed -E \'s/.*"batchId":"([^"]+)".*/\\1/\')',
            "# progress, then the calls (-w adds the newline a JSON body ends without):",
            f"curl -s -w '\\n' {h} {base_url}/v1/api/batch-calls/$BATCH/status",
            f"curl -s -w '\\n' {h} \"{base_url}/v1/api/batch-calls/$BATCH/calls?limit=5\"",
            f"# API docs: {base_url}/docs",
        ]
    )


def cli_lines(
    demo: Demo, base_url: str, *, cwd: Path | None = None, program: str | None = None
) -> str:
    """Shell lines that run the same demo with the `dialbatch` CLI, pasted in `cwd` (the
    directory `serve` runs in): paths are written relative to it when they are inside."""
    here = (cwd or Path.cwd()).resolve()
    env = [
        f"DIALBATCH_API_KEY={shlex.quote(demo.api_key)}",
        f"DIALBATCH_WORKSPACE_ID={shlex.quote(demo.workspace_id)}",
    ]
    if base_url != "http://127.0.0.1:8000":
        env.append(f"DIALBATCH_URL={shlex.quote(base_url)}")
    exe = _shell_path(Path(program or sys.argv[0]), here)
    if Path(exe).name != "dialbatch":  # run some other way (python -m ...): the script name
        exe = "dialbatch"
    csv = _shell_path(demo.sample_csv, here)
    return "\n".join(
        [
            "# or with the CLI, from this directory:",
            f"export {' '.join(env)}",
            f"{exe} submit {csv} --agent {demo.agent_id} --watch",
        ]
    )


def _shell_path(path: Path, cwd: Path) -> str:
    """`path` as a shell word: relative to `cwd` when inside it, else absolute."""
    full = path if path.is_absolute() else (cwd / path)
    try:
        shown = str(full.resolve().relative_to(cwd))
    except ValueError:
        shown = str(full.resolve())
    if "/" not in shown and full.name == "dialbatch" and shutil.which("dialbatch") != str(full):
        shown = f"./{shown}"
    return shlex.quote(shown)
