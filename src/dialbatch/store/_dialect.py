"""Everything that differs between SQLite and PostgreSQL, in one place.

Code elsewhere asks for what it needs (a clock, row locks, a NOTIFY, a bulk insert) or
for a capability by its name (`wakes_other_processes`, `writers_are_serial`), never
"is this SQLite?". (The engines themselves are made in engine.py.)
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler

from dialbatch.domain.states import CallState
from dialbatch.store.tables import calls

# Counter rows per (batch, status) on PostgreSQL, so concurrent workers do not queue on one
# hot row; SQLite has one writer at a time and needs one.
PG_COUNTER_SHARDS = 8

if TYPE_CHECKING:
    from dialbatch.store.engine import Database


def is_sqlite(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "sqlite"


def is_sqlite_url(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def wakes_other_processes(url: str) -> bool:
    """Whether a commit can wake other processes' dispatchers (PostgreSQL LISTEN/NOTIFY).
    An embedded SQLite database has one process, woken in memory."""
    return make_url(url).get_backend_name() == "postgresql"


def writers_are_serial(url: str) -> bool:
    """Whether write transactions run one at a time (SQLite's BEGIN IMMEDIATE), so one
    always sees what the one before it committed. Under PostgreSQL's READ COMMITTED two
    concurrent ones can each miss the other's changes."""
    return is_sqlite_url(url)


def runs_on_driver(conn: AsyncConnection) -> bool:
    """Whether the hot statements (store/_prepared.py) skip SQLAlchemy's execution and run
    on the driver: on SQLite, whose one writer's time is the engine's pace. asyncpg's own
    parsing and the server's work dwarf SQLAlchemy's share on PostgreSQL."""
    return is_sqlite(conn)


def counter_shard(conn: AsyncConnection) -> int:
    """The counter row a transaction writes to (see PG_COUNTER_SHARDS)."""
    return 0 if is_sqlite(conn) else random.randrange(PG_COUNTER_SHARDS)


def takes_row_locks(conn: AsyncConnection) -> bool:
    """Whether transactions lock rows (PostgreSQL); SQLite's BEGIN IMMEDIATE already
    serialises writers, so a statement that would only lock rows need not run."""
    return not is_sqlite(conn)


async def pg_notify(conn: AsyncConnection, channel: str, payload: str) -> None:
    """NOTIFY at commit on PostgreSQL; nothing on SQLite (see wakes_other_processes)."""
    if not is_sqlite(conn):
        await conn.execute(sa.select(sa.func.pg_notify(channel, payload)))


def now_ms_sql(conn: AsyncConnection) -> sa.ColumnElement[int]:
    """The database's clock in ms, so workers on several hosts agree on time."""
    if is_sqlite(conn):
        return sa.cast(
            sa.func.round((sa.func.julianday("now") - 2440587.5) * 86400000.0), sa.BigInteger
        )
    return sa.cast(
        sa.func.floor(sa.extract("epoch", sa.func.clock_timestamp()) * 1000), sa.BigInteger
    )


async def db_now_ms(conn: AsyncConnection) -> int:
    """The database's clock in ms, as `now_ms_sql` reads it in a statement.

    SQLite: this host's clock, read here. A SQLite database is a file on this host (WAL
    needs memory shared between its processes, so never a network share), and SQLite reads
    `'now'` from the same system clock: asking it cost a statement and a hop to
    aiosqlite's thread, several times a dial, inside the single writer's transactions.
    Rounded to the ms as `now_ms_sql` rounds it."""
    if is_sqlite(conn):
        return round(time.time() * 1000)
    return int((await conn.execute(sa.select(now_ms_sql(conn)))).scalar_one())


def greatest(conn: AsyncConnection, a: Any, b: Any) -> sa.ColumnElement[Any]:
    """max(a, b) ignoring NULLs, which both engines spell differently."""
    if is_sqlite(conn):
        return sa.func.max(sa.func.coalesce(a, b), sa.func.coalesce(b, a))
    return sa.func.greatest(a, b)


def upsert(conn: AsyncConnection, table: sa.Table) -> Any:
    """An INSERT that supports ON CONFLICT on both engines."""
    if is_sqlite(conn):
        return sqlite.insert(table)
    return postgresql.insert(table)


def for_update(
    conn: AsyncConnection,
    stmt: sa.Select[Any],
    *,
    skip_locked: bool = False,
    of: sa.Table | None = None,
) -> Any:
    """Row locks on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers.

    With a join, name the table to lock (`of`): locking every joined row (a batch row
    FOR UPDATE) conflicts with the key-share locks of foreign-key checks, and deadlocks.
    """
    if is_sqlite(conn):
        return stmt
    return stmt.with_for_update(skip_locked=skip_locked, of=of)


def in_list(conn: AsyncConnection, column: Any, name: str) -> sa.ColumnElement[bool]:
    """`column IN (the list bound as `name`)`, in a form whose text does not depend on the
    list's length, so that a statement built with it is compiled once (store/_prepared.py):
    SQLite reads the list as JSON (`json_each`), PostgreSQL as an array (`= ANY`). The
    caller binds a list (not a set: JSON has none)."""
    if is_sqlite(conn):
        items: sa.Select[Any] = sa.select(sa.literal_column("value")).select_from(
            sa.func.json_each(sa.bindparam(name, type_=sa.JSON))
        )
        return column.in_(items)  # type: ignore[no-any-return]
    return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(column.type)))  # type: ignore[no-any-return]


