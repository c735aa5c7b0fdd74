"""Apply Alembic migrations programmatically (used by `serve` and `dialbatch migrate`)."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config

from dialbatch.store.engine import prepare_sqlite_dir

_HERE = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config(str(_HERE / "alembic.ini"))
    cfg.set_main_option("script_location", str(_HERE))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`.

    Runs in its own thread because env.py starts its own event loop, and callers may
    already be inside one.
    """
    prepare_sqlite_dir(url)
    error: list[BaseException] = []

    def _target() -> None:
        try:
            command.upgrade(alembic_config(url), revision)
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    t = threading.Thread(target=_target, name="alembic-upgrade")
    t.start()
    t.join()
    if error:
        raise error[0]
