"""`isComplete` agrees with the batch's own record: a client that sees it true also sees
the batch closed, with its `completedTime`."""

from __future__ import annotations

import dataclasses

import pytest

from dialbatch.api.schemas import is_complete
from dialbatch.store.batches import Batch
from dialbatch.store.counters import Tally

BATCH = Batch(
    id="batch_x",
    workspace_id="ws",
    agent_id="agent",
    status="processing",
    total_calls=3,
    scheduled_at=0,
    callback_policy={},
    source_name=None,
    created_at=0,
    started_at=1,
    completed_at=None,
    cancelled_at=None,
    error=None,
    last_claimed_at=0,
)
DRAINED = Tally(by_state={"completed": 2, "cancelled": 1})
LIVE = Tally(by_state={"completed": 1, "dialing": 1, "cancelled": 1})


@pytest.mark.parametrize(
    ("status", "completed_at", "tally", "complete"),
    [
        ("processing", None, DRAINED, False),  # its last outcome has not closed it yet
        ("completed", 5, DRAINED, True),
        ("cancelled", None, LIVE, False),  # a live call runs to its end
        # drained, but the re-check that closes it has not committed yet (PostgreSQL):
        # complete only once completedTime can be shown with it
        ("cancelled", None, DRAINED, False),
        ("cancelled", 5, DRAINED, True),
    ],
)
def test_is_complete_follows_the_closed_batch(
    status: str, completed_at: int | None, tally: Tally, complete: bool
) -> None:
    batch = dataclasses.replace(BATCH, status=status, completed_at=completed_at)
    assert is_complete(batch, tally) is complete