# What a row of an upload may carry besides its number and metadata: (timezone,
# consent_basis, consent_at ms), each None when absent (ingest/call_columns.py).
CallExtras = tuple[str | None, str | None, int | None]
CallRow = tuple[int, str, str] | tuple[int, str, str, CallExtras | None]
_NO_EXTRAS: CallExtras = (None, None, None)


def _extras(row: CallRow) -> CallExtras:
    return (row[3] or _NO_EXTRAS) if len(row) > 3 else _NO_EXTRAS


async def bulk_insert_calls(
    conn: AsyncConnection,
    batch_id: str,
    workspace_id: str,
    due: int,
    chunk: Sequence[CallRow],
) -> None:
    """Insert one chunk of an upload's calls, `(seq, e164, metadata_json)` rows (with a
    fourth item, the row's timezone and consent, when the upload has those columns), as
    waiting calls of `batch_id`, in `conn`'s open transaction."""
    with_extras = any(len(row) > 3 and row[3] is not None for row in chunk)
    if is_sqlite(conn) and with_extras:
        # Rows without extras take the narrower statement below: extracting three more
        # values per row cost SQLite ~0.3 s of CPU per 300k rows (measured), so only the
        # rows that have them pay it.
        extra = [row for row in chunk if len(row) > 3 and row[3] is not None]
        await _insert_with_extras(conn, batch_id, workspace_id, due, extra)
        chunk = [row for row in chunk if len(row) <= 3 or row[3] is None]
        if not chunk:
            return
    if is_sqlite(conn):
        # One statement per chunk: SQLite expands a JSON array in C (json_each), so there
        # is no per-row Python binding, and the GIL is free while it runs; ingest validates
        # the next chunk in another thread meanwhile (300k rows: ~1.1 s instead of
        # executemany's ~1.8 s, a one-off measurement; end to end, bench/ingest.py and
        # bench/ingest_phases.py). Phones are E.164 and metadata is JSON text built by
        # ingest, so both embed as they are.
        rows = ",".join(f'[{row[0]},"{row[1]}",{row[2]}]' for row in chunk)
        await conn.exec_driver_sql(
            "INSERT INTO calls (batch_id, workspace_id, seq, phone_number, metadata, status,"
            " attempt, connection_failures, unreached, next_attempt_at, lease_token)"
            " SELECT ?, ?, value ->> 0, value ->> 1, value -> 2, 'waiting', 0, 0, 0, ?, 0"
            " FROM json_each(?)",
            (batch_id, workspace_id, due, f"[{rows}]"),
        )
        return
    # Binary COPY through asyncpg instead of an executemany of INSERTs: a 300k-row upload
    # takes 3.5-4.4 s instead of 11.6-12.4 s (bench/ingest.py); what remains is mostly
    # PostgreSQL's own index maintenance. It runs on the asyncpg connection under `conn`,
    # inside the transaction SQLAlchemy began there (the batch row is inserted first), so
    # a rejected upload still rolls back every call.
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if driver is None or not driver.is_in_transaction():
        raise RuntimeError("COPY of calls needs the open transaction of a write connection")
    waiting = CallState.WAITING.value
    if with_extras:
        await driver.copy_records_to_table(
            calls.name,
            columns=[*_COPY_COLUMNS, *_EXTRA_COLUMNS],
            records=[
                (
                    *(batch_id, workspace_id, row[0], row[1], row[2], waiting, 0, 0, 0, due, 0),
                    *_extras(row),
                )
                for row in chunk
            ],
        )
        return
    await driver.copy_records_to_table(
        calls.name,
        columns=_COPY_COLUMNS,
        records=[
            (batch_id, workspace_id, row[0], row[1], row[2], waiting, 0, 0, 0, due, 0)
            for row in chunk
        ],
    )


