"""create_app(settings): the API application; its lifespan owns every shared resource."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from fastapi import FastAPI

from service import __version__
from service.api import fields, methods, problems
from service.api.routes import (
    bulk,
    dead_letters,
    files,
    health,
    task_history,
    task_types,
    tasks,
)
from service.bootstrap import Resources, build_resources
from service.config import Settings
from service.db import migrate
from service.logging import configure_logging

API_PREFIX = "/api/v1/operations"


class Companion(Protocol):
    """Something that runs beside an app in its process (the worker in the embedded mode)."""

    name: str

    async def start(self, resources: Resources, *, shares_bus_with_api: bool) -> None: ...
    async def stop(self) -> None: ...
    def health(self) -> dict[str, Any]: ...


@contextlib.asynccontextmanager
async def run_resources(
    app: FastAPI,
    settings: Settings,
    process_name: str,
    companions: Sequence[Companion],
    *,
    serves_api: bool,
) -> AsyncIterator[Resources]:
    """Migrate (embedded), build resources, start the relay and companions; undo it all at exit."""
    if settings.migrate_on_start:
        await asyncio.to_thread(migrate.upgrade, settings.database_url)
    resources = build_resources(settings, process_name)
    app.state.resources = resources
    app.state.health_probes = {c.name: c.health for c in companions}
    relay = asyncio.create_task(resources.relay.run())
    resources.relay.kick()  # publish what an earlier run left behind
    for companion in companions:
        await companion.start(resources, shares_bus_with_api=serves_api)
    _freeze_startup_heap()
    try:
        yield resources
    finally:
        gc.unfreeze()
        for companion in companions:
            await companion.stop()
        await resources.relay.stop(relay)
        await resources.close()


def _freeze_startup_heap() -> None:
    """Take the objects alive after start-up out of the cyclic collector's full passes.

    A bulk run allocates millions of short-lived containers; the ones that outlive a young
    collection (a batch in flight) count towards the next full collection, which then walks
    the whole heap (the ~160,000 objects of the modules, app and pools) every ~40,000 promoted
    objects: 10 % of an import's CPU (bench/README.md, bulk round 2). `gc.freeze()` is
    CPython's own way of exempting a long-lived heap from that; collecting first keeps
    garbage out of it, and the exit unfreezes, so a process that builds several apps (tests)
    keeps nothing for good.
    """
    gc.collect()
    gc.freeze()


def create_app(settings: Settings, *, companions: Sequence[Companion] = ()) -> FastAPI:
    """The API app; `companions` (e.g. the worker) share its process and resources."""
    configure_logging(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with run_resources(app, settings, "api", companions, serves_api=True):
            yield

    app = FastAPI(
        title="Common-Operations",
        version=__version__,
        description="Long-running work for the e-commerce platform: tasks you can watch.",
        lifespan=lifespan,
        max_body_size=_body_ceiling(settings),
    )
    app.state.input_limits = fields.InputLimits.from_settings(settings)
    problems.add_exception_handlers(app)
    _include_routers(app)
    _describe(app, settings)
    return app


def _body_ceiling(settings: Settings) -> int:
    """The framework's body limit, a ceiling no client should reach: twice the largest upload.

    Below it, each route refuses a body itself, with a problem: JSON bodies past
    OPS_MAX_BODY_BYTES (json_body.JSONRequest), uploads past OPS_FILES_MAX_BYTES (413
    file-too-large, found as the chunk that crosses it arrives). Starlette answers a body over its
    limit with a text/plain 413 that replaces whatever the route answered, so its limit must lie
    well beyond theirs, where it only stops what no client sends.
    """
    return 2 * (settings.files_max_bytes + bulk.FORM_OVERHEAD)


def _include_routers(app: FastAPI) -> None:
    app.include_router(health.router)
    app.include_router(tasks.router, prefix=API_PREFIX)
    app.include_router(task_types.router, prefix=API_PREFIX)
    app.include_router(task_history.router, prefix=API_PREFIX)
    app.include_router(dead_letters.router, prefix=API_PREFIX)
    app.include_router(bulk.router, prefix=API_PREFIX)
    app.include_router(files.router, prefix=API_PREFIX)
    app.include_router(methods.router)  # last: OPTIONS for every path


def _describe(app: FastAPI, settings: Settings) -> None:
    """Add the Problem schema, which the error answers of every operation refer to, and the
    file size limit to the OpenAPI description (FastAPI's documented way to extend it: replace
    app.openapi)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)
            problems.add_schemas(document)
            fields.document_file_limit(document, settings.files_max_bytes)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
