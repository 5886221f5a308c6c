"""Worker test helpers: resources with custom settings, tasks made through the use cases."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.bootstrap import Resources, build_resources
from service.catalog.catalog import Catalog, Limits
from service.catalog.model import TaskType
from service.clock import utcnow
from service.db.engine import SessionMaker, session_scope
from service.db.tables import tasks_table
from service.db.unit_of_work import unit_of_work
from service.domain.callers import Caller
from service.domain.tasks import TaskRecord
from service.usecases import tasks as task_usecases
from tests.fixtures.app import make_settings
from tests.fixtures.catalog import AnyParams

ALICE = Caller("alice")


@contextlib.asynccontextmanager
async def open_resources(
    database_url: str, data_dir: Any, process: str = "test", **overrides: Any
) -> AsyncIterator[Resources]:
    """Resources (own engine) built from test settings with `overrides`; closed at exit."""
    resources = build_resources(make_settings(database_url, data_dir, **overrides), process)
    try:
        yield resources
    finally:
        await resources.close()


async def make_task(resources: Resources, task_type: str = "noop", **fields: Any) -> TaskRecord:
    """Create a task through the create use case (event and outbox rows included)."""
    async with resources.unit() as uow:
        task, _ = await task_usecases.create(
            uow,
            ALICE,
            task_usecases.NewTask(task_type=task_type, **fields),
            now=utcnow(),
            catalog=resources.catalog,
        )
    return task


async def load_task(resources: Resources, task_id: UUID) -> Any:
    async with session_scope(resources.sessionmaker) as session:
        stmt = select(tasks_table).where(tasks_table.c.id == task_id)
        return (await session.execute(stmt)).one()


async def rows(resources: Resources, table: Any, *order_by: Any, **where: Any) -> list[Any]:
    """All rows of `table` matching column=value filters, in `order_by` (default: id)."""
    stmt = select(table).where(*(table.c[k] == v for k, v in where.items()))
    stmt = stmt.order_by(*(order_by or (table.c.id,)))
    async with session_scope(resources.sessionmaker) as session:
        return list((await session.execute(stmt)).all())


async def insert_unlisted(sessionmaker: SessionMaker, task_type: str, **fields: Any) -> TaskRecord:
    """A pending task of a type the catalog does not list, as an older version of the service
    or another writer of the table could leave behind (POST /tasks refuses such a type)."""
    permissive = Catalog([TaskType(task_type, "not in the catalog", AnyParams)], Limits(60, 30, 3))
    async with unit_of_work(sessionmaker) as uow:
        task, _ = await task_usecases.create(
            uow,
            ALICE,
            task_usecases.NewTask(task_type=task_type, **fields),
            now=utcnow(),
            catalog=permissive,
        )
    return task


class Outage:
    """A sessionmaker that refuses to connect while `down`, as a stopped PostgreSQL does."""

    def __init__(self, sessionmaker: SessionMaker) -> None:
        self.sessionmaker = sessionmaker
        self.down = False

    def __call__(self) -> Any:
        return _Refused() if self.down else self.sessionmaker()


class _Refused:
    async def __aenter__(self) -> AsyncSession:
        raise ConnectionRefusedError(111, "Connection refused")

    async def __aexit__(self, *exc: object) -> None:
        return None


class CommitAnswerLost:
    """A sessionmaker whose next COMMIT is applied (or not), then fails as a cut connection
    does: the caller cannot tell which happened."""

    def __init__(self, sessionmaker: SessionMaker, *, applied: bool) -> None:
        self.sessionmaker = sessionmaker
        self.applied = applied
        self.armed = True

    def __call__(self) -> AsyncSession:
        session = self.sessionmaker()
        if self.armed:
            self.armed = False
            commit = session.commit

            async def commit_then_lose_the_answer() -> None:
                await (commit() if self.applied else session.rollback())
                raise ConnectionResetError(104, "Connection reset by peer")

            session.commit = commit_then_lose_the_answer  # type: ignore[method-assign]
        return session
