"""PostgreSQL: the few statements run for every create group and every relay drain, straight
on asyncpg, on a connection of the engine's own pool.

SQLAlchemy's per-statement cost dominates these paths: on this machine (2026-12-07) an ORM
session running one statement and its commit costs 0.90 ms of CPU, each further statement
0.39 ms; the same statement on the pool's asyncpg connection 0.29 ms, in an explicit
transaction 0.40 ms. The statements themselves are still built with SQLAlchemy (text and
tables of service.db.tables) and compiled once for asyncpg's `$n` parameters, so their columns
are those of the rest of the code; only the execution skips SQLAlchemy. Everything else stays
on sessions (service.db.unit_of_work).

Values go as SQLAlchemy's asyncpg dialect hands them to asyncpg for a text() statement: as
they are, JSON as its text (the dialect's jsonb codec on every pool connection takes text).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class Compiled:
    """A statement as asyncpg runs it: its text with `$n` parameters and their names in order."""

    sql: str
    names: tuple[str, ...]

    @classmethod
    def of(cls, statement: ClauseElement) -> Compiled:
        compiled = statement.compile(dialect=_DIALECT)
        assert isinstance(compiled, SQLCompiler)  # a statement's compiler: it numbers parameters
        return cls(compiled.string, tuple(compiled.positiontup or ()))

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        """The positional arguments for `params` (every name the statement takes)."""
        return [params[name] for name in self.names]


class ConnectionLost(ConnectionError):
    """The connection broke under a statement (the database went away or shut down): what
    SQLAlchemy reports as a disconnect, so the caller treats it as the database being away
    (service.db.availability) and the next statement gets a new connection."""


def _lost(error: BaseException, conn: asyncpg.Connection) -> bool:
    """Whether `error` came from a connection that broke: it is closed now, or its protocol was
    left in the middle of an operation (asyncpg's InternalClientError, as when the server ends
    a session under a transaction: 'cannot switch to state …; another operation is in
    progress'). SQLAlchemy decides the same way, by the connection being closed."""
    if not isinstance(error, Exception) or isinstance(error, ConnectionError):
        return False
    return conn.is_closed() or isinstance(error, asyncpg.InternalClientError)


@asynccontextmanager
async def connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """An asyncpg connection of `engine`'s pool, for the block; back to the pool after it.

    A statement outside a transaction commits itself. A connection that may not be fit for
    the next user is discarded instead (the pool opens a new one): one left in a transaction
    (SQLAlchemy's reset on return knows only the transactions it began itself), one closed or
    broken under the block, or one whose block was cancelled (a query may still be under way).
    An error the server reported leaves it as it was.
    """
    async with engine.connect() as sa_connection:
        raw = await sa_connection.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection
        try:
            yield driver
        except BaseException as error:
            lost = _lost(error, driver)
            broken = not isinstance(error, Exception) or isinstance(
                error, asyncpg.InterfaceError | asyncpg.InternalClientError | OSError
            )
            if lost or broken or driver.is_in_transaction():
                await sa_connection.invalidate()
            if lost:
                raise ConnectionLost(str(error)) from error
            raise
        if driver.is_in_transaction():
            await sa_connection.invalidate()


@asynccontextmanager
async def transaction(conn: asyncpg.Connection, begin: str = "BEGIN") -> AsyncIterator[None]:
    """BEGIN (or `begin`: BEGIN and more, sent as one message) … COMMIT, ROLLBACK when the block
    raises. Within `connection`, whose exit discards a connection a failed ROLLBACK left behind.

    asyncpg's own transaction() would send its BEGIN alone: `begin` can also set what the
    transaction needs (SET LOCAL …) in the same round trip.
    """
    await conn.execute(begin)
    try:
        yield
    except BaseException:
        if not conn.is_closed() and conn.is_in_transaction():
            # should it fail too, `connection` discards the connection on the way out
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")
