"""What the blocking and the async client share: paths, headers, form fields and the
reading of responses. Nothing here does network I/O."""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx

import dialbatch
from dialbatch.client.errors import DialbatchError, error_from_response

BATCHES = "/v1/api/batch-calls"
VALIDATE = BATCHES + "/validate"
AGENTS = "/v1/api/agents"
WEBHOOKS = "/v1/api/webhooks"
SUPPRESSIONS = "/v1/api/suppressions"
DEFAULT_TIMEOUT = 30.0
MAX_PAGE_SIZE = 100

CsvSource = str | os.PathLike[str] | bytes | IO[bytes]
"""A CSV to upload: a path (`str` or `Path`), its bytes, or a binary file object."""

ScheduledAt = datetime | str | int | None
"""When a batch starts: an aware datetime, an ISO 8601 string, or epoch milliseconds."""


def headers(api_key: str, workspace_id: str) -> dict[str, str]:
    return {
        "x-api-key": api_key,
        "x-workspace-id": workspace_id,
        "user-agent": f"dialbatch-client/{dialbatch.__version__}",
    }


def batch_path(batch_id: str, *rest: str) -> str:
    """The URL path of a batch (or of something under it), each id escaped."""
    return "/".join([BATCHES, *(quote(part, safe="") for part in (batch_id, *rest))])


def webhook_path(webhook_id: str, *rest: str) -> str:
    return "/".join([WEBHOOKS, *(quote(part, safe="") for part in (webhook_id, *rest))])


def agent_path(agent_id: str) -> str:
    return f"{AGENTS}/{quote(agent_id, safe='')}"


def suppression_path(number: str) -> str:
    return f"{SUPPRESSIONS}/{quote(number, safe='')}"


def suppression_fields(
    reason: str, expires_at: ScheduledAt, default_country: str | None
) -> dict[str, str]:
    """The optional fields of a suppression request, sent only when given."""
    fields: dict[str, str] = {}
    if reason:
        fields["reason"] = reason
    if expires_at is not None:
        fields["expiresAt"] = format_scheduled_at(expires_at)
    if default_country:
        fields["defaultCountry"] = default_country
    return fields


def start_form(
    agent_id: str,
    scheduled_at: ScheduledAt,
    smart_callback: Mapping[str, Any] | None,
    default_country: str | None,
    skip_invalid: bool,
    dedupe: bool,
    failure_stop: Mapping[str, Any] | None = None,
    retry_policy: Mapping[str, Any] | None = None,
    require_consent: bool = False,
    calling_window: Mapping[str, Any] | None = None,
    compliance_profile: str | None = None,
    max_concurrency: int | None = None,
    priority: int | None = None,
) -> dict[str, str]:
    """The form fields of a batch start. Extensions are sent only when used, so the same
    call works against any server of the contract."""
    form = {"agentId": agent_id}
    if scheduled_at is not None:
        form["scheduledAt"] = format_scheduled_at(scheduled_at)
    if smart_callback is not None:
        form["smartCallbackConfig"] = json.dumps(dict(smart_callback))
    if default_country:
        form["defaultCountry"] = default_country
    if skip_invalid:
        form["skipInvalid"] = "true"
    if dedupe:
        form["dedupe"] = "true"
    if failure_stop is not None:
        form["failureStop"] = json.dumps(dict(failure_stop))
    if retry_policy is not None:
        form["retryPolicy"] = json.dumps(dict(retry_policy))
    if require_consent:
        form["requireConsent"] = "true"
    if calling_window is not None:
        form["callingWindow"] = json.dumps(dict(calling_window))
    if compliance_profile is not None:
        form["complianceProfile"] = compliance_profile
    if max_concurrency is not None:
        form["maxConcurrency"] = str(max_concurrency)
    if priority is not None:
        form["priority"] = str(priority)
    return form


