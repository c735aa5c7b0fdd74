"""Issue 11's caller-number pool acceptance at full size: 3 caller numbers (one in New York's
212) at 1 call/s each, a workspace cap of 10, 300 calls (a fifth to 212 numbers, 30 % busy
and called back once), dialed by 3 `dialbatch worker` processes on PostgreSQL through the
carrier process. Checked on the carrier's ledger (when each dial reached it and which caller
number it showed), as tests/test_caller_pool_workers.py does with 45 calls:

- all 3 numbers used; no number starts two dials within 1 s (the closest gap is printed);
- every retry of a person shows that person's first number; 212 recipients see the 212 number.

Prints the figures and the wall time. The pool's rate is 3 x 0.8 dials/s (the per-second
limit is kept with a 250 ms margin, domain/caller_pool.py), so 300 calls plus their
callbacks take about two and a half minutes.

    .venv/bin/python bench/caller_pool.py [--calls 300]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_caller_pool_workers import check, pool_agent, recipients
from tests.test_gate_workers import (
    complete,
    ledger,
    options,
    running_cluster,
    upload,
    wait_until,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    phones = recipients(args.calls)
    retry = {"enabled": True, "maxAttempts": 2, "gaps": [{"hours": 0.0005}]}
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_cluster(Path(tmp), options(cap=10)) as (cluster, client),
    ):
        agent = pool_agent(client)
        t0 = time.monotonic()
        batch_id = upload(client, agent["id"], phones, policy=retry)
        wait_until("the batch", lambda: complete(client, batch_id), timeout_s=1800)
        wall = time.monotonic() - t0
        dials = ledger(cluster)
    figures = check(dials, phones)
    per_number = {n: sum(d["from"] == n for d in dials) for n in figures["closest_ms"]}
    print(
        f"calls: {args.calls}; dials: {figures['dials']}; people called twice: "
        f"{figures['retried']}; wall: {wall:.1f} s ({figures['dials'] / wall:.2f} dials/s)"
    )
    for number, gap in sorted(figures["closest_ms"].items()):
        print(f"  {number}: {per_number[number]} dials, closest two starts {gap} ms apart")
    print(
        "checks passed: all 3 numbers, >= 1000 ms per number, retries keep their number, "
        "212 recipients saw the 212 number"
    )


if __name__ == "__main__":
    main()
