"""The FastAPI application factory. It knows nothing of dispatchers: whoever runs the app
(the `serve` command, a test) hands it the database and a `wake` hint."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

import dialbatch
from dialbatch.api import errors
from dialbatch.api.openapi import document_errors
from dialbatch.api.ratelimit import RateLimiter
from dialbatch.api.routers import (
    agents,
    batches,
    callbacks,
    campaign,
    docs,
    health,
    metrics,
    results,
    suppressions,
    workspace_settings,
)
from dialbatch.api.routers import events as events_router
from dialbatch.api.routers import webhooks as webhooks_router
from dialbatch.domain.retry import RetryConfig
from dialbatch.events.apply import EventApplier
from dialbatch.events.stream import OutboxPoller, close_streams_on_exit
from dialbatch.providers.base import Provider
from dialbatch.settings import Settings
from dialbatch.signing import AgentSecrets
from dialbatch.store.engine import Database
from dialbatch.web import dashboard

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(
    db: Database,
    settings: Settings,
    *,
    wake: Callable[[], None] = lambda: None,
    lifespan: Lifespan | None = None,
    providers: Mapping[str, Provider] | None = None,
) -> FastAPI:
    app = FastAPI(
        title="dialbatch",
        version=dialbatch.__version__,
        description=(
            "Batch outbound calling for AI voice agents. Speaks Trillet's batch-calls API; "
            "fields marked *extension* are dialbatch's additions."
        ),
        lifespan=close_streams_on_exit(lifespan),
        # /docs and /redoc are served from this server's own files (routers/docs.py).
        docs_url=None,
        redoc_url=None,
    )
    app.state.db = db
    app.state.settings = settings
    app.state.wake = wake
    # Callbacks arrive here and cancel may hang up live calls: this process's adapters.
    app.state.providers = dict(providers or {})
    app.state.retry = RetryConfig.from_settings(settings)
    # Concurrent callbacks' outcomes are applied together (events/apply.py); workers in
    # other processes hear of the freed slots at once (NOTIFY), not at their next poll.
    app.state.events = EventApplier(db, app.state.retry, wake_workers=db.wakes_other_processes)
    # A short key or an unwritable data dir fails the start, not the first agent report.
    app.state.agent_secrets = AgentSecrets.from_settings(settings)
    # API rate limits: shared buckets on PostgreSQL, this process's on SQLite.
    app.state.rate_limiter = RateLimiter.for_app(db, settings)
    errors.install(app)
    app.include_router(batches.router)
    app.include_router(batches.legacy_router)
    app.include_router(agents.router)
    app.include_router(callbacks.router)
    app.include_router(results.router)
    app.include_router(health.router)
    app.include_router(campaign.router)  # extensions: pause/resume, retry-failed
    app.include_router(suppressions.router)  # extension: the do-not-call list
    app.include_router(workspace_settings.router)  # extension: frequency caps
    # Live events and webhooks (extensions): one outbox poller per process serves every
    # event-stream client of the app.
    app.state.event_poller = OutboxPoller(db, settings.events_poll_s)
    app.include_router(events_router.router)
    app.include_router(webhooks_router.router)
    app.include_router(metrics.router)
    docs.install(app)
    # 400, 401 and 429 documented on every route they apply to, from its dependencies.
    document_errors(app)
    # The dashboard at `/` and its files under `/ui/` (web/dashboard.py): after the API, so
    # it can shadow nothing.
    dashboard.mount(app)
    return app
