"""The chaos test, short: API, 3 workers and the carrier process on PostgreSQL, a batch of
short calls, workers SIGKILLed and restarted while it runs. At the end: no call lost, no
dial beyond policy, the carrier's dials exactly the attempts the engine recorded, counters
equal to COUNT(*), the cap never exceeded. The long version: bench/chaos.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests import _backends

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import chaos

pytestmark = pytest.mark.skipif(
    "postgresql" not in _backends.selected_backends(), reason="PostgreSQL is not reachable"
)


def test_workers_killed_mid_batch_lose_nothing_and_dial_nothing_twice(tmp_path: Path) -> None:
    opts = chaos.Options(
        calls=100,
        workers=3,
        cap=20,
        rate=200,
        kill_every_s=(1.5, 2.5),
        max_kills=3,
        claim_lease_s=2.0,
        dial_lease_s=1.5,
        reconcile_quiet_s=3.0,
        drop_rate=0.02,
        duplicate_rate=0.02,
        timeout_s=240,
    )
    # Calls long enough (about 3 s) that a killed worker always leaves live dials behind,
    # which the others must reconcile and follow to their end.
    opts.agent_config["meanTalkSeconds"] = 150
    with chaos.scratch_database(_backends.ADMIN_URL) as url:
        report = chaos.run(opts, url, tmp_path)
    chaos.print_report(report)
    assert report.kills == 3
    assert report.violations() == []
    assert report.lost == 0 and not report.beyond_policy and not report.key_mismatch
    assert report.counter_counts == report.status_counts == report.api_counts
    assert report.max_live <= opts.cap and report.limiter_active == 0
    assert report.reconciled >= 1  # the kills did orphan live dials
    assert report.dials > opts.calls  # retries happened, within policy


def test_a_twilio_stand_in_with_lossy_callbacks_ends_no_call_unknown(tmp_path: Path) -> None:
    """The same chaos through a Twilio-compatible stand-in with a Calls list: workers
    SIGKILLed mid-batch (some between an intent and Twilio's answer), 5 % of final
    callbacks dropped. Every dial is found (by CallSid, or in the Calls list) or shown
    absent and retried: no call ends "outcome unknown", none is dialed beyond policy, and
    no transaction deadlocks."""
    opts = chaos.Options(
        calls=100,
        workers=3,
        cap=20,
        rate=200,
        kill_every_s=(2.0, 4.0),
        max_kills=3,
        claim_lease_s=2.0,
        dial_lease_s=1.5,
        reconcile_quiet_s=3.0,
        drop_rate=0.05,
        timeout_s=240,
        provider="twilio",
    )
    with chaos.scratch_database(_backends.ADMIN_URL) as url:
        report = chaos.run(opts, url, tmp_path)
    chaos.print_report(report)
    assert report.kills == 3
    assert report.violations() == []
    assert report.unknown == 0 and report.deadlocks == 0
    assert report.lost == 0 and not report.beyond_policy and not report.key_mismatch
    assert report.counter_counts == report.status_counts == report.api_counts
