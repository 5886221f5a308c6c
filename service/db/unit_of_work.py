"""The unit of work: one transaction, and what it did that others must hear of once committed.

Use cases take a UnitOfWork, never commit, and note typed facts on it (the outbox rows they
wrote, the tasks they made ready to run). Whoever opened it — the API's request, a worker
loop, a job — commits, and only then hands the facts to the composition root's `after_commit`
(ring the workers in this process, feed the relay): a rollback hands over nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.db import driver
from service.db.engine import SessionMaker
from service.db.repositories.outbox import OutboxRecord


@dataclass(slots=True)
class Facts:
    """What a transaction did that others must hear of, once it commits."""

    #: outbox rows written, with their ids (the relay publishes them)
    outbox: list[OutboxRecord] = field(default_factory=list)
    #: tasks made pending and due now (the workers of this process may claim them at once)
    ready: list[UUID] = field(default_factory=list)
    #: task log lines were written (live streams of this process read them)
    logged: bool = False

    def __bool__(self) -> bool:
        return bool(self.outbox or self.ready or self.logged)


AfterCommit = Callable[[Facts], None]


class UnitOfWork:
    """A session and the facts its use cases noted; committed by whoever opened it."""

    __slots__ = ("_after_commit", "facts", "session")

    def __init__(self, session: AsyncSession, after_commit: AfterCommit | None = None) -> None:
        self.session = session
        self.facts = Facts()
        self._after_commit = after_commit

    async def commit(self) -> None:
        """Commit what was done so far and hand its facts over; the unit goes on in a new
        transaction. A use case calls this only to end a read before slow I/O outside the
        database (on SQLite an open transaction holds the one write lock)."""
        await self.session.commit()
        facts, self.facts = self.facts, Facts()
        if self._after_commit is not None and facts:
            self._after_commit(facts)


#: Opens one unit of work per call, committed when its block succeeds (`Resources.unit`): what
#: flows of several transactions (an upload, an import's batches) are handed by their edge.
Units = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


@asynccontextmanager
async def unit_of_work(
    sessionmaker: SessionMaker, after_commit: AfterCommit | None = None
) -> AsyncIterator[UnitOfWork]:
    """Commit when the block succeeds (then `after_commit` with its facts), roll back when it
    raises."""
    async with sessionmaker() as session:
        uow = UnitOfWork(session, after_commit)
        try:
            yield uow
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
    facts = uow.facts
    if after_commit is not None and facts:
        after_commit(facts)


class StatementUnit:
    """A unit of work whose whole transaction is one statement, on PostgreSQL's own driver
    (service.db.driver): a lone statement commits itself, so there is no BEGIN and no COMMIT
    to send, and no ORM session to pay for. The group commit's (usecases/group_commit.py)."""

    __slots__ = ("connection", "facts")

    def __init__(self, connection: asyncpg.Connection) -> None:
        #: for one statement: a second would not share the first one's transaction
        self.connection = connection
        self.facts = Facts()


#: Opens one statement unit per call (`Resources.statement_unit`), on PostgreSQL only.
StatementUnits = Callable[[], AbstractAsyncContextManager[StatementUnit]]


@asynccontextmanager
async def statement_unit(
    engine: AsyncEngine, after_commit: AfterCommit | None = None
) -> AsyncIterator[StatementUnit]:
    """When the block succeeds its statement has committed: `after_commit` hears its facts."""
    async with driver.connection(engine) as connection:
        unit = StatementUnit(connection)
        yield unit
    if after_commit is not None and unit.facts:
        after_commit(unit.facts)
