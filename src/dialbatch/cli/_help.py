"""`--help` without a type beside flags: typer (0.2x) labels every option with its type,
flags included (`--dedupe <bool>`), which reads as if the flag took a value. A flag takes
none, so its type column is left empty; every other option keeps its label."""

from __future__ import annotations

from typing import Any

from typer import core


def _flags_without_type() -> None:
    option = getattr(core, "TyperOption", None)
    original = getattr(option, "display_type_rich", None)
    if option is None or original is None or getattr(original, "_dialbatch", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False):
            return None
        result: str | None = original(self, ctx)
        return result

    display_type_rich._dialbatch = True  # type: ignore[attr-defined]
    option.display_type_rich = display_type_rich


_flags_without_type()
