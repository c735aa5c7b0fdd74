"""Progress of a live dial moves only forward, and any word from the provider counts as
being heard (store/following.py)."""

from __future__ import annotations

import sqlalchemy as sa

from dialbatch.domain.outcomes import Outcome
from dialbatch.providers.base import CallProgress, Stage
from dialbatch.store import following
from dialbatch.store.engine import Database
from dialbatch.store.tables import attempts, calls
from tests.helpers import make_batch
from tests.store.test_queue import claim, dial, outcome


async def _stage(db: Database) -> tuple[str, int | None]:
    async with db.read() as conn:
        row = (await conn.execute(sa.select(attempts.c.state, attempts.c.heard_at))).one()
    return row.state, row.heard_at


async def _progress(db: Database, event: CallProgress) -> bool:
    async with db.write() as conn:
        return await following.apply_progress(conn, event)


async def test_progress_moves_forward_and_never_back(db: Database) -> None:
    await make_batch(db, 1)
    [c] = await claim(db)
    intent = await dial(db, c)
    assert intent is not None
    key = intent.dial_key
    assert await _stage(db) == ("dialing", None)
    assert await _progress(db, CallProgress(Stage.ANSWERED, dial_key=key))
    state, heard = await _stage(db)
    assert state == "answered" and heard is not None
    # a late `ringing` (reordered callback) and a duplicate `answered` change nothing
    assert not await _progress(db, CallProgress(Stage.RINGING, dial_key=key))
    assert not await _progress(db, CallProgress(Stage.ANSWERED, dial_key=key))
    assert (await _stage(db))[0] == "answered"


async def test_progress_after_the_end_changes_nothing(db: Database) -> None:
    await make_batch(db, 1)
    [c] = await claim(db)
    intent = await dial(db, c)
    assert intent is not None
    await outcome(db, intent.dial_key, Outcome.COMPLETED, duration_s=3.0)
    assert not await _progress(db, CallProgress(Stage.RINGING, dial_key=intent.dial_key))
    assert (await _stage(db))[0] == "ended"


async def test_progress_for_an_unknown_dial_is_ignored(db: Database) -> None:
    assert not await _progress(db, CallProgress(Stage.RINGING, dial_key="call_x_1:1"))
    assert not await _progress(db, CallProgress(Stage.RINGING, provider_call_id="nope"))
    assert not await _progress(db, CallProgress(Stage.RINGING))


async def test_quiet_dials_are_the_followers_own_and_unheard(db: Database) -> None:
    await make_batch(db, 2)
    first, second = await claim(db)
    a = await dial(db, first)
    b = await dial(db, second)
    assert a is not None and b is not None
    async with db.write() as conn:  # both dialed long ago
        await conn.execute(attempts.update().values(started_at=0))
    async with db.read() as conn:
        assert await following.quiet_dials(conn, "someone-else", quiet_ms=60_000) == []
        quiet = await following.quiet_dials(conn, "w1", quiet_ms=60_000)
    assert {q.dial_key for q in quiet} == {a.dial_key, b.dial_key}
    async with db.write() as conn:
        await following.mark_heard(conn, a.dial_key)  # the provider said: still live
    async with db.read() as conn:
        quiet = await following.quiet_dials(conn, "w1", quiet_ms=60_000)
    assert [q.dial_key for q in quiet] == [b.dial_key]


async def test_the_provider_call_id_of_any_progress_is_recorded_at_once(db: Database) -> None:
    """The placing worker may die before recording the id; a progress callback that
    carries it (even a stale `initiated`) is what lets reconciliation ask about the call."""
    await make_batch(db, 1)
    [c] = await claim(db)
    intent = await dial(db, c)
    assert intent is not None
    await _progress(db, CallProgress(Stage.ANSWERED, dial_key=intent.dial_key))
    late = CallProgress(Stage.DIALING, dial_key=intent.dial_key, provider_call_id="CA123")
    assert not await _progress(db, late)  # not a step forward, but its id is kept
    async with db.read() as conn:
        att = (await conn.execute(sa.select(attempts.c.provider_call_id))).scalar_one()
        call = (await conn.execute(sa.select(calls.c.provider_call_id))).scalar_one()
    assert att == call == "CA123"
