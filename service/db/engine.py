"""Engine, sessionmaker and the session scope that owns commit and rollback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from service.config import Settings
from service.db import json_codec
from service.domain import analytics

SessionMaker = async_sessionmaker[AsyncSession]


def create_engine(settings: Settings, process_name: str) -> AsyncEngine:
    """One engine per process, labelled with the process name on PostgreSQL."""
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            settings.database_url,
            connect_args={"timeout": 30},
            pool_size=1,
            max_overflow=0,
            json_deserializer=json_codec.loads,
        )
        _sqlite_write_locking(engine)
        return engine
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        # No pre-ping: it cost a round trip and ~0.35 ms of CPU on every checkout. Connections
        # are recycled after half an hour instead, and one that died under us (a database
        # restart) is invalidated by SQLAlchemy's disconnect detection: that unit of work fails
        # once (the runner, relay and scheduler loops retry; an API request answers an error)
        # and the pool opens a new connection for the next.
        pool_recycle=1800,
        json_deserializer=json_codec.loads,
        connect_args={"server_settings": {"application_name": f"common-ops.{process_name}"}},
    )


def _sqlite_write_locking(engine: AsyncEngine) -> None:
    """WAL, and BEGIN IMMEDIATE so concurrent writers wait instead of failing to upgrade a lock.

    This is SQLAlchemy's documented recipe for serializable SQLite transactions; the driver's
    own deferred BEGIN would make two read-then-write transactions fail with SQLITE_BUSY.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        # Switching to WAL needs an exclusive lock that another connection may hold; migrations
        # leave the file in WAL already (it is persistent), so this is normally a no-op read.
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() != "wal":
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        # the analytics duration buckets (dialects.duration_bucket): SQLite may lack ln()
        dbapi_connection.create_function(
            "ops_duration_bucket", 1, analytics.bucket_of, deterministic=True
        )

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> SessionMaker:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def session_scope(sessionmaker: SessionMaker) -> AsyncIterator[AsyncSession]:
    """Commit when the block succeeds, roll back when it raises."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
