"""Progress benchmark: read-endpoint latency with 1k calls in a batch versus 1M.

For each size, a fresh SQLite database is built *before* the server starts, with the store's
own code: `migrate.upgrade`, `bootstrap.ensure_demo` (workspace, pinned key, demo agent) and
`store.batches.insert_batch` (the function POST /v1/api/batch-calls calls), so the `batches`,
`calls`, `batch_counters` and `outbox` rows are exactly the server's. The rows come from the
real CSV ingest (`dialbatch.ingest.scan` + `iter_calls` over a generated CSV, as the endpoint
does) when that module is present, else from a generator that writes the same
(seq, E.164, metadata-JSON) tuples.

Then a realistic mid-run state is applied, as the dispatcher would leave it: the first 45% of
the rows (CSV order, the order calls are claimed in) have finished, about 40% of the batch
`completed` (attempt 1, started/ended times spread over the last two hours, a 20-180 s
duration, a provider call id, a `result` like the simulated provider's) and 5% `failed` (an
error, ended_at); the other 55% are `waiting`. `batch_counters` is moved by the same deltas
with `store.counters.move` (with duration sum and last time), the batch is `processing` with
a `started_at`, and the counters are checked against COUNT(*) before the server starts. (The
`attempts` and `outbox` rows those calls would have left are not written: no endpoint
measured reads them.) The batch's `scheduled_at` is ~300 days ahead, so the dispatcher
(running, as in `dialbatch serve`) claims nothing and the state stays fixed while measured.

Each size gets its own database and its own server, so nothing of one size is in the other's
tables or caches. Sizes alternate over `--rounds` server runs (1k, 1M, 1M, 1k, ...): on a
shared machine, background load then falls on both alike. In each round every endpoint gets
`--warmup` untimed requests, then its share of `-n` timed sequential requests (one keep-alive
httpx client; wall time per request including the body). p50, p95 and mean of the pooled
samples are printed per size, with the 1M/1k ratios (and the median of the per-round p50
ratios, "paired", which is less sensitive to load that changes between rounds).

    .venv/bin/python bench/progress.py                   # 1k and 1M calls, N=200
    .venv/bin/python bench/progress.py --sizes 1000 100000 -n 100
    .venv/bin/python bench/progress.py --workdir /tmp/pb  # keep (and reuse) the databases
    .venv/bin/python bench/progress.py --no-dispatch     # serve --no-dispatch
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import hashlib
import json
import math
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import (
    API_KEY,
    MB,
    WORKSPACE,
    Server,
    add_wait_quiet,
    print_load,
    print_machine,
    run_server,
    wait_until_quiet,
)
from dialbatch.bootstrap import DEMO_AGENT, ensure_demo
from dialbatch.domain.ids import new_batch_id, now_ms
from dialbatch.domain.retry import parse_callback_policy, policy_to_json
from dialbatch.domain.states import BatchState, CallState
from dialbatch.settings import Settings
from dialbatch.store import batches, counters, migrate
from dialbatch.store.engine import Database
from dialbatch.store.tables import batch_counters, calls
from dialbatch.store.tables import batches as batches_table
from ingest import write_csv

TARGET_RATIO = 1.5
CHUNK = 20_000
FINISHED_SHARE = 0.45  # first 45% of rows have finished ...
FAILED_PER_MILLE = 111  # ... ~11.1% of those failed: 5% of the batch; ~40% completed
RUN_LENGTH_MS = 2 * 3600 * 1000
MARKER = "bench-batch.json"
_JSON: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False}  # as ingest writes it


# --- building the database -------------------------------------------------------------------


def bench_settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=None,
        demo_api_key=API_KEY,
        demo_workspace_id=WORKSPACE,
        demo_calls_per_second=0.01,
    )


@dataclass(frozen=True)
class Built:
    batch_id: str
    total: int
    by_status: dict[str, int]
    rows_from: str
    seconds: float
    db_bytes: int


async def _aiter(it: Iterator[list[tuple[int, str, str]]]) -> AsyncIterator[Any]:
    for chunk in it:
        yield chunk


def synthetic_rows(n: int, seed: int) -> Iterator[list[tuple[int, str, str]]]:
    """(seq, e164, metadata JSON) chunks parsed from the same CSV text the ingest bench posts."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_csv(Path(tmp) / "c.csv", n, national=False, seed=seed).path
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            names = next(reader)[1:]
            chunk: list[tuple[int, str, str]] = []
            for seq, row in enumerate(reader):
                meta = json.dumps(dict(zip(names, row[1:], strict=True)), **_JSON)
                chunk.append((seq, row[0], meta))
                if len(chunk) == CHUNK:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk


