"""Which databases the suite runs on, and a PostgreSQL database of its own per run.

Every test that uses the `db` or `make_settings` fixtures runs once per backend. SQLite
always; PostgreSQL when reachable at DIALBATCH_TEST_PG_URL (default
postgresql://127.0.0.1:5432/test). Under CI=true PostgreSQL is required: the setup tries
to start the local cluster, and stops the run with a clear message if it cannot.
Set DIALBATCH_TEST_BACKENDS=sqlite (or postgresql) to run one.

Each run creates `dialbatch_test_<pid>_<hex>`, migrates it once, truncates it before
every test, and drops it at the end.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from dialbatch.store.tables import metadata

ADMIN_URL = os.environ.get("DIALBATCH_TEST_PG_URL", "postgresql://127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 2):
            return True
    except OSError:
        return False


def _try_start_local_cluster() -> None:
    """What these machines document for a stopped PostgreSQL; harmless when absent."""
    try:
        versions = os.listdir("/etc/postgresql")
    except OSError:
        return
    for version in versions:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            check=False,
            capture_output=True,
            timeout=60,
        )


def selected_backends() -> list[str]:
    wanted = os.environ.get("DIALBATCH_TEST_BACKENDS")
    if wanted:
        return [b.strip() for b in wanted.split(",") if b.strip()]
    if not _reachable(ADMIN_URL):
        _try_start_local_cluster()
    if _reachable(ADMIN_URL):
        return ["sqlite", "postgresql"]
    if IN_CI:
        raise RuntimeError(
            f"PostgreSQL is required under CI=true but nothing answers at {ADMIN_URL} "
            "(tried pg_ctlcluster start). Start it, or set DIALBATCH_TEST_PG_URL."
        )
    return ["sqlite"]


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_run_database() -> str:
    name = f"dialbatch_test_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return _with_database(ADMIN_URL, name)


def drop_run_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


TRUNCATE = "TRUNCATE {} RESTART IDENTITY CASCADE".format(
    ", ".join(t.name for t in metadata.sorted_tables)
)


async def truncate(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(TRUNCATE)
    finally:
        await conn.close()
