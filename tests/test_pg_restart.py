"""PostgreSQL restarted in the middle of a batch (a private cluster, so no other test is
disturbed): the API and the workers recover by themselves, nothing is lost, the counters
stay exact. The long version: bench/chaos.py --pg-restart."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests import _backends

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import chaos

RECOVERY_S = 10.0


def _can_run_a_cluster() -> bool:
    """PostgreSQL's binaries, and (as root, which initdb refuses) runuser to drop to postgres."""
    needs_runuser = os.geteuid() == 0
    return chaos.PG_BIN.is_dir() and (not needs_runuser or shutil.which("runuser") is not None)


# Under CI=true PostgreSQL is required, so this runs (and fails loudly if it cannot).
pytestmark = pytest.mark.skipif(
    not _backends.IN_CI and not _can_run_a_cluster(),
    reason="no PostgreSQL binaries to start a private cluster",
)


def test_a_postgresql_restart_mid_batch_is_survived_without_help(tmp_path: Path) -> None:
    opts = chaos.Options(
        calls=200,
        workers=2,
        cap=20,
        rate=200,
        kills=False,
        claim_lease_s=3.0,
        dial_lease_s=3.0,
        reconcile_quiet_s=3.0,
        pg_restart_at=0.3,
        timeout_s=240,
    )
    opts.agent_config["meanTalkSeconds"] = 60
    pg = chaos.PrivateCluster()
    try:
        pg.init()
        report = chaos.run(opts, pg.url, tmp_path, pg)
    finally:
        pg.destroy()
    chaos.print_report(report)
    assert report.pg, "PostgreSQL was not restarted"
    assert report.pg["api_ready_after_s"] < RECOVERY_S
    assert report.pg["first_dial_after_s"] < RECOVERY_S
    assert report.violations() == []
    assert report.lost == 0
    assert report.counter_counts == report.status_counts == report.api_counts