def ingest_rows(path: Path) -> tuple[Iterator[list[tuple[int, str, str]]], Any] | None:
    """The server's own ingest over `path`, when dialbatch.ingest provides it."""
    try:
        from dialbatch import ingest
    except ImportError:
        return None
    if not all(hasattr(ingest, name) for name in ("scan", "iter_calls", "IngestOptions")):
        return None
    f = path.open("rb")
    scan = ingest.scan(
        f, ingest.IngestOptions(default_region=None, skip_invalid=False, dedupe=False)
    )
    f.seek(0)
    return ingest.iter_calls(f, scan), f


async def build(data_dir: Path, n: int, seed: int, rows_from: str) -> Built:
    started = time.perf_counter()
    settings = bench_settings(data_dir)
    migrate.upgrade(settings.effective_database_url)
    db = Database(settings.effective_database_url)
    try:
        await ensure_demo(db, settings)
        batch_id = new_batch_id()
        scheduled_at = now_ms() + 300 * 24 * 3600 * 1000
        closer: Any = None
        source = "synthetic"
        chunks: Iterator[list[tuple[int, str, str]]] | None = None
        if rows_from in ("auto", "ingest"):
            csv_path = data_dir / "contacts.csv"
            write_csv(csv_path, n, national=False, seed=seed)
            found = ingest_rows(csv_path)
            if found is not None:
                chunks, closer = found
                source = "dialbatch.ingest"
            elif rows_from == "ingest":
                raise SystemExit("dialbatch.ingest has no scan/iter_calls yet")
        if chunks is None:
            chunks = synthetic_rows(n, seed)
        try:
            async with db.write() as conn:
                total = await batches.insert_batch(
                    conn,
                    batch_id=batch_id,
                    workspace_id=WORKSPACE,
                    agent_id=DEMO_AGENT,
                    scheduled_at=scheduled_at,
                    callback_policy=policy_to_json(parse_callback_policy(None)),
                    source_name=f"bench-{n}.csv",
                    rows=_aiter(chunks),
                )
        finally:
            if closer is not None:
                closer.close()
            (data_dir / "contacts.csv").unlink(missing_ok=True)
        if total != n:
            raise SystemExit(f"insert_batch stored {total} calls, expected {n}")
        async with db.write() as conn:
            await apply_mix(conn, batch_id, total)
        async with db.read() as conn:
            by_status = await check_counters(conn, batch_id)
    finally:
        await db.dispose()
    # Fold the WAL into the main file, as a long-running server's checkpoints would; no
    # ANALYZE: the server never runs it, so its planner works without statistics.
    with contextlib.closing(sqlite3.connect(data_dir / "dialbatch.db")) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = sum(p.stat().st_size for p in data_dir.glob("dialbatch.db*"))
    return Built(batch_id, total, by_status, source, time.perf_counter() - started, size)