def format_scheduled_at(value: datetime | str | int) -> str:
    """The contract's `YYYY-MM-DDTHH:MM:SSZ` for a datetime; strings and epoch milliseconds
    go as given. A datetime without a time zone is refused rather than guessed."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                "scheduled_at has no time zone; use an aware datetime, e.g. datetime.now(UTC)"
            )
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError("scheduled_at must be a datetime, an ISO 8601 string or epoch ms")
    return str(value)


@contextmanager
def open_csv(csv: CsvSource) -> Iterator[tuple[str, IO[bytes]]]:
    """(file name, binary file) for an upload; a path is opened here and closed after."""
    if isinstance(csv, bytes | bytearray):
        yield "batch.csv", io.BytesIO(csv)
    elif isinstance(csv, str | os.PathLike):
        path = Path(csv)
        with path.open("rb") as file:
            yield path.name, file
    else:
        name = getattr(csv, "name", None)
        yield (Path(name).name if isinstance(name, str) else "batch.csv"), csv


def calls_query(
    status: str,
    page: int,
    limit: int,
    include_result: bool = False,
    include_attempts: bool = False,
) -> dict[str, str | int]:
    query: dict[str, str | int] = {"status": status, "page": page, "limit": limit}
    wanted = [
        name for name, on in (("result", include_result), ("attempts", include_attempts)) if on
    ]
    if wanted:  # an extension: sent only when asked for
        query["include"] = ",".join(wanted)
    return query


def export_query(format: str, status: str) -> dict[str, str]:
    return {"format": format, "status": status}


def parse(response: httpx.Response) -> Any:
    """The JSON body of a success; a `DialbatchError` for anything else."""
    if not response.is_success:
        raise error_from_response(response)
    try:
        return response.json()
    except ValueError as exc:
        raise DialbatchError(
            response.status_code,
            "Invalid response",
            f"{response.request.url} answered with a body that is not JSON",
            response.text,
        ) from exc


def deadline_after(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def next_pause(batch_id: str, deadline: float | None, poll_interval: float) -> float:
    """Seconds to sleep before the next poll; TimeoutError once the deadline has passed."""
    if deadline is None:
        return poll_interval
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"batch {batch_id} is not complete yet; it keeps running")
    return min(poll_interval, left)


# -- campaign extensions ---------------------------------------------------------------------

WORKSPACE = "/v1/api/workspace"


def idempotency_headers(key: str | None) -> dict[str, str]:
    """The `Idempotency-Key` header (extension), when a key is given."""
    return {"Idempotency-Key": key} if key else {}


def rows_body(
    calls: Sequence[Mapping[str, Any]],
    agent_id: str,
    scheduled_at: ScheduledAt,
    smart_callback: Mapping[str, Any] | None,
    default_country: str | None,
    skip_invalid: bool,
    dedupe: bool,
    failure_stop: Mapping[str, Any] | None = None,
    retry_policy: Mapping[str, Any] | None = None,
    require_consent: bool = False,
    calling_window: Mapping[str, Any] | None = None,
    compliance_profile: str | None = None,
    max_concurrency: int | None = None,
    priority: int | None = None,
) -> dict[str, Any]:
    """The JSON body of a batch created from rows (extension)."""
    body: dict[str, Any] = {"agentId": agent_id, "calls": [dict(c) for c in calls]}
    if scheduled_at is not None:
        body["scheduledAt"] = format_scheduled_at(scheduled_at)
    if smart_callback is not None:
        body["smartCallbackConfig"] = dict(smart_callback)
    if default_country:
        body["defaultCountry"] = default_country
    if skip_invalid:
        body["skipInvalid"] = True
    if dedupe:
        body["dedupe"] = True
    if failure_stop is not None:
        body["failureStop"] = dict(failure_stop)
    if retry_policy is not None:
        body["retryPolicy"] = dict(retry_policy)
    if require_consent:
        body["requireConsent"] = True
    if calling_window is not None:
        body["callingWindow"] = dict(calling_window)
    if compliance_profile is not None:
        body["complianceProfile"] = compliance_profile
    if max_concurrency is not None:
        body["maxConcurrency"] = max_concurrency
    if priority is not None:
        body["priority"] = priority
    return body


def limits_body(
    max_concurrency: int | None, priority: int | None, remove_max_concurrency: bool
) -> dict[str, Any]:
    """The body of a change to a batch's limits: only what is given."""
    body: dict[str, Any] = {}
    if remove_max_concurrency:
        body["maxConcurrency"] = None
    elif max_concurrency is not None:
        body["maxConcurrency"] = max_concurrency
    if priority is not None:
        body["priority"] = priority
    return body


def retry_filter(outcome: str | Sequence[str] | None, error_contains: str | None) -> dict[str, Any]:
    """The optional filter of retry-failed."""
    body: dict[str, Any] = {}
    if outcome is not None:
        body["outcome"] = outcome if isinstance(outcome, str) else list(outcome)
    if error_contains is not None:
        body["errorContains"] = error_contains
    return body
