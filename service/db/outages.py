"""Tell the database being unreachable (wait and try again) from a fault of the statement.

What a stopped or restarting PostgreSQL raises through asyncpg and SQLAlchemy, as seen in
tests/e2e/test_database_outage.py: a raw ConnectionRefusedError / ConnectionResetError while
connecting (SQLAlchemy does not wrap those), CannotConnectNowError (57P03, "shutting down" or
"starting up"), AdminShutdownError (57P01) and ConnectionDoesNotExistError (08003) on open
connections, and asyncpg's InternalClientError ("cannot switch to state …; another operation
is in progress") when a connection is cut in the middle of a statement.
"""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import exc

#: SQLSTATEs of the server going away: class 08 (connection exception) and the shutdowns
#: and start-up of class 57 (operator intervention), plus too_many_connections.
_UNAVAILABLE_PREFIXES = ("08",)
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def unavailable(error: BaseException) -> bool:
    """True when `error` means the database could not be reached or dropped the connection."""
    return any(_is_connection_trouble(e) for e in _chain(error))


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_connection_trouble(error: BaseException) -> bool:
    if isinstance(error, OSError):  # refused, reset, unreachable; TimeoutError is one too
        return True
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, exc.TimeoutError):  # the pool had no connection to give in time
        return True
    if isinstance(error, asyncpg.InternalClientError | asyncpg.InterfaceError):
        return True
    state = getattr(error, "sqlstate", None)
    return isinstance(state, str) and (
        state.startswith(_UNAVAILABLE_PREFIXES) or state in _UNAVAILABLE_STATES
    )