async def apply_mix(conn: Any, batch_id: str, total: int) -> None:
    """Finish the first 45% of rows (about 40% completed, 5% failed) with counters to match."""
    finished = math.floor(total * FINISHED_SHARE)
    t0 = now_ms() - RUN_LENGTH_MS
    span = RUN_LENGTH_MS - 60_000
    # Deterministic per-row "randomness" from seq, so SQL does it in one statement.
    fails = f"((seq * 2654435761) % 1000) < {FAILED_PER_MILLE}"
    dur = "(20 + (seq * 48271) % 161)"
    ended = f"({t0} + (seq * {span}) / {max(finished, 1)})"
    await conn.exec_driver_sql(
        f"""
        UPDATE calls SET
          status = CASE WHEN {fails} THEN 'failed' ELSE 'completed' END,
          attempt = 1,
          started_at = {ended} - {dur} * 1000,
          ended_at = {ended},
          duration_s = CASE WHEN {fails} THEN NULL ELSE {dur} * 1.0 END,
          error = CASE WHEN {fails} THEN 'Call failed - no answer' ELSE NULL END,
          result = CASE WHEN {fails} THEN NULL ELSE json_object(
            'callId', 'sim_' || lower(hex(randomblob(8))), 'transcript', '',
            'outcome', 'successful', 'metadata', json(metadata)) END,
          provider_call_id = 'sim_' || batch_id || '_' || seq
        WHERE batch_id = ? AND seq < ?
        """,
        (batch_id, finished),
    )
    c = calls.c
    rows = await conn.execute(
        sa.select(c.status, sa.func.count(), sa.func.sum(c.duration_s), sa.func.max(c.ended_at))
        .where(c.batch_id == batch_id, c.seq < finished)
        .group_by(c.status)
    )
    for status, n, dur_sum, last in rows.all():
        state = CallState(status)
        await counters.move(
            conn,
            batch_id,
            {CallState.WAITING: -n, state: n},
            duration_s=float(dur_sum or 0.0),
            last_at=int(last),
        )
    await conn.execute(
        batches_table.update()
        .where(batches_table.c.id == batch_id)
        .values(status=BatchState.PROCESSING.value, started_at=t0 - 180_000, last_claimed_at=t0)
    )


async def check_counters(conn: Any, batch_id: str) -> dict[str, int]:
    """batch_counters must equal COUNT(*) GROUP BY status (as the store's test checks)."""
    c = calls.c
    real = dict(
        (
            await conn.execute(
                sa.select(c.status, sa.func.count())
                .where(c.batch_id == batch_id)
                .group_by(c.status)
            )
        ).all()
    )
    tally = await counters.tally(conn, batch_id)
    kept = {s: n for s, n in tally.by_state.items() if n}
    if kept != real:
        raise SystemExit(f"counters {kept} != COUNT(*) {real}")
    bc = batch_counters.c
    shards = await conn.scalar(
        sa.select(sa.func.count()).select_from(batch_counters).where(bc.batch_id == batch_id)
    )
    assert shards is not None and shards <= 32
    return {str(k): int(v) for k, v in real.items()}


def prepared(workdir: Path, n: int, seed: int, rows_from: str) -> Built:
    """Build the database for `n` calls in `workdir`, or reuse one built there before."""
    marker = workdir / MARKER
    schema = schema_fingerprint()
    if marker.exists() and (workdir / "dialbatch.db").exists():
        data = json.loads(marker.read_text())
        if data.pop("total_wanted", None) == n and data.pop("schema", None) == schema:
            data["seconds"] = 0.0
            return Built(**data)
    for p in workdir.glob("dialbatch.db*"):
        p.unlink()
    workdir.mkdir(parents=True, exist_ok=True)
    built = asyncio.run(build(workdir, n, seed, rows_from))
    marker.write_text(json.dumps({**built.__dict__, "total_wanted": n, "schema": schema}))
    return built


def schema_fingerprint() -> str:
    """A reused database must have been built by the current migrations and store code."""
    root = Path(migrate.__file__).parent
    files = sorted(root.glob("migrations/versions/*.py")) + sorted(root.glob("*.py"))
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:16]


# --- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stat:
    p50: float
    p95: float
    mean: float
    n: int

    @classmethod
    def of(cls, seconds: list[float]) -> Stat:
        ms = sorted(t * 1000 for t in seconds)
        return cls(
            p50=statistics.median(ms),
            p95=ms[min(len(ms) - 1, math.ceil(0.95 * len(ms)) - 1)],
            mean=statistics.fmean(ms),
            n=len(ms),
        )


# (name, in the target?) in the order measured and printed.
ENDPOINTS = (
    ("GET batch", True),
    ("GET status", True),
    ("calls page 1", True),
    ("calls last page", True),
    ("calls failed p1", True),
    ("calls waiting p1", True),
    ("calls completed last pg", False),
    ("GET one call", False),
)


