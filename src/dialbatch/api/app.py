"""The FastAPI application factory. It knows nothing of dispatchers: whoever runs the app
(the `serve` command, a test) hands it the database and a `wake` hint."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

import dialbatch
from dialbatch.api import errors
from dialbatch.api.agent_auth import AgentSecrets
from dialbatch.api.routers import agents, batches, callbacks, health, results
from dialbatch.events.apply import EventApplier
from dialbatch.providers.base import Provider
from dialbatch.settings import Settings
from dialbatch.store.engine import Database
from dialbatch.store.queue import RetryConfig
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
        lifespan=lifespan,
    )
    app.state.db = db
    app.state.settings = settings
    app.state.wake = wake
    # Callbacks arrive here and cancel may hang up live calls: this process's adapters.
    app.state.providers = dict(providers or {})
    app.state.retry = RetryConfig.from_settings(settings)
    # Concurrent callbacks' outcomes are applied together (events/apply.py); workers in
    # other processes hear of the freed slots at once (NOTIFY), not at their next poll.
    app.state.events = EventApplier(db, app.state.retry, wake_workers=not db.is_sqlite)
    # A short key or an unwritable data dir fails the start, not the first agent report.
    app.state.agent_secrets = AgentSecrets.from_settings(settings)
    errors.install(app)
    app.include_router(batches.router)
    app.include_router(batches.legacy_router)
    app.include_router(agents.router)
    app.include_router(callbacks.router)
    app.include_router(results.router)
    app.include_router(health.router)
    # The dashboard at `/` and its files under `/ui/` (web/dashboard.py): after the API, so
    # it can shadow nothing.
    dashboard.mount(app)
    return app