async def _insert_with_extras(
    conn: AsyncConnection, batch_id: str, workspace_id: str, due: int, chunk: Sequence[CallRow]
) -> None:
    """SQLite's json_each insert of rows with a timezone or consent: each row a flat array
    [seq, phone, metadata, timezone, basis, at]. A zone is a validated IANA name (letters,
    digits, `/_+-`) and embeds as it is; only the basis, the user's free text, is escaped
    (json.dumps of the whole row cost ~0.5 s per 300k rows, measured)."""
    escape = json.encoder.encode_basestring
    parts = []
    for row in chunk:
        zone, basis, at = _extras(row)
        zone_json = "null" if zone is None else f'"{zone}"'
        basis_json = "null" if basis is None else escape(basis)
        at_json = "null" if at is None else str(at)
        parts.append(f'[{row[0]},"{row[1]}",{row[2]},{zone_json},{basis_json},{at_json}]')
    await conn.exec_driver_sql(
        "INSERT INTO calls (batch_id, workspace_id, seq, phone_number, metadata, status,"
        " attempt, connection_failures, unreached, next_attempt_at, lease_token,"
        " timezone, consent_basis, consent_at)"
        " SELECT ?, ?, value ->> 0, value ->> 1, value -> 2, 'waiting', 0, 0, 0, ?, 0,"
        " value ->> 3, value ->> 4, value ->> 5"
        " FROM json_each(?)",
        (batch_id, workspace_id, due, "[" + ",".join(parts) + "]"),
    )


_COPY_COLUMNS = [
    "batch_id",
    "workspace_id",
    "seq",
    "phone_number",
    "metadata",
    "status",
    "attempt",
    "connection_failures",
    "unreached",
    "next_attempt_at",
    "lease_token",
]
_EXTRA_COLUMNS = ["timezone", "consent_basis", "consent_at"]


@asynccontextmanager
async def single_statement(db: Database) -> AsyncIterator[AsyncConnection]:
    """A connection for one self-contained write statement. PostgreSQL: autocommit, one
    round trip with no BEGIN/COMMIT of its own. SQLite: the writer's usual transaction,
    whose BEGIN IMMEDIATE is what serialises writers there."""
    if db.is_sqlite:
        async with db.write() as conn:
            yield conn
        return
    async with db.writer.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


# An arbitrary constant naming the outbox's ordering lock (store/outbox.py).
OUTBOX_ORDER_LOCK = 0x6469616C_6F627800  # "dialobx"


async def lock_outbox_order(conn: AsyncConnection) -> None:
    """Serialise outbox inserts until the transaction ends, so ids commit in order.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: nothing, its single writer
    (BEGIN IMMEDIATE) already commits one transaction at a time.
    """
    if is_sqlite(conn):
        return
    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(OUTBOX_ORDER_LOCK)))


# Names the lock that serialises start-up set-up (the demo workspace) across processes.
SETUP_LOCK = 0x6469616C_73657475  # "dialsetu"


async def lock_setup(conn: AsyncConnection) -> None:
    """Serialise start-up set-up until the transaction ends: several `serve` processes
    started at once on one PostgreSQL would otherwise each find the demo workspace missing
    and each insert it (one of them then fails its start on the unique key). SQLite's
    BEGIN IMMEDIATE already lets one writer at a time in."""
    if is_sqlite(conn):
        return
    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SETUP_LOCK)))


async def lock_numbers(conn: AsyncConnection, numbers: Iterable[tuple[str, str]]) -> None:
    """Take turns on (workspace, number) until the transaction ends: the frequency-cap
    check and the dial it admits are one step for each number, across workers.

    PostgreSQL: one transaction-scoped advisory lock per number, keyed by a 64-bit hash
    and taken in key order (a collision only makes two numbers take turns). Only the intent
    step takes them, always after its call rows, so they add no deadlock. SQLite: its single
    writer already takes turns.
    """
    if is_sqlite(conn):
        return
    keys = sorted({_number_key(ws, number) for ws, number in numbers})
    if keys:
        # One round trip; the sorted subquery hands the keys over in order.
        await conn.execute(
            sa.text(
                "SELECT pg_advisory_xact_lock(k) FROM "
                "(SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY 1) AS ordered"
            ),
            {"keys": keys},
        )


