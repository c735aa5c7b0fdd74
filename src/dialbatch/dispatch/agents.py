"""The agents a dispatcher dials for, read once and kept for a while.

Every claimed group needs its agent's provider and settings; reading them per call would
cost a query per dial. Entries live `ttl_s` (an edited agent is seen within that time)
and at most `max_size` are kept (least recently used go first), so a long-running worker
serving many workspaces does not grow without bound.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from dialbatch.store import workspaces
from dialbatch.store.engine import Database
from dialbatch.store.workspaces import Agent

DEFAULT_TTL_S = 30.0
DEFAULT_MAX_SIZE = 1024


class AgentCache:
    def __init__(
        self, db: Database, *, ttl_s: float = DEFAULT_TTL_S, max_size: int = DEFAULT_MAX_SIZE
    ) -> None:
        self._db = db
        self._ttl_s = ttl_s
        self._max_size = max_size
        self._entries: OrderedDict[tuple[str, str], tuple[float, Agent | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, workspace_id: str, agent_id: str) -> Agent | None:
        """The agent, or None if it does not exist (remembered too, for `ttl_s`)."""
        key = (workspace_id, agent_id)
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self._ttl_s:
            self._entries.move_to_end(key)
            return entry[1]
        async with self._db.read() as conn:
            agent = await workspaces.get_agent(conn, workspace_id, agent_id)
        self._entries[key] = (now, agent)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_size:
            self._entries.popitem(last=False)
        return agent
