"""Which database errors mean "unreachable for now" (answer 503, try again) rather than a bug."""

from __future__ import annotations

import errno
import socket
import sqlite3

import asyncpg
from sqlalchemy import exc as sa_exc

#: SQLSTATE classes and codes of a database that is away or overloaded for a while:
#: 08 connection exception, 53 insufficient resources (too many connections, disk full),
#: 57P01-57P03 admin/crash shutdown and "cannot connect now" (starting up or shutting down),
#: 40001/40P01 serialization failure and deadlock (the same request succeeds when repeated).
TRANSIENT_SQLSTATES = ("08", "53", "57P01", "57P02", "57P03", "40001", "40P01")
#: SQLite's transient answers: another writer held the lock past busy_timeout, or the disk.
TRANSIENT_SQLITE = ("database is locked", "database is busy", "disk i/o error", "unable to open")

#: Socket errors of a server that is down or unreachable (a file that is missing is not one).
NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
        errno.EPIPE,
    }
)

#: Exception types an unreachable database raises into request code: SQLAlchemy's wrappers,
#: and what the driver raises unwrapped while connecting (asyncpg gives OSError subclasses
#: such as ConnectionRefusedError, and PostgresError subclasses such as CannotConnectNowError).
CANDIDATES: tuple[type[Exception], ...] = (
    sa_exc.SQLAlchemyError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


def _sqlstate(error: BaseException) -> str | None:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return state if isinstance(state, str) else None


def _chain(error: BaseException) -> list[BaseException]:
    """The error, what it wraps (`orig`) and what caused it, without looping."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen) or len(seen) > 16:
            continue
        seen.append(current)
        orig = getattr(current, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None]
        todo += [current.__cause__, current.__context__]
    return seen


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached (or is overloaded) right now."""
    for link in _chain(error):
        if isinstance(link, sa_exc.DBAPIError) and link.connection_invalidated:
            return True
        if isinstance(link, sa_exc.TimeoutError | ConnectionError | TimeoutError | socket.gaierror):
            return True  # the pool had no connection in time; the server refused or vanished
        if isinstance(link, OSError) and link.errno in NETWORK_ERRNOS:
            return True
        state = _sqlstate(link)
        if state is not None and state.startswith(TRANSIENT_SQLSTATES):
            return True
        if isinstance(link, sqlite3.OperationalError) and str(link).lower().startswith(
            TRANSIENT_SQLITE
        ):
            return True
        if type(link).__module__.startswith("asyncpg") and (
            type(link).__name__ == "ConnectionDoesNotExistError"
            or (type(link).__name__ == "InterfaceError" and "closed" in str(link))
        ):
            return True
    return False
