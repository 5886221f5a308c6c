"""Worker test helpers: resources with custom settings, tasks made through the use cases."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from pydantic import ConfigDict
from sqlalchemy import select

from service.bootstrap import Resources, build_resources
from service.catalog.catalog import Catalog, Limits
from service.catalog.model import TaskType
from service.clock import utcnow
from service.db.engine import SessionMaker, session_scope
from service.db.tables import tasks_table
from service.domain.callers import Caller
from service.usecases import tasks as task_usecases
from service.usecases.views import TaskView
from service.wire import StrictModel
from tests.fixtures.app import make_settings

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


async def make_task(resources: Resources, task_type: str = "noop", **fields: Any) -> TaskView:
    """Create a task through the create use case (event and outbox rows included)."""
    async with session_scope(resources.sessionmaker) as session:
        task, _ = await task_usecases.create(
            session,
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


def with_types(resources: Resources, *extra: TaskType) -> Resources:
    """The resources with test-only task types added to their catalog (a registry built on it
    then takes handlers for them), as a deployment that ships more types would have."""
    resources.catalog = Catalog([*resources.catalog, *extra], resources.catalog.limits)
    return resources


async def insert_unlisted(sessionmaker: SessionMaker, task_type: str, **fields: Any) -> TaskView:
    """A pending task of a type the catalog does not list, as an older version of the service
    or another writer of the table could leave behind (POST /tasks refuses such a type)."""
    permissive = Catalog([TaskType(task_type, "not in the catalog", AnyParams)], Limits(60, 30, 3))
    async with session_scope(sessionmaker) as session:
        task, _ = await task_usecases.create(
            session,
            ALICE,
            task_usecases.NewTask(task_type=task_type, **fields),
            now=utcnow(),
            catalog=permissive,
        )
    return task


class AnyParams(StrictModel):
    """Whatever params."""

    model_config = ConfigDict(extra="allow", strict=True)
