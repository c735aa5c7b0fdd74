"""The dial path's hot statements: built once, and on SQLite executed on the driver.

Every dial runs about ten statements inside the single writer's transactions (claim,
intent, placement, outcome). Measured with bench/statements.py (one UPDATE by key, process
CPU): built each time and run by SQLAlchemy 577 us, built once 375 us, built once and run
on aiosqlite's connection 162 us. On SQLite the event loop's share of that is the engine's
pace (docs/benchmarks.md, "the dial path's statements built once").

A `Prepared` statement is built once per dialect, by its `build` function (which may ask
`_dialect` for the dialect's forms: an upsert, `greatest`). On PostgreSQL it is executed by
SQLAlchemy as before, minus the building. On SQLite it is compiled once and executed on
aiosqlite's connection, inside the transaction SQLAlchemy began on it: the bind and result
processors of its columns' types are applied as SQLAlchemy would (JSON in and out), and
rows come back as named tuples with the columns' keys. Statements with an expanding IN
(whose text depends on the length of a list) cannot be compiled once and are refused: a
list is bound whole through `_dialect.in_list` instead.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler

from dialbatch.store._dialect import dialect_name, runs_on_driver

Params = Mapping[str, Any]
_namedtuple: Any = namedtuple  # a row class per statement, its fields known at run time
Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    """A statement's SQLite form: its text, and how to fill and read it."""

    sql: str
    order: tuple[str, ...]  # the positional parameters' names
    fixed: dict[str, Any]  # values compiled into the statement (`.values(state="ended")`)
    required: frozenset[str]  # names the caller must give
    binds: tuple[Processor, ...]
    row: Any  # a namedtuple class, or None for a statement that returns no rows
    results: tuple[Processor, ...]


class Prepared:
    """A statement built once per dialect by `build(conn)` and run with `run`. An INSERT
    is built without values and given its columns' names as `keys`: its parameters are
    then named after the columns, as SQLAlchemy names them."""

    def __init__(
        self,
        name: str,
        build: Callable[[AsyncConnection], sa.Executable],
        keys: Sequence[str] | None = None,
    ) -> None:
        self.name = name
        self._build = build
        self.keys = None if keys is None else list(keys)
        self._statements: dict[str, sa.Executable] = {}
        self._compiled: dict[str, _Compiled] = {}

    def statement(self, conn: AsyncConnection) -> sa.Executable:
        name = dialect_name(conn)
        stmt = self._statements.get(name)
        if stmt is None:
            stmt = self._statements[name] = self._build(conn)
        return stmt

    def compiled(self, conn: AsyncConnection) -> _Compiled:
        name = dialect_name(conn)
        found = self._compiled.get(name)
        if found is None:
            found = self._compiled[name] = _compile(
                self.name, self.statement(conn), conn, self.keys
            )
        return found


def one_of(column: Any, values: Sequence[str]) -> sa.ColumnElement[bool]:
    """`column IN ('a', 'b')` with the values written into the text (states, kinds: our
    own words, never a caller's), so that the statement is compiled once."""
    for v in values:
        if not v.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"not a plain word: {v!r}")
    return column.in_([sa.literal_column(f"'{v}'") for v in values])  # type: ignore[no-any-return]


def _compile(
    name: str, stmt: sa.Executable, conn: AsyncConnection, keys: list[str] | None
) -> _Compiled:
    dialect = conn.dialect
    compiled = stmt.compile(dialect=dialect, column_keys=keys)  # type: ignore[attr-defined]
    assert isinstance(compiled, SQLCompiler)
    if "POSTCOMPILE" in compiled.string:
        raise ValueError(f"{name}: a prepared statement may not have an expanding IN")
    order = tuple(compiled.positiontup or ())
    fixed = dict(compiled.construct_params(_check=False) or {})
    required = frozenset(k for k in order if compiled.binds[k].required)
    binds = tuple(
        compiled.binds[k].type.dialect_impl(dialect).bind_processor(dialect) for k in order
    )
    columns = list(getattr(stmt, "exported_columns", ()))
    row: Any = None
    results: tuple[Processor, ...] = ()
    if columns:
        keys = [c.key or f"c{i}" for i, c in enumerate(columns)]
        if len(set(keys)) < len(keys):
            raise ValueError(f"{name}: two result columns named alike ({keys}): label them")
        row = _namedtuple(f"{name}_row", keys, rename=True)
        results = tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        )
    return _Compiled(compiled.string, order, fixed, required, binds, row, results)


async def run(
    conn: AsyncConnection, prepared: Prepared, params: Params | Sequence[Params] | None = None
) -> list[Any]:
    """Execute `prepared` with one set of parameters (a mapping, or None for none) or
    several (a sequence of mappings: executemany, no rows returned, nothing done for an
    empty one); the rows it returns, if any."""
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        return await _run_many(conn, prepared, params)
    if not runs_on_driver(conn):
        result = await conn.execute(prepared.statement(conn), params)
        return list(result.all()) if result.returns_rows else []
    form = prepared.compiled(conn)
    driver = await _driver(conn)
    rows = await driver.execute_fetchall(form.sql, _args(form, params))
    if form.row is None:
        return []
    make = form.row._make
    if not any(form.results):
        return [make(r) for r in rows]
    procs = form.results
    return [make(v if p is None else p(v) for p, v in zip(procs, r, strict=True)) for r in rows]


async def _run_many(
    conn: AsyncConnection, prepared: Prepared, params: Sequence[Params]
) -> list[Any]:
    if not params:
        return []
    if not runs_on_driver(conn):
        await conn.execute(prepared.statement(conn), list(params))
        return []
    form = prepared.compiled(conn)
    if form.row is not None:
        raise ValueError(f"{prepared.name}: several parameter sets return no rows")
    driver = await _driver(conn)
    sets = [_args(form, p) for p in params]
    if len(sets) == 1:
        await driver.execute_fetchall(form.sql, sets[0])
    else:
        cursor = await driver.executemany(form.sql, sets)
        await cursor.close()
    return []


async def _driver(conn: AsyncConnection) -> Any:
    """aiosqlite's connection under `conn`, inside the transaction SQLAlchemy began."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if driver is None:
        raise RuntimeError("the SQLite connection was closed under a statement")
    return driver


def _args(form: _Compiled, params: Params) -> list[Any]:
    missing = form.required - params.keys()
    if missing:
        raise KeyError(f"missing parameters: {sorted(missing)}")
    out = []
    for key, proc in zip(form.order, form.binds, strict=True):
        value = params[key] if key in params else form.fixed[key]
        out.append(value if proc is None else proc(value))
    return out
