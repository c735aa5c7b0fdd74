"""Migrations run when due, and a process whose database is at the head never loads
Alembic (store/migrate.py; the memory figures are bench/memory.py's)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from dialbatch.settings import to_async_url
from dialbatch.store import migrate


def _sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def _python(code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_head_read_from_the_files_is_alembics_head() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert migrate.head_revisions() == set(script.get_heads())


def test_a_fresh_database_is_not_at_head_until_upgraded(tmp_path: Path) -> None:
    url = _sqlite_url(tmp_path / "fresh.db")
    assert migrate.current_revisions(url) == set()
    assert not migrate.is_at_head(url)
    migrate.upgrade(url)
    assert migrate.is_at_head(url)


def test_a_database_at_head_is_checked_without_alembic(database_url: str) -> None:
    url = to_async_url(database_url)
    assert migrate.is_at_head(url)
    loaded = _python(
        "import sys; from dialbatch.store import migrate; migrate.upgrade(sys.argv[1]);"
        " migrate.ensure_schema(sys.argv[1]); print('alembic' in sys.modules)",
        url,
    )
    assert loaded == "False"


def test_ensure_schema_migrates_in_a_child_process(tmp_path: Path) -> None:
    url = _sqlite_url(tmp_path / "fresh.db")
    loaded = _python(
        "import sys; from dialbatch.store import migrate; migrate.ensure_schema(sys.argv[1]);"
        " print(migrate.is_at_head(sys.argv[1]), 'alembic' in sys.modules)",
        url,
    )
    assert loaded == "True False"
