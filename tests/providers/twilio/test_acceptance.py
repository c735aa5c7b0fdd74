"""Issue 4's acceptance test for Twilio: 1,000 calls through the adapter against the local
stand-in, over a network that duplicates 10 % of callbacks, delivers 10 % after their
successor, loses 5 % and carries forged ones. Every call must end in the outcome the
stand-in decided for it, with exact counters, and every forgery refused."""

from __future__ import annotations

import logging
import time
from collections import Counter

from tests.api.conftest import people, start_batch, status_of, wait_for_batch
from tests.conftest import numbers
from tests.providers.twilio.conftest import RigFactory, exact_counts, final_attempts
from tests.providers.twilio.standin import EXPECTED_OUTCOME, Faults, mixed_plans

log = logging.getLogger(__name__)

CALLS = 1000
FAULTS = Faults(duplicate=0.10, reorder=0.10, drop=0.05, forge=0.03)


async def test_a_thousand_calls_end_in_their_true_state(open_rig: RigFactory) -> None:
    async with open_rig(
        plan_for=mixed_plans(seed=11),
        faults=FAULTS,
        demo_max_concurrent_calls=50,
        demo_calls_per_second=200,
    ) as rig:
        h, standin = rig.h, rig.standin
        phones = numbers(CALLS)
        started = time.monotonic()
        r = await start_batch(h, people(phones), agent_id=rig.agent_id)
        assert r.status_code == 200, r.text
        batch_id = r.json()["batchId"]
        await wait_for_batch(h, batch_id, timeout=120)
        elapsed = time.monotonic() - started
        await standin.settle()

        # Each number was dialed once, and ended as the stand-in decided.
        assert Counter(c.to for c in standin.calls.values()) == Counter(phones)
        truth = standin.truth()
        ended = await final_attempts(h, batch_id)
        wrong = {
            phone: (outcome, ended[phone])
            for phone, outcome in truth.items()
            if ended[phone]
            != ("completed" if outcome == "completed" else "failed", EXPECTED_OUTCOME[outcome])
        }
        assert wrong == {}
        planned = Counter(truth.values())
        assert all(planned[o] > 50 for o in EXPECTED_OUTCOME), planned

        # Counters are exact, and the contract's summary says the same.
        real = await exact_counts(h, batch_id)
        assert real == {
            "completed": planned["completed"],
            "failed": CALLS - planned["completed"],
        }
        summary = await status_of(h, batch_id)
        assert (summary["completed"], summary["failed"]) == (real["completed"], real["failed"])
        assert summary["waiting"] == summary["active"] == 0

        # The network really was unreliable, and nothing got past the signature check.
        stats = standin.stats
        assert stats["duplicated"] > 0 and stats["reordered"] > 0
        assert stats["dropped_final"] > 0  # these calls ended through reconciliation
        assert stats["fetched"] >= stats["dropped_final"]
        assert standin.forged_replies and set(standin.forged_replies) == {403}
        assert standin.callback_errors == []
        log.warning(
            "1,000 Twilio calls in %.1f s: outcomes %s; callbacks %s; forged %d",
            elapsed,
            dict(planned),
            dict(stats),
            len(standin.forged_replies),
        )
