"""Configuration, read once from `DIALBATCH_*` environment variables.

Every field here is documented in the table in docs/configuration.md; keep them in step.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALBATCH_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    data_dir: Path = Path("./data")
    database_url: str | None = None

    demo_workspace_id: str | None = None
    demo_api_key: str | None = None
    demo_max_concurrent_calls: int = Field(10, ge=1, le=100_000)
    demo_calls_per_second: float = Field(5.0, gt=0, le=10_000)
    demo_seed: int = 7

    simulated_time_scale: float = Field(1.0, gt=0, le=1000)

    max_upload_mb: float = Field(20.0, gt=0)
    # Most calls a JSON create (POST /v1/api/batch-calls as application/json) may hold; its
    # body also counts against max_upload_mb.
    max_json_calls: int = Field(100_000, ge=1, le=1_000_000)
    dispatch: bool = True
    poll_interval_s: float = Field(0.25, gt=0, le=60)
    claim_lease_s: float = Field(30.0, gt=0)
    dial_lease_s: float = Field(60.0, gt=0)
    connection_attempts: int = Field(3, ge=1, le=10)
    retry_backoff_ms: int = Field(1000, ge=0)
    log_level: str = "info"

    # The address providers reach this service at (callbacks, TwiML); signatures that cover
    # the URL (Twilio's) are checked against it. Default: http://<host>:<port>.
    public_url: str | None = None
    # Derives every agent's signing secret (agent results); unset: a random key kept in
    # <data_dir>/secret.key. Several hosts must share one value.
    secret_key: str | None = None
    # A dial heard nothing from its provider for this long: ask the provider (fetch_status)
    # instead of waiting for a callback that may have been lost.
    reconcile_quiet_s: float = Field(120.0, gt=0)
    # Stopping (SIGTERM, Ctrl-C): how long to wait for the calls this process follows in
    # memory (simulated, SIP) to end before handing them over to the next worker.
    stop_grace_s: float = Field(30.0, ge=0, le=3600)

    # API rate limits (docs/configuration.md, "Rate limits"): requests a second per API key
    # with their burst; wrong keys per source address, slowed down then refused; provider
    # callbacks and agent results per source address. A rate of 0 turns that limit off.
    rate_limit_per_s: float = Field(50.0, ge=0)
    rate_limit_burst: int = Field(100, ge=1)
    auth_failures_per_min: float = Field(10.0, ge=0)
    auth_failure_burst: int = Field(10, ge=1)
    auth_failure_max_delay_s: float = Field(5.0, ge=0, le=60)
    callback_rate_limit_per_s: float = Field(1000.0, ge=0)
    callback_rate_limit_burst: int = Field(2000, ge=1)

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    log_format: Literal["text", "json"] = "text"

    # /metrics asks for `Authorization: Bearer <token>` when set; unset, it is open (like
    # /healthz). A `worker` serves its own counters on metrics_port when that is set.
    metrics_token: str | None = None
    metrics_port: int | None = Field(None, ge=1, le=65535)

    @cached_property
    def effective_database_url(self) -> str:
        """The URL the engine uses: async drivers, SQLite file under data_dir by default."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'dialbatch.db'}"
        return to_async_url(url)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    # --- Live events and outbound webhooks (events/) ---
    # How often each process's one outbox poller reads new events for its SSE clients.
    events_poll_s: float = Field(0.2, gt=0, le=10)
    # A comment line on every event stream this often, so proxies keep it open.
    sse_heartbeat_s: float = Field(15.0, gt=0, le=300)
    # Webhook URLs that resolve to loopback, private or link-local addresses are refused
    # unless this is true (tests, a receiver on the same host). Never in production.
    webhooks_allow_private: bool = False
    webhook_timeout_s: float = Field(10.0, gt=0, le=120)
    # Retries: base * 2^(attempt-1), at most max, until the window since the first attempt
    # has passed; then the delivery is a dead letter (listable, replayable).
    webhook_retry_base_s: float = Field(5.0, gt=0)
    webhook_retry_max_s: float = Field(3600.0, gt=0)
    webhook_retry_window_s: float = Field(86400.0, gt=0)
    # Deliveries in flight at once per worker process.
    webhook_concurrency: int = Field(64, ge=1, le=1000)
    webhook_poll_s: float = Field(0.2, gt=0, le=60)


def to_async_url(url: str) -> str:
    """Accept plain `sqlite:///` and `postgresql://` URLs; pick the async driver ourselves."""
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url[len("sqlite:") :]
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url
