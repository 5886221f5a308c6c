"""PostgreSQL LISTEN: one connection per process that wakes a callback on each notification.

Migration 0017 makes every transaction that writes outbox rows or task logs send one
NOTIFY on CHANNEL at commit, whichever process commits it (API, worker, job).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

CHANNEL = "ops_changes"


def raw_dsn(url: URL) -> str:
    """asyncpg's own DSN for a SQLAlchemy URL (the listener holds a connection of its own,
    outside the pool, for as long as the process lives)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """A LISTEN connection; `on_notify` runs in the event loop for each notification and
    `on_lost` when the connection breaks (the owner reconnects, then reads what it missed)."""

    def __init__(self, dsn: str, on_notify: Callable[[], None], on_lost: Callable[[], None]):
        self.dsn = dsn
        self.on_notify = on_notify
        self.on_lost = on_lost
        self._conn: asyncpg.Connection[Any] | None = None

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def connect(self) -> None:
        conn: asyncpg.Connection[Any] = await asyncpg.connect(
            self.dsn, server_settings={"application_name": "common-ops.api.listen"}, timeout=10
        )
        conn.add_termination_listener(lambda _conn: self.on_lost())
        await conn.add_listener(CHANNEL, lambda *_args: self.on_notify())
        self._conn = conn

    async def check(self) -> None:
        """A round trip: raises when the connection is gone (asyncpg learns of it only so)."""
        if self._conn is None:
            raise ConnectionError("not connected")
        await self._conn.execute("SELECT 1", timeout=5)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            await conn.close(timeout=2)
