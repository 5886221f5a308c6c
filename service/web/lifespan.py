"""The lifespan both apps share: resources, the outbox relay and companions, started and
stopped in order."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette

from service.bootstrap import Resources, build_resources
from service.clock import utcnow
from service.config import Settings
from service.db import availability
from service.events.base import Publisher

logger = logging.getLogger(__name__)


class Companion(Protocol):
    """Something that runs beside an app in its process (the worker in the embedded mode)."""

    name: str

    async def start(self, resources: Resources, *, shares_bus_with_api: bool) -> None: ...
    async def stop(self) -> None: ...
    def health(self) -> dict[str, Any]: ...


@contextlib.asynccontextmanager
async def run_resources(
    app: Starlette,
    settings: Settings,
    process_name: str,
    companions: Sequence[Companion],
    *,
    serves_api: bool,
    publisher: Publisher | None = None,
) -> AsyncIterator[Resources]:
    """Migrate (embedded), build resources, start the relay and companions; undo it all at exit."""
    if settings.migrate_on_start:
        from service.db import migrate  # alembic: imported only by a process that migrates

        await asyncio.to_thread(migrate.upgrade, settings.database_url)
    resources = build_resources(settings, process_name, publisher=publisher)
    app.state.resources = resources
    app.state.health_probes = {c.name: c.health for c in companions}
    #: companions that set gauges of their own state before a scrape (service/web/metrics.py)
    observers = (getattr(c, "observe", None) for c in companions)
    app.state.metrics_refreshers = [observe for observe in observers if callable(observe)]
    installer = None
    if serves_api and not await _install_templates(resources):
        installer = asyncio.create_task(_install_templates_later(resources))
    relay = asyncio.create_task(resources.relay.run())
    resources.relay.kick()  # publish what an earlier run left behind
    started: list[Companion] = []
    try:
        for companion in companions:  # one that fails to start stops those started before it
            await companion.start(resources, shares_bus_with_api=serves_api)
            started.append(companion)
        _freeze_startup_heap()
        try:
            yield resources
        finally:
            gc.unfreeze()
    finally:
        for companion in started:
            await companion.stop()
        if installer is not None:
            installer.cancel()
            await asyncio.gather(installer, return_exceptions=True)
        await resources.relay.stop(relay)
        await resources.close()


async def _install_templates(resources: Resources) -> bool:
    """Add the shipped templates that are missing (service/catalog/templates.py); False when
    the database cannot be reached now. A schema that cannot take them (not migrated yet) is
    left to the next start."""
    from service.usecases import templates as template_usecases  # the API's only, not the worker's

    try:
        async with resources.unit() as uow:
            await template_usecases.install_shipped(uow, resources.catalog, now=utcnow())
    except availability.CANDIDATES as error:
        if availability.is_unavailable(error):
            logger.warning(
                "shipped templates wait for the database",
                extra={"action": "templates.install_waiting"},
            )
            return False
        if not isinstance(error, DBAPIError):
            raise
        logger.warning(
            "shipped templates not installed", extra={"action": "templates.install_skipped"}
        )
    return True


async def _install_templates_later(resources: Resources, *, every_seconds: float = 5.0) -> None:
    """Try again until the database is back: an API whose database is away at its start
    answers 503 with Retry-After meanwhile instead of not starting."""
    while True:
        await asyncio.sleep(every_seconds)
        if await _install_templates(resources):
            return


def _freeze_startup_heap() -> None:
    """Take the objects alive after start-up out of the cyclic collector's full passes.

    A bulk run allocates millions of short-lived containers; the ones that outlive a young
    collection (a batch in flight) count towards the next full collection, which then walks
    the whole heap (the ~270,000 objects of the modules, app and pools) every ~40,000 promoted
    objects: 10 % of an import's CPU (bench/README.md, bulk round 2). `gc.freeze()` is
    CPython's own way of exempting a long-lived heap from that; the exit unfreezes, so a
    process that builds several apps (tests) keeps nothing for good.

    No collection first: with the collector off during start-up (service.launch), a collection
    here walked all ~270,000 objects to find ~2,700 unreachable ones (0.2 s of every server's
    start, measured), where freezing them too keeps a few hundred kilobytes.
    """
    gc.freeze()
