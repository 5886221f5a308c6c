"""API tests share one PostgreSQL database, emptied before each test, instead of a copy per test.

Copying the migrated template costs about half a second per test; emptying its tables costs a few
milliseconds, and every test still starts from a migrated, empty database on both dialects.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from service.bootstrap import Resources
from tests.fixtures.database import TEMPLATE
from tests.integration.api.support import trail


def _raw(url: str, database: str) -> str:
    parsed = make_url(url).set(drivername="postgresql", database=database)
    return parsed.render_as_string(hide_password=False)


def _admin(server: str, statement: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(_raw(server, "postgres"))
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:  # the session's event loop may be running here
        pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def api_postgres_database(postgres_server: str, postgres_template: str) -> Iterator[str]:
    name = f"ops_api_{uuid.uuid4().hex[:12]}"
    _admin(postgres_server, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    try:
        yield make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def _empty(url: str) -> None:
    conn = await asyncpg.connect(_raw(url, make_url(url).database or ""))
    try:
        await conn.execute("SET lock_timeout = '5s'")  # a leaked connection fails, never hangs
        tables = await conn.fetch(
            "SELECT quote_ident(tablename) AS name FROM pg_tables"
            " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
        names = ", ".join(t["name"] for t in tables)
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture
async def database_url(
    dialect: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[str]:
    """A migrated, empty database on the dialect of the `dialect` parameter."""
    if dialect == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "operations.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url: str = request.getfixturevalue("api_postgres_database")
    await _empty(url)
    yield url


@pytest.fixture(autouse=True)
async def _every_event_has_its_outbox_row(resources: Resources) -> AsyncIterator[None]:
    """After each test: one outbox row per task event, same task, same type, same order."""
    yield
    events, outbox = await trail(resources)
    assert outbox == events