def endpoint_paths(built: Built, limit: int) -> dict[str, str]:
    """Every read measured; deep pages are the last page of their listing."""
    base = f"/v1/api/batch-calls/{built.batch_id}"
    last = max(1, math.ceil(built.total / limit))
    last_completed = max(1, math.ceil(built.by_status.get("completed", 0) / limit))
    job = f"call_{built.batch_id.removeprefix('batch_')}_{built.total // 2}"
    return {
        "GET batch": base,
        "GET status": f"{base}/status",
        "calls page 1": f"{base}/calls?page=1&limit={limit}",
        "calls last page": f"{base}/calls?page={last}&limit={limit}",
        "calls failed p1": f"{base}/calls?status=failed&page=1&limit={limit}",
        "calls waiting p1": f"{base}/calls?status=waiting&page=1&limit={limit}",
        "calls completed last pg": (
            f"{base}/calls?status=completed&page={last_completed}&limit={limit}"
        ),
        "GET one call": f"{base}/calls/{job}",
    }


def measure(
    server: Server, paths: dict[str, str], n: int, warmup: int, into: dict[str, list[float]]
) -> None:
    """`warmup` then `n` timed sequential requests per endpoint, appended to `into`."""
    with httpx.Client(base_url=server.base_url, headers=server.headers, timeout=60) as client:
        for name, path in paths.items():
            for i in range(warmup + n):
                t = time.perf_counter()
                r = client.get(path)
                elapsed = time.perf_counter() - t
                if r.status_code != 200:
                    raise SystemExit(f"{name}: HTTP {r.status_code} {r.text[:300]}")
                if i >= warmup:
                    into.setdefault(name, []).append(elapsed)


def sanity(server: Server, built: Built, limit: int) -> None:
    """The server reads the batch as built: totals, counts, a deep page in CSV order."""
    base = f"/v1/api/batch-calls/{built.batch_id}"
    with httpx.Client(base_url=server.base_url, headers=server.headers, timeout=60) as client:
        status = client.get(f"{base}/status").json()
        assert status["total"] == built.total, status
        assert status["completed"] == built.by_status.get("completed", 0), status
        assert status["failed"] == built.by_status.get("failed", 0), status
        assert len(status["recent_calls"]) == min(10, status["completed"] + status["failed"])
        last = max(1, math.ceil(built.total / limit))
        page = client.get(f"{base}/calls", params={"page": last, "limit": limit}).json()
        want = built.total - (last - 1) * limit
        assert len(page["calls"]) == want, (len(page["calls"]), want)
        assert page["calls"][-1]["jobId"].endswith(f"_{built.total - 1}"), page["calls"][-1]
        waiting = client.get(f"{base}/calls", params={"status": "waiting"}).json()
        assert waiting["pagination"]["total"] == built.by_status.get("waiting", 0), waiting


@dataclass
class Results:
    """Pooled samples per size and endpoint, and each round's median (for paired ratios)."""

    stats: dict[int, dict[str, Stat]]
    round_p50: dict[int, dict[str, list[float]]]
    peaks: dict[int, int]

    def paired_ratio(self, name: str, small: int, big: int) -> float:
        """Median over rounds of (big's p50 / small's p50) in the same round."""
        pairs = zip(self.round_p50[big][name], self.round_p50[small][name], strict=True)
        return statistics.median(b / s for b, s in pairs)


def run_rounds(
    sizes: list[int], dirs: dict[int, Path], built: dict[int, Built], args: argparse.Namespace
) -> Results:
    """Alternate the sizes over `--rounds` server runs each (1k, 1M, 1M, 1k, ...), so that
    background load on a shared machine falls on both alike; samples are pooled per size."""
    samples: dict[int, dict[str, list[float]]] = {n: {} for n in sizes}
    round_p50: dict[int, dict[str, list[float]]] = {n: {} for n in sizes}
    peaks = dict.fromkeys(sizes, 0)
    per_round = max(1, math.ceil(args.n / args.rounds))
    for r in range(args.rounds):
        for n in sizes if r % 2 == 0 else list(reversed(sizes)):
            with run_server(dirs[n], dispatch=not args.no_dispatch, calls_per_second=0.01) as srv:
                if r == 0:
                    sanity(srv, built[n], args.limit)
                paths = endpoint_paths(built[n], args.limit)
                this_round: dict[str, list[float]] = {}
                measure(srv, paths, per_round, args.warmup, this_round)
                peaks[n] = max(peaks[n], srv.monitor.peak)
            for name, times in this_round.items():
                samples[n].setdefault(name, []).extend(times)
                round_p50[n].setdefault(name, []).append(statistics.median(times) * 1000)
        print(f"  round {r + 1}/{args.rounds} done", flush=True)
    stats = {n: {k: Stat.of(v) for k, v in samples[n].items()} for n in sizes}
    return Results(stats, round_p50, peaks)


