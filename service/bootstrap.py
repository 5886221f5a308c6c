"""Composition root: the one place that picks adapters from the settings."""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from service.catalog.builtin import BUILTIN
from service.catalog.catalog import Catalog, Limits, Override
from service.config import Settings
from service.db.engine import SessionMaker, create_engine, create_sessionmaker
from service.db.unit_of_work import (
    Facts,
    StatementUnit,
    UnitOfWork,
    statement_unit,
    unit_of_work,
)
from service.domain import settings as stored_settings
from service.domain.backoff import RetryPolicy
from service.events.base import OutgoingEvent, Publisher
from service.events.inprocess import InProcessPublisher
from service.events.relay import OutboxRelay
from service.storage.base import FileStore
from service.storage.local import LocalFileStore
from service.storage.signing import UrlSigner
from service.telemetry import metrics
from service.usecases.group_commit import GroupCommit
from service.usecases.settings_cache import SettingsCache

if TYPE_CHECKING:
    from service.domain.callers import Caller
    from service.tokens import TokenVerifier
    from service.usecases.schedules import Makers, TemplateResolver
    from service.usecases.tasks import NewTask


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
    #: stored settings this process read (dropped on `settings.changed`)
    settings_cache: SettingsCache
    #: the gateway's JWT check (OPS_JWT_ENABLED), else None: X-User-ID/X-User-Roles are trusted
    tokens: TokenVerifier | None = None
    rng: random.Random = field(default_factory=random.Random)
    #: Embedded mode (API and worker in one process): the worker's doorbell, rung with the ids
    #: of just-committed new pending tasks before the relay publishes their `created` events.
    local_doorbell: Callable[[list[UUID]], None] | None = None
    #: what a schedule's template names becomes a task through (build_resources: the templates
    #: use case; None: a schedule naming a templateId is refused)
    template_resolver: TemplateResolver | None = None
    #: called after each commit that wrote outbox rows or log lines (the API's live streams)
    change_listeners: list[Callable[[], None]] = field(default_factory=list)
    #: creates that arrive together share one transaction (see usecases/group_commit.py)
    creates: GroupCommit = field(init=False)

    def __post_init__(self) -> None:
        postgres = self.engine.dialect.name == "postgresql"
        self.creates = GroupCommit(
            self.unit,
            statement_units=self.statement_unit if postgres else None,
            settlements=self.relay if postgres else None,
        )
        self.relay.company = self.creates.next_commit
        if postgres:
            self.relay.writer_coming = self.creates.will_write
        if self.bus is not None:  # embedded: every app on this bus hears of every change
            self.bus.subscribe(stored_settings.CHANGED, self._settings_changed)

    def _settings_changed(self, event: OutgoingEvent) -> None:
        if event.subject:
            self.settings_cache.drop(event.subject)

    def unit(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A transaction for use cases: committed when the block succeeds, then the workers of
        this process and the relay hear of what it did (see after_commit)."""
        return unit_of_work(self.sessionmaker, self.after_commit)

    def statement_unit(self) -> AbstractAsyncContextManager[StatementUnit]:
        """PostgreSQL: a unit whose one statement commits itself (see unit_of_work); the same
        facts are heard after it as after a unit."""
        return statement_unit(self.engine, self.after_commit)

    def after_commit(self, facts: Facts) -> None:
        """Act on a committed transaction's facts: ring the workers of this process for tasks
        it made ready (before the relay publishes their events), then wake the relay."""
        metrics.count_task_events(facts.outbox)
        if facts.ready and self.local_doorbell is not None:
            self.local_doorbell(facts.ready)
        if facts.outbox:
            for row in facts.outbox:  # this process reads its own change at once
                if row.topic == stored_settings.CHANGED and row.subject:
                    self.settings_cache.drop(row.subject)
            self.relay.accept(facts.outbox)
        if facts.outbox or facts.logged:
            for listener in self.change_listeners:
                listener()

    @property
    def schedule_makers(self) -> Makers:
        """What schedules make their tasks with: the catalog and the template resolver."""
        from service.usecases.schedules import Makers  # with the first schedule, not at start

        return Makers(self.catalog, self.template_resolver)

    @property
    def bus(self) -> InProcessPublisher | None:
        """The in-process bus, when that is the publisher (embedded mode)."""
        return self.publisher if isinstance(self.publisher, InProcessPublisher) else None

    async def close(self) -> None:
        await self.creates.close()
        if self.tokens is not None:
            await self.tokens.keys.close()
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
        webhook_hosts=tuple(settings.webhook_allowed_hosts),
        webhook_private=settings.webhook_allow_private,
    )
    overrides = {
        name: Override(t.execution_timeout_seconds, t.heartbeat_timeout_seconds, t.max_retries)
        for name, t in settings.task_types.items()
    }
    return Catalog(BUILTIN, limits, overrides)


def _verifier(settings: Settings) -> TokenVerifier | None:
    """The bearer-token verifier when OPS_JWT_ENABLED. PyJWT and cryptography (~40 ms of
    start-up) are imported only then: the gateway's headers are the default."""
    if not settings.jwt_enabled:
        return None
    from service.tokens import build_verifier

    return build_verifier(settings)


async def _task_from_template(uow: UnitOfWork, caller: Caller, **options: Any) -> NewTask:
    """The templates use case's resolver (a TemplateResolver), imported on its first use: a
    worker resolves a template only for a schedule that names one, the API for such a create."""
    from service.usecases.templates import new_task_from_template

    return await new_task_from_template(uow, caller, **options)


def build_resources(
    settings: Settings, process_name: str, *, publisher: Publisher | None = None
) -> Resources:
    """The process's resources; `publisher`: one to share (apps of one process on one bus)."""
    engine = create_engine(settings, process_name)
    sessionmaker = create_sessionmaker(engine)
    publisher = publisher or build_publisher(settings)
    postgres = engine.dialect.name == "postgresql"  # its hot statements go to the driver
    return Resources(
        settings=settings,
        engine=engine,
        sessionmaker=sessionmaker,
        publisher=publisher,
        relay=OutboxRelay(sessionmaker, publisher, engine=engine if postgres else None),
        retry_policy=RetryPolicy(base=settings.retry_base_seconds, cap=settings.retry_cap_seconds),
        store=build_store(settings),
        catalog=build_catalog(settings),
        template_resolver=_task_from_template,
        settings_cache=SettingsCache(settings.settings_cache_seconds),
        tokens=_verifier(settings),
    )
