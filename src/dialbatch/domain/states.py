"""Call and batch states, and how the finer internal states read on the wire.

Internal states are finer than the contract's four words because "claimed" (safe to
redo) and "dialing" (not safe to redo) must never be confused after a crash.
"""

from __future__ import annotations

from enum import StrEnum


class CallState(StrEnum):
    WAITING = "waiting"
    CLAIMED = "claimed"
    DIALING = "dialing"
    UNKNOWN = "unknown"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class BatchState(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


FINAL_CALL_STATES: frozenset[CallState] = frozenset(
    {CallState.COMPLETED, CallState.FAILED, CallState.CANCELLED}
)
# States that hold one of the workspace's concurrency slots.
ACTIVE_CALL_STATES: frozenset[CallState] = frozenset(
    {CallState.CLAIMED, CallState.DIALING, CallState.UNKNOWN}
)
# States from which a call may still run (so the batch is not complete yet).
OPEN_CALL_STATES: frozenset[CallState] = frozenset({CallState.WAITING}) | ACTIVE_CALL_STATES

# The contract's status words, plus our additive `cancelled`.
_WIRE: dict[CallState, str] = {
    CallState.WAITING: "waiting",
    CallState.CLAIMED: "waiting",
    CallState.DIALING: "active",
    CallState.UNKNOWN: "active",
    CallState.COMPLETED: "completed",
    CallState.FAILED: "failed",
    CallState.CANCELLED: "cancelled",
}

WIRE_CALL_STATUSES: tuple[str, ...] = ("waiting", "active", "completed", "failed", "cancelled")


def wire_status(state: CallState | str) -> str:
    """The contract's status word for an internal call state."""
    return _WIRE[CallState(state)]


def states_for_wire(status: str) -> tuple[CallState, ...]:
    """Internal states that read as `status` on the wire (for listing filters)."""
    return tuple(s for s, w in _WIRE.items() if w == status)


# Batches that may still start a dial; cancel and failure stop a batch for good.
RUNNING_BATCH_STATES: tuple[str, ...] = (BatchState.QUEUED.value, BatchState.PROCESSING.value)
