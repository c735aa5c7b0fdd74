"""Fuzzing from the OpenAPI document (schemathesis): every operation the app documents, with
generated requests, with and without valid credentials, against a real server on SQLite.

No response may be a 5xx, and every response must be one the document declares: its status
code, its content type, its headers and its body's schema. Operations are read from the
document itself, so an endpoint added later is fuzzed without a change here. The number of
generated cases is printed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dialbatch.settings import Settings
from tests.client._server import LiveServer, live_server
from tests.conftest import csv_bytes, numbers

# Cases per operation and generation mode: small enough that the whole run stays well under
# a minute and a half on a loaded 2-core machine.
MAX_EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    negative_data_rejection,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def server(make_settings: Callable[..., Settings], database_url: str) -> Iterator[LiveServer]:
    if not database_url.startswith("sqlite"):
        pytest.skip("the fuzzing run is on SQLite only (its cost is in the requests)")
    with live_server(make_settings(), dispatch=False) as live:
        yield live


def real_batch(server: LiveServer, headers: dict[str, str]) -> str:
    """A real batch, so that generated requests for batch paths also reach existing ones."""
    r = httpx.post(
        f"{server.url}/v1/api/batch-calls",
        headers=headers,
        files={"file": ("c.csv", csv_bytes(numbers(3)), "text/csv")},
        data={"agentId": server.demo.agent_id},
    )
    assert r.status_code == 200, r.text
    batch_id: str = r.json()["batchId"]
    return batch_id


def test_every_documented_operation_survives_generated_requests(
    server: LiveServer, record_property: Callable[[str, object], None]
) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    valid = {"x-api-key": server.demo.api_key, "x-workspace-id": server.demo.workspace_id}
    batch_id = real_batch(server, valid)
    counts: Counter[str] = Counter()
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    failures = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fixed: dict[str, Any] = {}
            if "{batchId}" in operation.path and mode is GenerationMode.POSITIVE:
                fixed["path_parameters"] = {"batchId": batch_id}
            strategy = operation.as_strategy(mode, **fixed)
            try:
                _fuzz(
                    operation.label,
                    strategy,
                    valid,
                    counts,
                    server.url,
                    negative=mode is GenerationMode.NEGATIVE,
                    stream=operation.path.endswith("/events"),
                )
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to get wrong (no parameters)
            # Every operation is tried and every failure reported (schemathesis raises a
            # BaseExceptionGroup of its checks' failures).
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({mode.value}): {_describe(exc)}")
    assert not failures, "\n\n".join(failures)
    total = sum(counts.values())
    # Printed at the end of every run, `make test` (with its worker processes) included:
    # tests/conftest.py's pytest_terminal_summary shows each test's "summary" property.
    record_property(
        "summary",
        f"schemathesis: {total} generated cases over {len(operations)} operations in "
        f"{time.monotonic() - started:.1f} s: 0 server errors, 0 schema violations",
    )
    assert total >= len(operations) * 2


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"[:1500]


def _fuzz(
    label: str,
    strategy: st.SearchStrategy[Any],
    valid: dict[str, str],
    counts: Counter[str],
    base_url: str,
    *,
    negative: bool,
    stream: bool,
) -> None:
    """Run one operation's cases. `negative`: a case that leaves out a credential header on
    purpose keeps it out (adding ours back would make a valid request of it). `stream`: an
    event stream never ends by itself, so a 200 is checked by its status and content type
    and closed; its other answers are read and validated whole."""

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, with_key=st.booleans())
    def run(case: Any, with_key: bool) -> None:
        counts[label] += 1
        headers = None
        if with_key:
            sent = {name.lower() for name in case.headers or {}}
            headers = {k: v for k, v in valid.items() if not negative or k in sent}
        response = case.call(base_url=base_url, headers=headers, timeout=30, stream=stream)
        if stream and response.status_code == 200:
            assert response.headers["content-type"].startswith("text/event-stream")
            response.close()
            return
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()
