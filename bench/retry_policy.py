"""Cost of the retry decision per ended dial (issue 11 item 2), as the store pays it.

    python bench/retry_policy.py [--n 200000]

Each ended dial, store/outcomes.py parses the batch's smartCallbackConfig, and (when the batch
has one) its stored retryPolicy once per group of outcomes applied together, then calls
next_state. This times: no policy (a contract batch), smart callbacks only, a stored
retryPolicy parsed once per group of 500, and one parsed for every dial (the worst case).
Prints figures; nothing is asserted. Timing varies with machine load.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from dialbatch.domain.next_state import BatchPolicy, CallHistory, next_state
from dialbatch.domain.outcomes import Outcome
from dialbatch.domain.retry import RetryConfig, parse_callback_policy
from dialbatch.domain.retry_policy import parse_retry_policy

CALLBACKS = {"enabled": True, "maxAttempts": 3, "gaps": [{"days": 0, "hours": 4}]}
POLICY = {
    "busy": {"retry": True, "maxDials": 3, "gapsSeconds": [60, 120], "counting": "dials"},
    "no-answer": {"retry": True, "maxDials": 2, "gapsSeconds": [3600], "counting": "dials"},
    "voicemail": {"retry": False},
    "failed": {"retry": True, "maxDials": 4, "gapsSeconds": [5, 30], "counting": "dials"},
}
OUTCOMES = [Outcome.COMPLETED, Outcome.BUSY, Outcome.NO_ANSWER, Outcome.VOICEMAIL, Outcome.FAILED]


def run(n: int, callbacks: dict[str, Any], stored: dict[str, Any] | None, group: int) -> float:
    retry = RetryConfig()
    rules = None
    started = time.perf_counter()
    for i in range(n):
        if stored is not None and i % group == 0:
            rules = parse_retry_policy(stored)
        batch = BatchPolicy(parse_callback_policy(callbacks), "processing", rules)
        next_state(OUTCOMES[i % 5], CallHistory(0, i % 2, 1 + i % 2), batch, 0, retry=retry)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    n = parser.parse_args().n
    for name, callbacks, stored, group in (
        ("no policy", {"enabled": False}, None, 1),
        ("smartCallbackConfig", CALLBACKS, None, 1),
        ("retryPolicy, parsed once per 500", CALLBACKS, POLICY, 500),
        ("retryPolicy, parsed every dial", CALLBACKS, POLICY, 1),
    ):
        print(f"{name:34s} {run(n, callbacks, stored, group):6.2f} us per ended dial")


if __name__ == "__main__":
    main()
