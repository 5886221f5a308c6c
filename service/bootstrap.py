"""Composition root: the one place that picks adapters from the settings."""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from service.catalog.builtin import BUILTIN
from service.catalog.catalog import Catalog, Limits, Override
from service.config import Settings
from service.db.engine import SessionMaker, create_engine, create_sessionmaker
from service.db.unit_of_work import Facts, UnitOfWork, unit_of_work
from service.domain.backoff import RetryPolicy
from service.events.base import Publisher
from service.events.inprocess import InProcessPublisher
from service.events.relay import OutboxRelay
from service.storage.base import FileStore
from service.storage.local import LocalFileStore
from service.storage.signing import UrlSigner
from service.usecases.group_commit import GroupCommit


@dataclass
class Resources:
    """Everything a process shares: built once at start, closed at shutdown."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: SessionMaker
    publisher: Publisher
    relay: OutboxRelay
    retry_policy: RetryPolicy
    store: FileStore
    catalog: Catalog
    rng: random.Random = field(default_factory=random.Random)
    #: Embedded mode (API and worker in one process): the worker's doorbell, rung with the ids
    #: of just-committed new pending tasks before the relay publishes their `created` events.
    local_doorbell: Callable[[list[UUID]], None] | None = None
    #: called after each commit that wrote outbox rows or log lines (the API's live streams)
    change_listeners: list[Callable[[], None]] = field(default_factory=list)
    #: creates that arrive together share one transaction (see usecases/group_commit.py)
    creates: GroupCommit = field(init=False)

    def __post_init__(self) -> None:
        self.creates = GroupCommit(self.unit)

    def unit(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A transaction for use cases: committed when the block succeeds, then the workers of
        this process and the relay hear of what it did (see after_commit)."""
        return unit_of_work(self.sessionmaker, self.after_commit)

    def after_commit(self, facts: Facts) -> None:
        """Act on a committed transaction's facts: ring the workers of this process for tasks
        it made ready (before the relay publishes their events), then wake the relay."""
        if facts.ready and self.local_doorbell is not None:
            self.local_doorbell(facts.ready)
        if facts.outbox:
            self.relay.accept(facts.outbox)
        if facts.outbox or facts.logged:
            for listener in self.change_listeners:
                listener()

    @property
    def bus(self) -> InProcessPublisher | None:
        """The in-process bus, when that is the publisher (embedded mode)."""
        return self.publisher if isinstance(self.publisher, InProcessPublisher) else None

    async def close(self) -> None:
        await self.creates.close()
        await self.publisher.close()
        await self.engine.dispose()


def build_publisher(settings: Settings) -> Publisher:
    if settings.publisher == "dapr":
        from service.events.dapr import DaprPublisher  # only Dapr mode pays for the SDK import

        return DaprPublisher(settings)
    return InProcessPublisher()


def build_store(settings: Settings) -> FileStore:
    if settings.storage == "s3":
        from service.storage import s3  # only S3 mode pays for the boto3 import

        return s3.S3FileStore(settings.s3_bucket, s3.build_client(settings))
    signer = UrlSigner(settings.signing_secret, base_url=settings.files_public_url.rstrip("/"))
    return LocalFileStore(settings.files_root, signer)


def build_catalog(settings: Settings) -> Catalog:
    """The built-in task types with the operator's limits (OPS_TASK_TYPES) applied."""
    limits = Limits(
        execution_timeout=settings.task_timeout_seconds,
        heartbeat_timeout=settings.lease_seconds,
        max_retries=settings.default_max_retries,
    )
    overrides = {
        name: Override(t.execution_timeout_seconds, t.heartbeat_timeout_seconds, t.max_retries)
        for name, t in settings.task_types.items()
    }
    return Catalog(BUILTIN, limits, overrides)


def build_resources(settings: Settings, process_name: str) -> Resources:
    engine = create_engine(settings, process_name)
    sessionmaker = create_sessionmaker(engine)
    publisher = build_publisher(settings)
    return Resources(
        settings=settings,
        engine=engine,
        sessionmaker=sessionmaker,
        publisher=publisher,
        relay=OutboxRelay(sessionmaker, publisher),
        retry_policy=RetryPolicy(base=settings.retry_base_seconds, cap=settings.retry_cap_seconds),
        store=build_store(settings),
        catalog=build_catalog(settings),
    )
