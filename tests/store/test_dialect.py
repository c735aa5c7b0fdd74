"""Dialect differences live in store/_dialect.py: no other module asks which database it
talks to (the engine factory, engine.py, builds each engine from `_dialect`'s answer; the
Alembic environment picks its batch mode for SQLite)."""

from __future__ import annotations

import re
from pathlib import Path

import dialbatch

SRC = Path(dialbatch.__file__).parent
ASKS = re.compile(r"\bis_sqlite\s*\(|dialect\.name\b|get_backend_name\s*\(|\.is_sqlite\b")
MAY_ASK = {
    "store/_dialect.py",
    "store/engine.py",  # makes the engines: one writer + readers on SQLite, a pool on PG
    "store/migrations/env.py",  # Alembic's render_as_batch for SQLite's ALTER TABLE
}


def test_only_the_dialect_module_asks_which_database_it_is() -> None:
    asking = sorted(
        f"{path.relative_to(SRC)}:{n}: {line.strip()}"
        for path in SRC.rglob("*.py")
        if str(path.relative_to(SRC)) not in MAY_ASK
        # A migration is written for both databases by nature (UNLOGGED tables, for one).
        and not str(path.relative_to(SRC)).startswith("store/migrations/versions/")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ASKS.search(line)
    )
    assert asking == []
