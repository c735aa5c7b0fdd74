"""A batch's own limits inside its workspace: `maxConcurrency` and `priority`.

`maxConcurrency` caps how many of the batch's calls are live at once (claimed, dialing or
being reconciled), so that other batches and inbound work keep the rest of the workspace's
cap. A value above the workspace's cap is allowed and means the workspace's cap.

`priority` orders the batches of one workspace in the claim: due calls of a higher
priority are served first, and a lower priority gets only the capacity the higher ones
leave (they may starve it: that is the point). Batches of equal priority share the claim
fairly, least recently served first, as every batch did before priorities existed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_CONCURRENCY_LIMIT = 1_000_000
PRIORITY_MIN = -100
PRIORITY_MAX = 100
DEFAULT_PRIORITY = 0


class InvalidBatchLimit(ValueError):
    """A malformed `maxConcurrency` or `priority`; the message names the field."""


def parse_max_concurrency(raw: object) -> int | None:
    """An integer >= 1, or None when not given (None or an empty form field)."""
    value = _integer("maxConcurrency", raw)
    if value is None:
        return None
    if not 1 <= value <= MAX_CONCURRENCY_LIMIT:
        raise InvalidBatchLimit(
            f"maxConcurrency must be a whole number from 1 to {MAX_CONCURRENCY_LIMIT} (got {value})"
        )
    return value


def parse_priority(raw: object) -> int:
    """An integer from PRIORITY_MIN to PRIORITY_MAX; DEFAULT_PRIORITY when not given."""
    value = _integer("priority", raw)
    if value is None:
        return DEFAULT_PRIORITY
    if not PRIORITY_MIN <= value <= PRIORITY_MAX:
        raise InvalidBatchLimit(
            f"priority must be a whole number from {PRIORITY_MIN} to {PRIORITY_MAX} "
            f"(got {value}); higher is dialed first"
        )
    return value


def _integer(field: str, raw: object) -> int | None:
    """A whole number from JSON (an integer) or a form field (its decimal text)."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise InvalidBatchLimit(f"{field} must be a whole number")
    if isinstance(raw, int):
        return raw
    text = raw.strip()
    if not text:
        return None
    digits = text[1:] if text[0] in "+-" else text
    if not digits.isascii() or not digits.isdigit() or len(digits) > 9:
        raise InvalidBatchLimit(f"{field} must be a whole number (got {raw!r})")
    return int(text)


@dataclass(frozen=True)
class Runnable:
    """A batch the claim may serve: its priority and how many more of its calls may go
    live now (None: no cap of its own)."""

    batch_id: str
    priority: int
    room: int | None


def service_order(batches: Sequence[Runnable]) -> list[list[Runnable]]:
    """The batches grouped by priority, highest first; each group keeps the given order
    (least recently served first), and batches with no room left are left out."""
    groups: dict[int, list[Runnable]] = {}
    for b in batches:
        if b.room is None or b.room > 0:
            groups.setdefault(b.priority, []).append(b)
    return [groups[p] for p in sorted(groups, reverse=True)]


CHANGE_FIELDS = ("maxConcurrency", "priority")


def parse_changes(body: object) -> dict[str, int | None]:
    """The body of a change to a running batch's limits, `{"maxConcurrency": 5 or null,
    "priority": 3}` (either or both; null removes the batch's own cap), as the columns to
    write: {"max_concurrency": ..., "priority": ...}."""
    if not isinstance(body, dict) or not body:
        raise InvalidBatchLimit(
            "The body must be a JSON object with maxConcurrency and/or priority, "
            'e.g. {"priority": 5}'
        )
    unknown = sorted(str(k) for k in body if k not in CHANGE_FIELDS)
    if unknown:
        raise InvalidBatchLimit(
            f"Unknown field(s) {unknown}; a running batch's maxConcurrency and priority may change"
        )
    changes: dict[str, int | None] = {}
    if "maxConcurrency" in body:
        raw = body["maxConcurrency"]
        if isinstance(raw, str):
            raise InvalidBatchLimit("maxConcurrency must be a whole number, or null")
        changes["max_concurrency"] = parse_max_concurrency(raw)
    if "priority" in body:
        raw = body["priority"]
        if raw is None or isinstance(raw, str):
            raise InvalidBatchLimit(
                f"priority must be a whole number from {PRIORITY_MIN} to {PRIORITY_MAX}"
            )
        changes["priority"] = parse_priority(raw)
    return changes
