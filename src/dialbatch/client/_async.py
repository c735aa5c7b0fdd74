"""The async client: the same methods as `Client`, awaited."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from dialbatch.client import _shared
from dialbatch.client._shared import (
    AGENTS,
    BATCHES,
    SUPPRESSIONS,
    VALIDATE,
    WEBHOOKS,
    CsvSource,
    ScheduledAt,
    batch_path,
    suppression_path,
    webhook_path,
)
from dialbatch.client.errors import error_from_response
from dialbatch.client.types import (
    Agent,
    AgentDetail,
    Batch,
    BatchLimits,
    BatchPage,
    BatchProgress,
    Call,
    CallDetail,
    CallPage,
    CancelResult,
    PauseResult,
    StartBatchResult,
    Suppression,
    SuppressionPage,
    SuppressionsAdded,
    ValidateResult,
    Webhook,
    WebhookDelivery,
    WebhookDeliveryPage,
    WorkspacePause,
    WorkspaceRules,
)


class AsyncClient:
    """An async client of a dialbatch server (or any server of Trillet's batch-calls API).

    Use it as an async context manager, or await `aclose()` when done::

        async with AsyncClient("http://127.0.0.1:8000", api_key, "ws_demo") as client:
            batch = await client.start_batch("contacts.csv", agent_id="agent_demo")
            await client.wait(batch["batchId"])

    Refusals raise `DialbatchError` (or a subclass); network failures raise
    `httpx.TransportError`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        workspace_id: str,
        timeout: float | httpx.Timeout = _shared.DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`timeout` is in seconds per network operation; `transport` replaces the network
        (an `httpx.MockTransport`, an `httpx.ASGITransport`...)."""
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=_shared.headers(api_key, workspace_id),
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        return _shared.parse(await self._http.request(method, path, **kwargs))

    async def start_batch(
        self,
        csv: CsvSource,
        agent_id: str,
        scheduled_at: ScheduledAt = None,
        smart_callback: Mapping[str, Any] | None = None,
        default_country: str | None = None,
        skip_invalid: bool = False,
        dedupe: bool = False,
        idempotency_key: str | None = None,
        failure_stop: Mapping[str, Any] | None = None,
        retry_policy: Mapping[str, Any] | None = None,
        require_consent: bool = False,
        calling_window: Mapping[str, Any] | None = None,
        compliance_profile: str | None = None,
        max_concurrency: int | None = None,
        priority: int | None = None,
    ) -> StartBatchResult:
        """Upload a CSV (a path, bytes or a binary file) and queue one call per row.

        `scheduled_at` delays the start (an aware datetime, an ISO 8601 string or epoch ms);
        `smart_callback` is `{"enabled", "maxAttempts", "gaps": [{"days", "hours"}]}`.
        dialbatch extensions: `default_country` (ISO code for numbers without `+`),
        `skip_invalid` (leave bad rows out instead of refusing the file) and `dedupe`
        (drop repeated numbers). A CSV that fails validation raises `BadRequest` whose
        `body["problems"]` lists the rows. `idempotency_key` (extension): sent again within
        24 h, the same request answers the first response instead of a second batch.
        `failure_stop` (extension): `{"enabled", "lastDials", "failedShare",
        "withinSeconds"}`, when the batch pauses itself on a failure spike (default: the
        workspace's rule). `retry_policy` (extension): the retry rule per outcome,
        `{"busy": {"maxDials": 3, "gapsSeconds": [60, 120]}, "voicemail": False, ...}`
        (docs/retries.md); outcomes left out follow `smart_callback`.
        workspace's rule). `require_consent` (extension): refuse rows without
        `consent_basis` and `consent_at` (the workspace's setting may require it anyway).
        workspace's rule). `calling_window` (extension): when, in each recipient's own time,
        a call may start (docs/compliance.md; default: the workspace's). `compliance_profile`
        (extension): "none", "us" or "ca", at least as strict as the workspace's.
        workspace's rule). `max_concurrency` (extension): at most this many of the batch's
        calls live at once (default: only the workspace's cap). `priority` (extension):
        -100 to 100, higher first within the workspace (default 0).
        """
        form = _shared.start_form(
            agent_id,
            scheduled_at,
            smart_callback,
            default_country,
            skip_invalid,
            dedupe,
            failure_stop=failure_stop,
            retry_policy=retry_policy,
            require_consent=require_consent,
            calling_window=calling_window,
            compliance_profile=compliance_profile,
            max_concurrency=max_concurrency,
            priority=priority,
        )
        with _shared.open_csv(csv) as (name, file):
            result: StartBatchResult = await self._request(
                "POST",
                BATCHES,
                data=form,
                files={"file": (name, file, "text/csv")},
                headers=_shared.idempotency_headers(idempotency_key),
            )
        return result

    async def get_batch(self, batch_id: str) -> Batch:
        """The batch's status, counts, timings and recent calls."""
        batch: Batch = await self._request("GET", batch_path(batch_id))
        return batch

    async def get_progress(self, batch_id: str) -> BatchProgress:
        """The batch's progress, flat (`GET .../status`)."""
        progress: BatchProgress = await self._request("GET", batch_path(batch_id, "status"))
        return progress

    async def list_calls(
        self,
        batch_id: str,
        status: str = "all",
        page: int = 1,
        limit: int = 20,
        include_result: bool = False,
        include_attempts: bool = False,
    ) -> CallPage:
        """One page of the batch's calls in CSV row order, optionally of one status.

        `page` is 1-based; `limit` is at most 100. A page past the last is empty, with
        `hasNext` false.
        `include_result` (a dialbatch extension) adds each call's `attempts` and, once
        completed, its `result`: results a page at a time. `include_attempts` (also an
        extension) adds each call's `attemptHistory`, every dial as the call's detail shows.
        """
        query = _shared.calls_query(status, page, limit, include_result, include_attempts)
        body: CallPage = await self._request("GET", batch_path(batch_id, "calls"), params=query)
        return body

    async def iter_call_pages(
        self,
        batch_id: str,
        status: str = "all",
        limit: int = _shared.MAX_PAGE_SIZE,
        include_result: bool = False,
        include_attempts: bool = False,
    ) -> AsyncIterator[CallPage]:
        """Every page of the batch's calls, first to last (one request per page)."""
        page = 1
        while True:
            body = await self.list_calls(
                batch_id,
                status=status,
                page=page,
                limit=limit,
                include_result=include_result,
                include_attempts=include_attempts,
            )
            yield body
            if not body["pagination"]["hasNext"]:
                return
            page += 1

    async def iter_calls(
        self,
        batch_id: str,
        status: str = "all",
        limit: int = _shared.MAX_PAGE_SIZE,
        include_result: bool = False,
        include_attempts: bool = False,
    ) -> AsyncIterator[Call]:
        """Every call of the batch, walking the pages lazily.

        Unfiltered, the order is the CSV's and stable. With a status filter on a running
        batch, a call that changes status between two pages can be missed or seen twice.
        """
        async for body in self.iter_call_pages(
            batch_id,
            status=status,
            limit=limit,
            include_result=include_result,
            include_attempts=include_attempts,
        ):
            for call in body["calls"]:
                yield call

    async def iter_export(
        self, batch_id: str, format: str = "csv", status: str = "all"
    ) -> AsyncIterator[bytes]:
        """The batch's export (a dialbatch extension) as it streams: `format` is `csv`
        (one row per call, CSV columns as columns) or `jsonl` (one JSON object per line).

        A refusal (unknown batch or format) raises `DialbatchError` at the first step,
        before any byte is yielded. The whole export is never held in memory.
        """
        query = _shared.export_query(format, status)
        path = batch_path(batch_id, "export")
        async with self._http.stream("GET", path, params=query) as response:
            if not response.is_success:
                await response.aread()
                raise error_from_response(response)
            async for chunk in response.aiter_bytes():
                yield chunk

    async def get_call(self, batch_id: str, job_id: str) -> CallDetail:
        """One call: timings, error, attempts and (when completed) the agent's result."""
        call: CallDetail = await self._request("GET", batch_path(batch_id, "calls", job_id))
        return call

    async def cancel_batch(self, batch_id: str, hangup_active: bool = False) -> CancelResult:
        """Cancel a batch: waiting calls are never dialed; active calls run to their end,
        or with `hangup_active` (a dialbatch extension) are hung up now.

        Cannot be undone. A batch that already finished raises `Conflict`.
        """
        params = {"hangupActive": "true"} if hangup_active else None
        result: CancelResult = await self._request("DELETE", batch_path(batch_id), params=params)
        return result

    async def list_batches(self, page: int = 1, limit: int = 20) -> BatchPage:
        """The workspace's batches, newest first (extension)."""
        body: BatchPage = await self._request("GET", BATCHES, params={"page": page, "limit": limit})
        return body

    async def readiness(self) -> dict[str, Any]:
        """`GET /readyz` (dialbatch): the server's readiness, with `workers`, the processes
        seen dispatching in the last minute (none: queued batches will not start)."""
        body: dict[str, Any] = await self._request("GET", "/readyz")
        return body

    async def list_agents(self) -> list[Agent]:
        """The workspace's agents (extension)."""
        agents: list[Agent] = (await self._request("GET", AGENTS))["agents"]
        return agents

    async def create_agent(
        self,
        name: str,
        provider: str = "simulated",
        provider_config: Mapping[str, Any] | None = None,
        from_numbers: list[str] | None = None,
        caller_number_limits: Mapping[str, Mapping[str, int]] | None = None,
    ) -> Agent:
        """Create an agent (extension); its `id` is what `start_batch` takes.
        `from_numbers` is its pool of caller numbers; `caller_number_limits` gives some of
        them their own limits: ``{"+12125550100": {"callsPerSecond": 1, "perDay": 500}}``."""
        body: dict[str, Any] = {
            "name": name,
            "provider": provider,
            "providerConfig": dict(provider_config or {}),
            "fromNumbers": list(from_numbers or []),
        }
        if caller_number_limits is not None:
            body["callerNumberLimits"] = {n: dict(v) for n, v in caller_number_limits.items()}
        agent: Agent = await self._request("POST", AGENTS, json=body)
        return agent

    async def get_agent(self, agent_id: str) -> AgentDetail:
        """One agent with its caller-number pool, limits and warnings (extension)."""
        agent: AgentDetail = await self._request("GET", _shared.agent_path(agent_id))
        return agent

    async def set_caller_numbers(
        self,
        agent_id: str,
        from_numbers: list[str] | None = None,
        caller_number_limits: Mapping[str, Mapping[str, int]] | None = None,
    ) -> AgentDetail:
        """Replace the agent's pool of caller numbers and/or their limits (extension);
        what is left out is kept (limits of numbers that leave the pool go with them)."""
        body: dict[str, Any] = {}
        if from_numbers is not None:
            body["fromNumbers"] = list(from_numbers)
        if caller_number_limits is not None:
            body["callerNumberLimits"] = {n: dict(v) for n, v in caller_number_limits.items()}
        agent: AgentDetail = await self._request("PATCH", _shared.agent_path(agent_id), json=body)
        return agent

    async def wait(
        self,
        batch_id: str,
        poll_interval: float = 1.0,
        timeout: float | None = None,  # noqa: ASYNC109 (same signature as Client.wait)
        on_progress: Callable[[BatchProgress], object] | None = None,
    ) -> BatchProgress:
        """Poll the batch's progress until it is complete, and return the last progress.

        `on_progress` is called with every progress read, the last one included; it may
        be a plain function or a coroutine function. After `timeout` seconds,
        `TimeoutError` is raised; the batch keeps running either way.
        """
        deadline = _shared.deadline_after(timeout)
        while True:
            progress = await self.get_progress(batch_id)
            if on_progress is not None:
                outcome = on_progress(progress)
                if inspect.isawaitable(outcome):
                    await outcome
            if progress["isComplete"]:
                return progress
            await asyncio.sleep(_shared.next_pause(batch_id, deadline, poll_interval))

    # -- campaign extensions ------------------------------------------------------------

    async def create_batch_from_rows(
        self,
        calls: Sequence[Mapping[str, Any]],
        agent_id: str,
        scheduled_at: ScheduledAt = None,
        smart_callback: Mapping[str, Any] | None = None,
        default_country: str | None = None,
        skip_invalid: bool = False,
        dedupe: bool = False,
        idempotency_key: str | None = None,
        failure_stop: Mapping[str, Any] | None = None,
        retry_policy: Mapping[str, Any] | None = None,
        require_consent: bool = False,
        calling_window: Mapping[str, Any] | None = None,
        compliance_profile: str | None = None,
        max_concurrency: int | None = None,
        priority: int | None = None,
    ) -> StartBatchResult:
        """Queue one call per row given as data (extension: a JSON body, no CSV).

        Each row is `{"phone_number": ..., **row_variables}`; values are stored as text.
        Validation is the CSV's; a problem names its row `calls[i]`, i counted from 0.
        The other arguments are those of `start_batch`.
        """
        body = _shared.rows_body(
            calls,
            agent_id,
            scheduled_at,
            smart_callback,
            default_country,
            skip_invalid,
            dedupe,
            failure_stop=failure_stop,
            retry_policy=retry_policy,
            require_consent=require_consent,
            calling_window=calling_window,
            compliance_profile=compliance_profile,
            max_concurrency=max_concurrency,
            priority=priority,
        )
        result: StartBatchResult = await self._request(
            "POST", BATCHES, json=body, headers=_shared.idempotency_headers(idempotency_key)
        )
        return result

    async def validate_batch(
        self,
        csv: CsvSource,
        agent_id: str,
        scheduled_at: ScheduledAt = None,
        smart_callback: Mapping[str, Any] | None = None,
        default_country: str | None = None,
        skip_invalid: bool = False,
        dedupe: bool = False,
        failure_stop: Mapping[str, Any] | None = None,
        retry_policy: Mapping[str, Any] | None = None,
        require_consent: bool = False,
        calling_window: Mapping[str, Any] | None = None,
        compliance_profile: str | None = None,
        max_concurrency: int | None = None,
        priority: int | None = None,
    ) -> ValidateResult:
        """Check a CSV as `start_batch` would send it, creating nothing (extension): row
        counts and problems, whether the create would accept it, the time zones found and
        an estimate of the run. A file that cannot be read raises `BadRequest`."""
        form = _shared.start_form(
            agent_id,
            scheduled_at,
            smart_callback,
            default_country,
            skip_invalid,
            dedupe,
            failure_stop=failure_stop,
            retry_policy=retry_policy,
            require_consent=require_consent,
            calling_window=calling_window,
            compliance_profile=compliance_profile,
            max_concurrency=max_concurrency,
            priority=priority,
        )
        with _shared.open_csv(csv) as (name, file):
            result: ValidateResult = await self._request(
                "POST", VALIDATE, data=form, files={"file": (name, file, "text/csv")}
            )
        return result

    async def validate_rows(
        self,
        calls: Sequence[Mapping[str, Any]],
        agent_id: str,
        scheduled_at: ScheduledAt = None,
        smart_callback: Mapping[str, Any] | None = None,
        default_country: str | None = None,
        skip_invalid: bool = False,
        dedupe: bool = False,
        failure_stop: Mapping[str, Any] | None = None,
        retry_policy: Mapping[str, Any] | None = None,
        require_consent: bool = False,
        calling_window: Mapping[str, Any] | None = None,
        compliance_profile: str | None = None,
        max_concurrency: int | None = None,
        priority: int | None = None,
    ) -> ValidateResult:
        """`validate_batch` for rows given as data, as `create_batch_from_rows` sends them."""
        body = _shared.rows_body(
            calls,
            agent_id,
            scheduled_at,
            smart_callback,
            default_country,
            skip_invalid,
            dedupe,
            failure_stop=failure_stop,
            retry_policy=retry_policy,
            require_consent=require_consent,
            calling_window=calling_window,
            compliance_profile=compliance_profile,
            max_concurrency=max_concurrency,
            priority=priority,
        )
        result: ValidateResult = await self._request("POST", VALIDATE, json=body)
        return result

    async def update_batch(
        self,
        batch_id: str,
        *,
        max_concurrency: int | None = None,
        priority: int | None = None,
        remove_max_concurrency: bool = False,
    ) -> BatchLimits:
        """Change a running batch's `max_concurrency` and/or `priority` (extension); the
        next claim applies them. `remove_max_concurrency` drops its own cap. A finished
        or cancelled batch raises `Conflict`, a bad value `BadRequest`."""
        body = _shared.limits_body(max_concurrency, priority, remove_max_concurrency)
        result: BatchLimits = await self._request("PATCH", batch_path(batch_id), json=body)
        return result

    async def pause_batch(self, batch_id: str) -> PauseResult:
        """Pause a batch (extension): no new dial starts; live calls run to their end.
        Idempotent; a finished or cancelled batch raises `Conflict`."""
        result: PauseResult = await self._request("POST", batch_path(batch_id, "pause"))
        return result

    async def resume_batch(self, batch_id: str) -> PauseResult:
        """Resume a paused batch (extension). Idempotent."""
        result: PauseResult = await self._request("POST", batch_path(batch_id, "resume"))
        return result

    async def get_workspace(self) -> WorkspacePause:
        """Whether the whole workspace is paused (extension)."""
        result: WorkspacePause = await self._request("GET", _shared.WORKSPACE)
        return result

    async def pause_workspace(self) -> WorkspacePause:
        """Pause every batch of the workspace (extension): an emergency stop."""
        result: WorkspacePause = await self._request("POST", _shared.WORKSPACE + "/pause")
        return result

    async def resume_workspace(self) -> WorkspacePause:
        """Undo `pause_workspace` (batches paused one by one stay paused)."""
        result: WorkspacePause = await self._request("POST", _shared.WORKSPACE + "/resume")
        return result

    async def set_failure_stop(self, rule: Mapping[str, Any] | None) -> dict[str, Any]:
        """Set the workspace's automatic stop on failure spikes (extension): `{"enabled",
        "lastDials", "failedShare", "withinSeconds"}` (fields left out take the default),
        or None for the default. Batches without their own rule follow it."""
        result: dict[str, Any] = await self._request(
            "PUT", _shared.WORKSPACE + "/failure-stop", json=None if rule is None else dict(rule)
        )
        return result

    async def retry_failed(
        self,
        batch_id: str,
        outcome: str | Sequence[str] | None = None,
        error_contains: str | None = None,
        idempotency_key: str | None = None,
    ) -> StartBatchResult:
        """A new batch of the batch's failed calls (extension), with their original numbers
        and row variables; optionally only those whose last dial ended with `outcome`
        (busy, no-answer, voicemail, failed, canceled) or whose error contains
        `error_contains`. Nothing to retry raises `BadRequest`."""
        result: StartBatchResult = await self._request(
            "POST",
            batch_path(batch_id, "retry-failed"),
            json=_shared.retry_filter(outcome, error_contains),
            headers=_shared.idempotency_headers(idempotency_key),
        )
        return result

    # -- Webhooks (extension) -------------------------------------------------------------

    async def create_webhook(self, url: str, events: list[str], description: str = "") -> Webhook:
        """Add a webhook endpoint for `events`; the answer's `secret` is shown only now."""
        body = {"url": url, "events": list(events), "description": description}
        webhook: Webhook = await self._request("POST", WEBHOOKS, json=body)
        return webhook

    async def list_webhooks(self) -> list[Webhook]:
        webhooks: list[Webhook] = (await self._request("GET", WEBHOOKS))["webhooks"]
        return webhooks

    async def get_webhook(self, webhook_id: str) -> Webhook:
        webhook: Webhook = await self._request("GET", webhook_path(webhook_id))
        return webhook

    async def delete_webhook(self, webhook_id: str) -> dict[str, Any]:
        """Remove an endpoint: nothing more is sent to it; its delivery log stays."""
        result: dict[str, Any] = await self._request("DELETE", webhook_path(webhook_id))
        return result

    async def list_webhook_deliveries(
        self, webhook_id: str, status: str = "all", page: int = 1, limit: int = 20
    ) -> WebhookDeliveryPage:
        """An endpoint's deliveries, newest first, each with every attempt."""
        params = {"status": status, "page": page, "limit": limit}
        found: WebhookDeliveryPage = await self._request(
            "GET", webhook_path(webhook_id, "deliveries"), params=params
        )
        return found

    async def replay_webhook_delivery(self, webhook_id: str, delivery_id: int) -> WebhookDelivery:
        """Send a delivery (a dead letter, say) again now."""
        path = webhook_path(webhook_id, "deliveries", str(delivery_id), "replay")
        delivery: WebhookDelivery = await self._request("POST", path)
        return delivery

    # -- The suppression (do-not-call) list (extension) ----------------------------------

    async def suppress(
        self,
        numbers: Sequence[str],
        reason: str = "",
        expires_at: ScheduledAt = None,
        default_country: str | None = None,
    ) -> SuppressionsAdded:
        """Never call `numbers` from this workspace again (until `expires_at`, if given):
        refused at upload, and not dialed even in batches uploaded before. One invalid
        number raises `BadRequest` (its `body["problems"]` lists them) and adds nothing."""
        body: dict[str, Any] = {"phoneNumbers": list(numbers)}
        body.update(_shared.suppression_fields(reason, expires_at, default_country))
        added: SuppressionsAdded = await self._request("POST", SUPPRESSIONS, json=body)
        return added

    async def import_suppressions(
        self,
        csv: CsvSource,
        reason: str = "",
        expires_at: ScheduledAt = None,
        default_country: str | None = None,
    ) -> SuppressionsAdded:
        """Suppress every number of a CSV with a `phone_number` column (and an optional
        `reason` column, which wins over `reason`); all or nothing, as `suppress`."""
        form = _shared.suppression_fields(reason, expires_at, default_country)
        with _shared.open_csv(csv) as (name, file):
            added: SuppressionsAdded = await self._request(
                "POST", SUPPRESSIONS, data=form, files={"file": (name, file, "text/csv")}
            )
        return added

    async def list_suppressions(self, page: int = 1, limit: int = 20) -> SuppressionPage:
        """The numbers suppressed now, newest first."""
        found: SuppressionPage = await self._request(
            "GET", SUPPRESSIONS, params={"page": page, "limit": limit}
        )
        return found

    async def get_suppression(self, number: str) -> Suppression:
        """The entry of `number` (in E.164); `NotFound` when it is not suppressed."""
        entry: Suppression = await self._request("GET", suppression_path(number))
        return entry

    async def remove_suppression(self, number: str) -> dict[str, Any]:
        """Take `number` (in E.164) off the list: it may be called again."""
        result: dict[str, Any] = await self._request("DELETE", suppression_path(number))
        return result

    # -- The workspace's dialing rules (extension) -----------------------------------------

    async def set_require_consent(self, required: bool) -> WorkspaceRules:
        """Every batch of the workspace refuses rows without `consent_basis` and
        `consent_at` (True), or only those created with `require_consent` (False)."""
        body = {"requireConsent": bool(required)}
        result: WorkspaceRules = await self._request("PATCH", _shared.WORKSPACE, json=body)
        return result

    async def set_frequency_caps(
        self, per_24h: int | None = None, per_30d: int | None = None
    ) -> WorkspaceRules:
        """At most `per_24h` / `per_30d` dials to one number across every batch of the
        workspace; a capped call waits until the cap allows a dial. Both None: no caps."""
        caps = {k: v for k, v in (("per24h", per_24h), ("per30d", per_30d)) if v is not None}
        body = {"frequencyCaps": caps or None}
        result: WorkspaceRules = await self._request("PATCH", _shared.WORKSPACE, json=body)
        return result

    async def set_retry_policy(self, policy: Mapping[str, Any] | None) -> WorkspaceRules:
        """The workspace's default retry rule per outcome (extension), taken by each new
        batch that sends no smartCallbackConfig (its own retry_policy wins per outcome);
        None removes it. Running batches keep the rules they were created with."""
        body = {"retryPolicy": None if policy is None else dict(policy)}
        result: WorkspaceRules = await self._request("PATCH", _shared.WORKSPACE, json=body)
        return result

    async def set_compliance_profile(self, profile: str) -> WorkspaceRules:
        """The rule pack every batch of the workspace obeys at least: "none", "us" or "ca"
        (docs/compliance.md). Applies to running batches at their next dial."""
        body = {"complianceProfile": profile}
        result: WorkspaceRules = await self._request("PATCH", _shared.WORKSPACE, json=body)
        return result

    async def set_default_calling_window(self, window: Mapping[str, Any] | None) -> WorkspaceRules:
        """The calling window of every batch that has none of its own, read at dial time
        (docs/compliance.md); None clears it."""
        body = {"callingWindow": None if window is None else dict(window)}
        result: WorkspaceRules = await self._request("PATCH", _shared.WORKSPACE, json=body)
        return result