def _number_key(workspace_id: str, number: str) -> int:
    digest = hashlib.blake2b(f"{workspace_id}\x00{number}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def dialect_name(conn: AsyncConnection) -> str:
    """The database's name, as a cache key for statements compiled once per dialect."""
    return str(conn.dialect.name)


def json_text_fields(
    conn: AsyncConnection,
    table: sa.Table,
    column: sa.ColumnElement[Any],
    when: sa.ColumnElement[bool],
    keys: tuple[str, ...],
) -> tuple[list[sa.ColumnElement[Any]], sa.FromClause]:
    """Top-level fields of a JSON column where `when` holds (NULL elsewhere, and for a
    missing field), and the FROM clause they need. SQLite: JSON_EXTRACT, which gives a
    number as a number. PostgreSQL: text, as ->> gives it, but from one parse of the
    document per row (json_to_record): ->> parses a `json` value again for each field,
    which made a CSV export four times slower there (measured)."""
    if is_sqlite(conn):
        return [
            sa.case((when, sa.func.json_extract(column, f'$."{key}"')), else_=None) for key in keys
        ], table
    document = sa.case((sa.and_(when, sa.func.json_typeof(column) == "object"), column))
    record = (
        sa.func.json_to_record(document)
        .table_valued(*(sa.column(key, sa.Text) for key in keys))
        .render_derived(name="fields", with_types=True)
    )
    return [record.c[key] for key in keys], table.outerjoin(record, sa.true())


# WITH ... AS MATERIALIZED: SQLite 3.35 and later (Python's own build is newer on every
# supported platform; an older one reads the chunk as a plain SELECT).
_SQLITE_MATERIALIZES = sqlite3.sqlite_version_info >= (3, 35, 0)
_CHUNK_STATEMENTS: dict[tuple[Any, ...], SQLCompiler] = {}
_CHUNK_STATEMENTS_MAX = 64


async def read_chunk(
    conn: AsyncConnection, query: sa.Select[Any], key: tuple[Any, ...], values: dict[str, Any]
) -> list[Sequence[Any]]:
    """All rows of `query` (a bounded keyset step: an export's chunk), with its bind
    parameters set from `values`; `key` names the query's shape for a statement cache (the
    query may have no expanding IN: its values would be compiled into the cached text).

    SQLite: one call on aiosqlite's thread, on the connection's own autocommit (no BEGIN
    first: one statement is its own read transaction), with the chunk computed by SQLite
    in its first step as a MATERIALIZED CTE. sqlite3 releases the GIL only inside a step,
    and while the event loop's thread formats the previous chunk, a thread that needs the
    GIL back after every row advances about one row per switch interval: a plain SELECT's
    work (the JSON extractions, most of it) ran after the formatting instead of beside it.
    Materialized, it all runs in that first step, on the other core (an export of a 1M-call
    batch, docs/benchmarks.md "Export"). The statement is compiled once per shape.

    PostgreSQL: SQLAlchemy's own execution (asyncpg's parsing is on the event loop
    anyway, and the server computes the rows in its own process)."""
    if not is_sqlite(conn) or not _SQLITE_MATERIALIZES:
        result = await conn.execute(query, values)
        try:
            # The driver's rows, from the cursor SQLAlchemy has filled: none of the
            # export's columns has a result processor, and building SQLAlchemy's row
            # objects was a tenth of a CSV export's time (measured).
            return list(result.cursor.fetchall())
        finally:
            result.close()
    compiled = _CHUNK_STATEMENTS.get(key)
    if compiled is None:
        chunk = query.cte("chunk").prefix_with("MATERIALIZED")
        compiled = sa.select(chunk).compile(dialect=conn.dialect)
        assert isinstance(compiled, SQLCompiler)
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("read_chunk caches its statement: no expanding IN in the query")
        if len(_CHUNK_STATEMENTS) >= _CHUNK_STATEMENTS_MAX:
            _CHUNK_STATEMENTS.clear()
        _CHUNK_STATEMENTS[key] = compiled
    params = compiled.construct_params(values) or {}
    order = compiled.positiontup or []
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if driver is None:
        raise RuntimeError("the SQLite connection was closed under a read")
    return list(await driver.execute_fetchall(compiled.string, [params[k] for k in order]))