def print_table(sizes: list[int], res: Results) -> bool:
    small, big = sizes[0], sizes[-1]
    head = f"{'endpoint':<24}"
    for s in sizes:
        lab = _short(s)
        head += f" {lab + ' p50':>8} {lab + ' p95':>8} {lab + ' mean':>9}"
    head += f" {'p50 ratio':>9} {'mean ratio':>10} {'paired':>6}  verdict"
    print(head)
    all_met = True
    for name, in_target in ENDPOINTS:
        line = f"{name:<24}"
        for s in sizes:
            st = res.stats[s][name]
            line += f" {st.p50:>8.2f} {st.p95:>8.2f} {st.mean:>9.2f}"
        r50 = res.stats[big][name].p50 / res.stats[small][name].p50
        rmean = res.stats[big][name].mean / res.stats[small][name].mean
        paired = res.paired_ratio(name, small, big)
        met = r50 <= TARGET_RATIO
        if in_target:
            all_met &= met
        verdict = ("MET" if met else "NOT MET") + ("" if in_target else " (extra)")
        line += f" {r50:>9.2f} {rmean:>10.2f} {paired:>6.2f}  {verdict}"
        print(line)
    print(
        "(milliseconds, client wall time per request, keep-alive; ratios "
        f"{_short(big)} / {_short(small)}; paired = median over rounds of the per-round p50 "
        f"ratio; target: p50 ratio <= {TARGET_RATIO})"
    )
    return all_met


def _short(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000, 1_000_000])
    p.add_argument("-n", type=int, default=200, help="timed requests per endpoint (default 200)")
    p.add_argument("--rounds", type=int, default=10, help="server runs per size, alternated")
    p.add_argument("--warmup", type=int, default=10, help="untimed requests per endpoint/round")
    p.add_argument("--limit", type=int, default=20, help="page size (the API's default, 20)")
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument("--rows-from", choices=("auto", "ingest", "synthetic"), default="auto")
    p.add_argument("--no-dispatch", action="store_true", help="serve --no-dispatch")
    p.add_argument("--workdir", type=Path, help="keep databases here and reuse them")
    add_wait_quiet(p)
    args = p.parse_args(argv)
    if args.wait_quiet:
        wait_until_quiet(args.wait_quiet)
    sizes = sorted(set(args.sizes))

    print_machine()
    with tempfile.TemporaryDirectory(prefix="dialbatch-progress-") as tmp:
        root = args.workdir or Path(tmp)
        dirs = {n: root / f"calls-{n}" for n in sizes}
        built: dict[int, Built] = {}
        for n in sizes:
            built[n] = b = prepared(dirs[n], n, args.seed, args.rows_from)
            how = f"built in {b.seconds:.1f}s" if b.seconds else "reused"
            print(
                f"{n:>9,} calls: {b.batch_id} {b.by_status}, rows from {b.rows_from}, "
                f"db {b.db_bytes / MB:.0f} MB, {how}",
                flush=True,
            )
        results = run_rounds(sizes, dirs, built, args)
    peaks = results.peaks
    print(
        "server peak RSS: "
        + ", ".join(f"{_short(n)} {peaks[n] / MB:.0f} MB" for n in sizes)
        + f"; dispatcher {'off' if args.no_dispatch else 'on'}"
    )
    print_load("at end")
    print()
    met = print_table(sizes, results)
    print(f"target: every endpoint within {TARGET_RATIO}x (p50): {'MET' if met else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
