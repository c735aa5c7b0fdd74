"""Identifiers. A call's jobId encodes its batch and row, so a jobId alone finds its call
through the (batch_id, seq) key without a second unique index on 300k-row inserts.
"""

from __future__ import annotations

import secrets
import time


def now_ms() -> int:
    return int(time.time() * 1000)


def new_id(prefix: str, nbytes: int = 8) -> str:
    return f"{prefix}_{secrets.token_hex(nbytes)}"


def new_batch_id() -> str:
    return new_id("batch")


def job_id(batch_id: str, seq: int) -> str:
    return f"call_{batch_id.removeprefix('batch_')}_{seq}"


def parse_job_id(value: str) -> tuple[str, int] | None:
    """(batch_id, seq) for a jobId of ours, None for anything else."""
    if not value.startswith("call_") or len(value) > 100:
        return None
    token, sep, seq = value[len("call_") :].rpartition("_")
    if not sep or not token or not seq.isdigit() or len(seq) > 9:
        return None
    return f"batch_{token}", int(seq)


def dial_key(batch_id: str, seq: int, attempt: int) -> str:
    """The provider's idempotency key for one dial: stable across retries of the request."""
    return f"{job_id(batch_id, seq)}:{attempt}"
