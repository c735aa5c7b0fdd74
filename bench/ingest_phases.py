"""Where an upload's time goes, in process: validation alone, the insert alone, and both
pipelined the way the server runs them, at the server's GIL switch interval and at
Python's default.

    .venv/bin/python bench/ingest_phases.py [--rows 300000] [--timezone-column 0.3]

Prints seconds per phase; the end-to-end figure through HTTP is bench/ingest.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dialbatch import ingest
from dialbatch.api.producer import ThreadProducer
from dialbatch.api.routers.batches import INGEST_CHUNK_ROWS
from dialbatch.server import SWITCH_INTERVAL_S
from dialbatch.store import batches, migrate, workspaces
from dialbatch.store.engine import Database
from ingest import write_csv


async def _fresh_db(directory: Path) -> Database:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    url = f"sqlite+aiosqlite:///{directory / 'db.sqlite'}"
    migrate.upgrade(url)
    db = Database(url)
    async with db.write() as conn:
        await workspaces.create_workspace(conn, workspace_id="w")
    return db


async def _insert(db: Database, batch_id: str, rows: object) -> float:
    started = time.perf_counter()
    async with db.write() as conn:
        await batches.insert_batch(
            conn,
            batch_id=batch_id,
            workspace_id="w",
            agent_id="a",
            scheduled_at=None,
            callback_policy={},
            source_name=None,
            rows=rows,  # type: ignore[arg-type]
        )
    return time.perf_counter() - started


async def main(csv_path: Path, work: Path) -> None:
    options = ingest.IngestOptions()
    chunks: list[ingest.csv_reader.Chunk] = []
    started = time.perf_counter()
    with open(csv_path, "rb") as f:
        ingest.stream(f, options, chunks.append, chunk_size=INGEST_CHUNK_ROWS)
    print(f"validate + build rows (one thread):      {time.perf_counter() - started:5.2f} s")

    async def prebuilt():  # type: ignore[no-untyped-def]
        for chunk in chunks:
            yield chunk

    db = await _fresh_db(work)
    took = await _insert(db, "batch_a", prebuilt())
    print(f"insert prebuilt chunks, with commit:     {took:5.2f} s")
    await db.dispose()
    for interval in (SWITCH_INTERVAL_S, 0.005):
        sys.setswitchinterval(interval)
        db = await _fresh_db(work)
        with open(csv_path, "rb") as f:
            producer = ThreadProducer(
                lambda emit, f=f: ingest.stream(f, options, emit, chunk_size=INGEST_CHUNK_ROWS)
            )
            took = await _insert(db, "batch_b", producer)
        await db.dispose()
        print(f"pipelined, switch interval {interval * 1000:3.1f} ms:     {took:5.2f} s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument(
        "--timezone-column",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="a timezone column filled on this share of the rows (bench/ingest.py's)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dialbatch-phases-") as tmp:
        path = Path(tmp) / "upload.csv"
        write_csv(path, args.rows, national=False, seed=1, timezone_share=args.timezone_column)
        asyncio.run(main(path, Path(tmp) / "db"))
