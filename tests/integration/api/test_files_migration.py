"""Migrations of the files table go up and down on both databases and keep existing files."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from sqlalchemy import DateTime, Uuid, bindparam, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.sql.elements import TextClause

from service.db import migrate


def _raw(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql", database="postgres")
    return parsed.render_as_string(hide_password=False)


@pytest.fixture
async def empty_url(
    dialect: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[str]:
    """A new, empty database of its own (migrations are not undone on a shared one)."""
    if dialect == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
        return
    server: str = request.getfixturevalue("postgres_server")
    name = f"ops_mig_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_raw(server))
    try:
        await conn.execute(f"CREATE DATABASE {name}")
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.close()


def _downgrade(url: str, revision: str) -> None:
    with ThreadPoolExecutor(1) as pool:  # env.py runs its own event loop
        pool.submit(command.downgrade, migrate.alembic_config(url), revision).result()


async def _columns(url: str) -> list[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.run_sync(lambda c: inspect(c).get_columns("files"))
    finally:
        await engine.dispose()
    return [c["name"] for c in found]


async def _execute(
    url: str, statement: str | TextClause, **values: object
) -> list[tuple[object, ...]]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            clause = text(statement) if isinstance(statement, str) else statement
            result = await conn.execute(clause, values)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        await engine.dispose()


async def test_sha256_is_added_and_removed_and_files_stay(empty_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_url, "0005")
    assert "sha256" not in await _columns(empty_url)
    file_id = uuid.uuid4()
    insert = text(
        "INSERT INTO files (id, key, file_name, content_type, size, status, owner, purpose,"
        " created_at) VALUES (:id, 'uploads/x/a.csv', 'a.csv', 'text/csv', 3, 'ready', 'alice',"
        " 'input', :now)"
    ).bindparams(bindparam("id", type_=Uuid()), bindparam("now", type_=DateTime(timezone=True)))
    await _execute(empty_url, insert, id=file_id, now=datetime.now(UTC))
    await asyncio.to_thread(migrate.upgrade, empty_url)
    assert "sha256" in await _columns(empty_url)
    digest = "ab" * 32
    await _execute(empty_url, "UPDATE files SET sha256 = :sha", sha=digest)
    assert await _execute(empty_url, "SELECT file_name, sha256 FROM files") == [("a.csv", digest)]

    await asyncio.to_thread(_downgrade, empty_url, "0005")
    assert "sha256" not in await _columns(empty_url)
    assert await _execute(empty_url, "SELECT file_name FROM files") == [("a.csv",)]
    await asyncio.to_thread(migrate.upgrade, empty_url)
    assert await _execute(empty_url, "SELECT sha256 FROM files") == [(None,)]


async def test_the_upload_claim_is_added_and_removed_and_files_stay(empty_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_url, "0007")
    assert "upload_claim" not in await _columns(empty_url)
    insert = text(
        "INSERT INTO files (id, key, file_name, content_type, status, owner, purpose,"
        " created_at) VALUES (:id, 'uploads/x/a.csv', 'a.csv', 'text/csv', 'pending', 'alice',"
        " 'input', :now)"
    ).bindparams(bindparam("id", type_=Uuid()), bindparam("now", type_=DateTime(timezone=True)))
    await _execute(empty_url, insert, id=uuid.uuid4(), now=datetime.now(UTC))
    await asyncio.to_thread(migrate.upgrade, empty_url)
    assert {"upload_claim", "upload_claimed_at"} <= set(await _columns(empty_url))
    assert await _execute(empty_url, "SELECT upload_claim, upload_claimed_at FROM files") == [
        (None, None)
    ]
    claim = text("UPDATE files SET upload_claim = 'c0ffee', upload_claimed_at = :now").bindparams(
        bindparam("now", type_=DateTime(timezone=True))
    )
    await _execute(empty_url, claim, now=datetime.now(UTC))

    await asyncio.to_thread(_downgrade, empty_url, "0007")
    assert not {"upload_claim", "upload_claimed_at"} & set(await _columns(empty_url))
    kept = await _execute(empty_url, "SELECT file_name, status FROM files")
    assert kept == [("a.csv", "pending")]
    await asyncio.to_thread(migrate.upgrade, empty_url)
    assert await _execute(empty_url, "SELECT upload_claim FROM files") == [(None,)]
