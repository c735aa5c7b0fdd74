"""Apply Alembic migrations programmatically (used by `serve`, `worker` and `dialbatch migrate`).

Alembic (with Mako and its DDL modules, ~10 MB of a process) is imported only when the
database is not at the head revision already: the head is read from the revision files and
the database's `alembic_version` with plain SQLAlchemy. Long-running processes go further
(`ensure_schema`): they migrate in a child process, so they never hold Alembic at all.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from dialbatch.store.engine import prepare_sqlite_dir

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

_HERE = Path(__file__).parent / "migrations"
_URL_VARIABLE = "_DIALBATCH_MIGRATE_URL"
T = TypeVar("T")


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config(str(_HERE / "alembic.ini"))
    cfg.set_main_option("script_location", str(_HERE))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`; at the head already, do nothing (and
    import nothing of Alembic)."""
    if revision == "head" and is_at_head(url):
        return
    _alembic_upgrade(url, revision)


def ensure_schema(url: str, *, log_level: str = "INFO", log_format: str = "text") -> None:
    """`upgrade(url)` for a process that runs for long (serve, worker): when a migration
    is due, it runs in a child process, whose log lines join this one's stderr."""
    if is_at_head(url):
        return
    code = (
        "import os, sys; from dialbatch import logs; from dialbatch.store import migrate;"
        " logs.setup(sys.argv[1], sys.argv[2]); migrate.upgrade(os.environ[sys.argv[3]])"
    )
    # The URL (it may hold a password) goes through the environment, not the command line
    # that `ps` shows.
    env = {**os.environ, _URL_VARIABLE: url}
    done = subprocess.run(
        [sys.executable, "-c", code, log_level, log_format, _URL_VARIABLE], env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"migrating the database failed (exit status {done.returncode})")


def head_revisions() -> set[str]:
    """The revisions no other revision names as its `down_revision`, from the files."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_HERE / "versions").glob("*.py"):
        found = _assignments(path, ("revision", "down_revision"))
        revision, down = found.get("revision"), found.get("down_revision")
        if isinstance(revision, str):
            revisions.add(revision)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple | list):  # a merge revision
            parents.update(str(d) for d in down)
    return revisions - parents


def is_at_head(url: str) -> bool:
    """True when the database records exactly the single head revision of the files."""
    heads = head_revisions()
    if len(heads) != 1:
        return False  # let Alembic say what is wrong
    return current_revisions(url) == heads


def current_revisions(url: str) -> set[str]:
    """What `alembic_version` holds (empty for a database never migrated)."""
    prepare_sqlite_dir(url)

    async def read() -> set[str]:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                exists = await conn.run_sync(
                    lambda sync: sa.inspect(sync).has_table("alembic_version")
                )
                if not exists:
                    return set()
                rows = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                return {str(r[0]) for r in rows}
        finally:
            await engine.dispose()

    return _in_thread(lambda: asyncio.run(read()))


def _alembic_upgrade(url: str, revision: str) -> None:
    # Alembic announces each of its own plugins at INFO when it is imported: noise in the
    # start-up log of `serve`, which should show only the migrations it runs.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    from alembic import command

    prepare_sqlite_dir(url)
    _in_thread(lambda: command.upgrade(alembic_config(url), revision))


def _in_thread(fn: Callable[[], T]) -> T:
    """Run `fn` in its own thread: env.py (and `current_revisions`) start their own event
    loop, and callers may already be inside one."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    t = threading.Thread(target=target, name="migrate")
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]


def _assignments(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    """Module-level `name = <literal>` (or annotated) assignments of a revision file."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target, value = node.target.id, node.value
        elif (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            target, value = node.targets[0].id, node.value
        else:
            continue
        if target in names and value is not None:
            try:
                found[target] = ast.literal_eval(value)
            except ValueError:
                continue
    return found
