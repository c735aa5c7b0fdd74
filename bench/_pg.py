"""Scratch PostgreSQL databases for benchmarks: created for a run, dropped after it."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` on the same cluster."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def execute(url: str, sql: str) -> None:
    """Run `sql` on its own connection, outside a transaction (VACUUM needs that)."""
    await _admin(url, sql)


def create_database(admin_url: str, name: str) -> str:
    """Create `name` through `admin_url`'s cluster; returns its URL."""
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    return with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop `name`, cutting any connection still open to it."""
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
