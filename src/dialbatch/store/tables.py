"""Table definitions (SQLAlchemy Core). Migrations under `migrations/` must match these;
tests/store/test_migrations.py compares them.

Times are integer milliseconds since the epoch everywhere: the contract's unit, and the
same on both engines.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # An emergency stop for every batch of the workspace (migration 0006): while set, no
    # claim and no intent of the workspace succeeds (store/pauses.py).
    sa.Column("paused_at", sa.BigInteger, nullable=True),
    # At most N dials per number per rolling 24 h / 30 days across every batch (migration
    # 0009): {"per24h": n, "per30d": m}, either optional; NULL: no caps (domain/caps.py).
    sa.Column("frequency_caps", sa.JSON, nullable=True),
    # The workspace's automatic stop on failure spikes (domain/failure_stop.py, migration
    # 0010); null: the default.
    sa.Column("failure_stop", sa.JSON, nullable=True),
    # The default retry policy per outcome (domain/retry_policy.py, migration 0012) that a
    # new batch takes unless it sends its own smartCallbackConfig; NULL: none.
    sa.Column("retry_policy", sa.JSON(none_as_null=True), nullable=True),
    # Every batch of the workspace refuses rows without consent_basis and consent_at
    # (migration 0012/0013): a floor that a batch cannot turn off.
    sa.Column("require_consent", sa.Boolean, nullable=False, server_default=sa.false()),
    # The rule pack every batch obeys at least (domain/compliance, migration 0012): "none",
    # "us" or "ca"; and the calling window of a batch that has none of its own (JSON as
    # domain/windows.py validates it; NULL: none). Both are read at dial time.
    sa.Column("compliance_profile", sa.String(16), nullable=False, server_default="none"),
    sa.Column("calling_window", sa.JSON(none_as_null=True), nullable=True),
)

# The limiter row *is* the distributed rate schedule and concurrency semaphore: it is locked
# inside the claim transaction, so every worker shares one exact budget.
workspace_limiter = sa.Table(
    "workspace_limiter",
    metadata,
    sa.Column(
        "workspace_id",
        sa.String(64),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("calls_per_second", sa.Float, nullable=False),
    # The token bucket of migration 0001, no longer read (kept: dropping columns is a
    # table rebuild on SQLite, for nothing).
    sa.Column("burst", sa.Float, nullable=False),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("refilled_at", sa.BigInteger, nullable=False),
    sa.Column("max_active", sa.Integer, nullable=False),
    sa.Column("active", sa.Integer, nullable=False, server_default="0"),
    # The start time (database ms, fractional) the next call claimed may have: calls start
    # exactly 1/calls_per_second apart across all workers (store/queue.claim).
    sa.Column("next_start_at", sa.Float, nullable=False, server_default="0"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "workspace_id",
        sa.String(64),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    sa.Index("ix_api_keys_prefix", "prefix"),
)

agents = sa.Table(
    "agents",
    metadata,
    sa.Column(
        "workspace_id",
        sa.String(64),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("provider_config", sa.JSON, nullable=False),
    sa.Column("from_numbers", sa.JSON, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # The agent's signing secret is derived from the server's key and this version, never
    # stored; rotating it bumps the version (migration 0002).
    sa.Column("secret_version", sa.Integer, nullable=False, server_default="1"),
    # Limits of some of its caller numbers (migration 0018): {"+1212...": {"callsPerSecond":
    # 1, "perDay": 500}}; NULL: none (domain/caller_pool.py).
    sa.Column("caller_limits", sa.JSON, nullable=True),
)

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "workspace_id",
        sa.String(64),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("agent_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("total_calls", sa.Integer, nullable=False),
    sa.Column("scheduled_at", sa.BigInteger, nullable=False),
    sa.Column("callback_policy", sa.JSON, nullable=False),
    sa.Column("source_name", sa.String(255), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("started_at", sa.BigInteger, nullable=True),
    sa.Column("completed_at", sa.BigInteger, nullable=True),
    sa.Column("cancelled_at", sa.BigInteger, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # Round-robin fairness between batches of one workspace.
    sa.Column("last_claimed_at", sa.BigInteger, nullable=False, server_default="0"),
    # Paused (migration 0006): the status stays what it was, so resuming restores it; the
    # claim and the intent step skip a batch while this is set (store/pauses.py).
    sa.Column("paused_at", sa.BigInteger, nullable=True),
    # The batch this one retries the failed calls of (POST .../retry-failed).
    sa.Column("parent_batch_id", sa.String(64), nullable=True),
    # Automatic stop on failure spikes (migration 0010): the batch's own rule (null: its
    # workspace's), why it paused itself, and when it was last resumed (dials that ended
    # before do not count again).
    sa.Column("failure_stop", sa.JSON, nullable=True),
    sa.Column("pause_reason", sa.Text, nullable=True),
    sa.Column("resumed_at", sa.BigInteger, nullable=True),
    # The batch's own calling window, validated JSON (domain/windows.py); NULL: none
    # (migration 0011). The claim and the intent step hold calls outside it back.
    # none_as_null: no window is SQL NULL, not JSON 'null', so "IS NOT NULL" finds windows.
    sa.Column("calling_window", sa.JSON(none_as_null=True), nullable=True),
    # The batch's retry rules per outcome, over its smartCallbackConfig (migration 0012/0013):
    # its own retryPolicy and the workspace default it took when created; NULL: none.
    sa.Column("retry_policy", sa.JSON(none_as_null=True), nullable=True),
    # Whether the batch was created requiring consent on every row (its own requireConsent
    # or the workspace's; migration 0012).
    sa.Column("require_consent", sa.Boolean, nullable=False, server_default=sa.false()),
    # The profile the batch was created under (migration 0012): its own, or its workspace's
    # at the time. At dial time it obeys this and its workspace's current profile, both.
    sa.Column("compliance_profile", sa.String(16), nullable=False, server_default="none"),
    # Per-batch limits (migration 0012): at most `max_concurrency` of its calls live at once
    # (NULL: only the workspace's cap), and `priority` (higher first) orders the workspace's
    # batches in the claim; equal priorities share fairly.
    sa.Column("max_concurrency", sa.Integer, nullable=True),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_batches_workspace_created", "workspace_id", "created_at"),
    sa.Index("ix_batches_runnable", "status", "scheduled_at"),
    sa.Index(
        "ix_batches_parent",
        "parent_batch_id",
        sqlite_where=sa.text("parent_batch_id IS NOT NULL"),
        postgresql_where=sa.text("parent_batch_id IS NOT NULL"),
    ),
)

calls = sa.Table(
    "calls",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    # No foreign key: calls are only ever inserted with their batch, in its transaction,
    # and batches are never deleted; the per-row check cost ~0.6 s per 300k-row upload.
    sa.Column("batch_id", sa.String(64), nullable=False),
    sa.Column("workspace_id", sa.String(64), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("phone_number", sa.String(32), nullable=False),
    sa.Column("metadata", sa.Text, nullable=False),  # JSON text, written once at ingest
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("connection_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("unreached", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_token", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_expires", sa.BigInteger, nullable=True),
    sa.Column("provider_call_id", sa.String(128), nullable=True),
    sa.Column("started_at", sa.BigInteger, nullable=True),
    sa.Column("ended_at", sa.BigInteger, nullable=True),
    sa.Column("duration_s", sa.Float, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("result", sa.JSON, nullable=True),
    # The pre-dial gate's last word when it held the call back or refused it (migration
    # 0009): {"kind", "message", "rule"?, "until"?, "at"}; shown as `gateDecision`.
    sa.Column("gate_decision", sa.JSON, nullable=True),
    # The row's own IANA zone from the upload's `timezone` column (migration 0012/0013); the gate
    # uses it instead of the number's zones. NULL: inferred from the number.
    sa.Column("timezone", sa.String(64), nullable=True),
    # The row's consent record (`consent_basis`, `consent_at` columns; migration 0012).
    sa.Column("consent_basis", sa.Text, nullable=True),
    sa.Column("consent_at", sa.BigInteger, nullable=True),
    # The kind of that decision while it still holds the call (waiting) or ended it (failed);
    # NULL once the call is claimed again (migration 0012). Read by the batch's gate summary.
    sa.Column("gate_hold", sa.String(16), nullable=True),
    sa.UniqueConstraint("batch_id", "seq", name="uq_calls_batch_seq"),
    # Partial: a plain UNIQUE index would hold one NULL entry per never-dialed call, and
    # cost every upload of 300k rows about a second.
    sa.Index(
        "uq_calls_provider_call_id",
        "provider_call_id",
        unique=True,
        sqlite_where=sa.text("provider_call_id IS NOT NULL"),
        postgresql_where=sa.text("provider_call_id IS NOT NULL"),
    ),
    sa.Index(
        "ix_calls_due",
        "batch_id",
        "next_attempt_at",
        "id",
        sqlite_where=sa.text("status = 'waiting'"),
        postgresql_where=sa.text("status = 'waiting'"),
    ),
    # Filtered listings of calls that have left `waiting`. Fresh rows skip it, which halves
    # the index work of an upload; waiting calls are listed through ix_calls_due instead.
    sa.Index(
        "ix_calls_batch_status_seq",
        "batch_id",
        "status",
        "seq",
        sqlite_where=sa.text("status <> 'waiting'"),
        postgresql_where=sa.text("status <> 'waiting'"),
    ),
    # The batch's gate summary: a count over the few calls with a standing hold.
    sa.Index(
        "ix_calls_gate_hold",
        "batch_id",
        "gate_hold",
        "status",
        "next_attempt_at",
        sqlite_where=sa.text("gate_hold IS NOT NULL"),
        postgresql_where=sa.text("gate_hold IS NOT NULL"),
    ),
    sa.Index(
        "ix_calls_recent",
        "batch_id",
        "ended_at",
        sqlite_where=sa.text("status IN ('completed', 'failed')"),
        postgresql_where=sa.text("status IN ('completed', 'failed')"),
    ),
    # Exactly the calls holding a lease (claimed, dialing, unknown): every transition out
    # of those states clears lease_expires. `IS NOT NULL` rather than `status IN (...)`:
    # SQLite evaluates an IN-list predicate on every inserted row (a third of an upload's
    # insert time, measured), and the sweeps' `lease_expires < ?` can use this index.
    sa.Index(
        "ix_calls_leases",
        "lease_expires",
        sqlite_where=sa.text("lease_expires IS NOT NULL"),
        postgresql_where=sa.text("lease_expires IS NOT NULL"),
    ),
)

# Append-only ledger: one row per dial, written *before* the provider is asked.
attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column(
        "call_id", sa.BigInteger, sa.ForeignKey("calls.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("dial_key", sa.String(64), nullable=False, unique=True),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("provider_call_id", sa.String(128), nullable=True),
    # dialing -> ringing -> answered -> ended, forward only (store/following.py).
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("started_at", sa.BigInteger, nullable=False),
    # When the provider last said anything about this dial: a dial quiet for too long is
    # looked up with the provider (a lost callback), not waited on forever.
    sa.Column("heard_at", sa.BigInteger, nullable=True),
    sa.Column("ended_at", sa.BigInteger, nullable=True),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("provider_code", sa.String(64), nullable=True),
    sa.Column("duration_s", sa.Float, nullable=True),
    # The caller number the dial used (migration 0010); null when the agent has none.
    sa.Column("from_number", sa.String(32), nullable=True),
    # The dial's batch (migration 0010; null on older rows): a batch's latest ended dials
    # are read through ix_attempts_batch_ended by the automatic stop on failure spikes.
    sa.Column("batch_id", sa.String(64), nullable=True),
    sa.Index("ix_attempts_call", "call_id", "n"),
    sa.Index(
        "ix_attempts_batch_ended",
        "batch_id",
        "ended_at",
        sqlite_where=sa.text("ended_at IS NOT NULL"),
        postgresql_where=sa.text("ended_at IS NOT NULL"),
    ),
)

# Sharded counters: progress is a SUM over a few rows, O(1) at any batch size.
batch_counters = sa.Table(
    "batch_counters",
    metadata,
    sa.Column(
        "batch_id", sa.String(64), sa.ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("shard", sa.Integer, primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("duration_sum", sa.Float, nullable=False, server_default="0"),
    sa.Column("last_at", sa.BigInteger, nullable=True),
)

# Written in the same transaction as the change it reports; delivered by events/.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column("workspace_id", sa.String(64), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("delivered_at", sa.BigInteger, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # The batch an event is about (null for workspace-wide events), for batch streams
    # (migration 0005).
    sa.Column("batch_id", sa.String(64), nullable=True),
    sa.Index(
        "ix_outbox_pending",
        "id",
        sqlite_where=sa.text("delivered_at IS NULL"),
        postgresql_where=sa.text("delivered_at IS NULL"),
    ),
    # Resuming a workspace's or a batch's event stream after an id (events/stream.py).
    sa.Index("ix_outbox_workspace_id", "workspace_id", "id"),
    sa.Index("ix_outbox_batch_id", "batch_id", "id"),
)


# --- Outbound webhooks (events/webhooks.py, migration 0005) -----------------------------

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "workspace_id",
        sa.String(64),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("events", sa.JSON, nullable=False),  # the event names it subscribes to
    sa.Column("description", sa.String(200), nullable=False, server_default=""),
    # The signing secret is derived from the server's key and this version, never stored
    # (events/signing.py), like agents' secrets.
    sa.Column("secret_version", sa.Integer, nullable=False, server_default="1"),
    # Only events after this outbox id are delivered: a new endpoint gets no history.
    sa.Column("after_outbox_id", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # Removed endpoints stay (their delivery log stays listable); nothing more is sent.
    sa.Column("deleted_at", sa.BigInteger, nullable=True),
    sa.Index("ix_webhook_endpoints_workspace", "workspace_id", "created_at"),
)

# One row per (endpoint, event): the unique key makes fan-out idempotent, and the lease
# (`next_attempt_at` moved ahead, `lease_token` bumped) shares the work between workers.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column("endpoint_id", sa.String(64), nullable=False),
    sa.Column("workspace_id", sa.String(64), nullable=False),
    sa.Column("outbox_id", sa.BigInteger, nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    # pending -> delivered | dead; a replay puts it back to pending.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_token", sa.Integer, nullable=False, server_default="0"),
    # When retrying started (the first attempt, or the last replay): retries stop
    # (dead letter) once the retry window has passed since then.
    sa.Column("first_attempt_at", sa.BigInteger, nullable=True),
    sa.Column("last_attempt_at", sa.BigInteger, nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("delivered_at", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("endpoint_id", "outbox_id", name="uq_webhook_deliveries_event"),
    sa.Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        "id",
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    ),
    sa.Index("ix_webhook_deliveries_endpoint", "endpoint_id", "status", "id"),
)

# Every attempt, with its answer: what `GET /v1/api/webhooks/{id}/deliveries` shows.
webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.BigInteger, nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("latency_ms", sa.Integer, nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Index("ix_webhook_attempts_delivery", "delivery_id", "n"),
)

# How far fan-out has read the outbox (one row, id 1). Outbox ids commit in order
# (store/outbox.py), so "everything up to here was fanned out" is exact.
webhook_fanout = sa.Table(
    "webhook_fanout",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("outbox_id", sa.BigInteger, nullable=False),
)

# API rate limits (domain/ratelimit.py): one row per bucket (an API key, an address's failed
# logins, an address's callbacks), its state one number, `tat`, in database ms. A row whose
# `tat` has passed is a full bucket, the same as no row, so old rows are simply deleted.
# On PostgreSQL the table is UNLOGGED (migration 0004): losing it in a crash only refills
# every bucket, and its commits need not wait for the WAL.
rate_buckets = sa.Table(
    "rate_buckets",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("tat", sa.Float, nullable=False),
    # When the last request was weighed, and whether it was refused: what the UPSERT's
    # RETURNING needs to tell an admitted request from a refused one.
    sa.Column("seen_at", sa.Float, nullable=False),
    sa.Column("refused", sa.Boolean, nullable=False, server_default=sa.false()),
)


# Idempotency-Key of POST /v1/api/batch-calls (and retry-failed): the first request
# inserts a pending row (status_code NULL) in its own transaction, so a second request
# with the same key, in any API process, finds it; the response is stored once the first
# request is answered, and replayed to repeats until `expires_at` (store/idempotency.py).
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("workspace_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("response", sa.JSON, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Index("ix_idempotency_keys_expires", "expires_at"),
)

# One row per process that runs a dispatcher, refreshed every few seconds: a batch that
# stays queued with no worker alive shows in /readyz and `dialbatch status` (migration
# 0007). Rows of stopped processes are deleted; those of killed ones simply age.
workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # the dispatcher's lease owner
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", sa.BigInteger, nullable=False),
    sa.Column("seen_at", sa.BigInteger, nullable=False),
    sa.Index("ix_workers_seen_at", "seen_at"),
)

# A workspace's do-not-call list (issue 10): numbers in E.164 that no call of the workspace
# may dial, checked at ingest and again in the intent transaction of every dial
# (store/suppressions.py). `expires_at` NULL: for good. `source`: api, import, agent.
suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("workspace_id", sa.String(64), primary_key=True),
    sa.Column("phone_number", sa.String(32), primary_key=True),
    sa.Column("reason", sa.String(200), nullable=False, server_default=""),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("job_id", sa.String(64), nullable=True),  # the call an agent opt-out came from
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
)

# One row per dial, written in the intent transaction with its attempt: what frequency caps
# count, per (workspace, number), across batches (migration 0009). Kept 31 days.
number_dials = sa.Table(
    "number_dials",
    metadata,
    sa.Column("dial_key", sa.String(64), primary_key=True),
    sa.Column("workspace_id", sa.String(64), nullable=False),
    sa.Column("phone_number", sa.String(32), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Index("ix_number_dials_number", "workspace_id", "phone_number", "at"),
    sa.Index("ix_number_dials_at", "at"),
)

# Every hold and refusal of the pre-dial gate, in order (migration 0017): what
# `attemptHistory` shows between dials (`gateBefore`) and the call's `gateHistory`.
# `calls.gate_decision` keeps only the latest; this keeps each one, written once per hold (a
# call held at the claim is moved past now, so it is not held again every tick).
gate_log = sa.Table(
    "gate_log",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column(
        "call_id", sa.BigInteger, sa.ForeignKey("calls.id", ondelete="CASCADE"), nullable=False
    ),
    # How many dials the call had had when the gate decided: 0 before its first.
    sa.Column("after_dials", sa.Integer, nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("decision", sa.JSON, nullable=False),
    sa.Index("ix_gate_log_call", "call_id", "id"),
)

# Every dial's caller number, by workspace (migration 0018): what the caller-number pool's
# rotation and per-number limits count (store/caller_dials.py), written in the intent's
# transaction. Rows older than a day are pruned with the per-number ledger.
caller_dials = sa.Table(
    "caller_dials",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column("workspace_id", sa.String(64), nullable=False),
    sa.Column("from_number", sa.String(32), nullable=False),
    # The intent's time while the dial's request is out; once the provider has answered it,
    # the time of that answer (migration 0019): no later than the dial reached the carrier.
    sa.Column("at", sa.BigInteger, nullable=False),
    # The dial's key while its request is out (the provider has not answered), else NULL
    # (migration 0019): such a dial may reach the carrier at any moment, so its number's
    # per-second limit counts it as starting now.
    sa.Column("in_flight", sa.String(64), nullable=True),
    sa.Index("ix_caller_dials_number", "workspace_id", "from_number", "at"),
    sa.Index(
        "ix_caller_dials_in_flight",
        "workspace_id",
        "from_number",
        "in_flight",
        sqlite_where=sa.text("in_flight IS NOT NULL"),
        postgresql_where=sa.text("in_flight IS NOT NULL"),
    ),
)
