"""create_app(settings): the API application; its lifespan owns every shared resource."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import FastAPI

from service import __version__
from service.api import examples, fields
from service.api.fast_create import FastCreate
from service.api.routes import (
    analytics,
    asyncapi,
    bulk,
    dead_letters,
    files,
    notifications,
    queues,
    schedules,
    settings_events,
    stored_settings,
    streams,
    task_history,
    task_types,
    tasks,
    templates,
)
from service.bootstrap import Resources
from service.config import Settings
from service.events.base import Publisher
from service.events.changefeed import ChangeFeed
from service.logging import configure_logging
from service.rpc.server import GrpcServer
from service.telemetry import tracing
from service.ui import insights, pages, plans
from service.web import docs, health, methods, metrics, problems
from service.web.lifespan import Companion, run_resources
from service.web.observe import InFlight, ObservedApp

API_PREFIX = "/api/v1/operations"
SETTINGS_PREFIX = "/api/v1"


def create_app(
    settings: Settings,
    *,
    companions: Sequence[Companion] = (),
    publisher: Publisher | None = None,
) -> FastAPI:
    """The API app; `companions` (e.g. the worker) share its process and resources; `publisher`:
    a bus shared with other apps of this process (else the settings choose one). With
    OPS_GRPC_PORT (not 0) the gRPC server is a companion, first, so it stops first."""
    configure_logging(settings)
    tracing.configure_tracing(settings, "api")
    if settings.grpc_port:
        companions = [GrpcServer(settings), *companions]

    in_flight = InFlight()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with run_resources(
            app, settings, "api", companions, serves_api=True, publisher=publisher
        ) as resources:
            feed = _change_feed(resources, in_flight)
            app.state.change_feed = feed
            await feed.start()
            try:
                yield
            finally:
                await feed.stop()

    app = FastAPI(
        title="Common-Operations",
        version=__version__,
        description="Long-running work for the e-commerce platform: tasks you can watch.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.input_limits = fields.InputLimits.from_settings(settings)
    app.state.in_flight = in_flight
    # innermost first: plain creates are answered inside the observation (metrics, access log)
    app.add_middleware(FastCreate, api=app, path=f"{API_PREFIX}/tasks")
    app.add_middleware(ObservedApp, name="api", in_flight=in_flight)
    problems.add_exception_handlers(app)
    problems.add_request_validation(app)
    _include_routers(app, _body_ceiling(settings))
    docs.add_docs(app)
    pages.install(app, settings)
    # the schedules and templates pages; the navigation's unread count as on every page
    app.include_router(plans.router, dependencies=pages.PAGE_DEPENDENCIES)
    insights.install(app)
    _describe(app, settings)
    return app


def app_from_environment() -> FastAPI:
    """The API app from the environment's settings: the factory each process of
    `common-ops api --workers N` calls."""
    return create_app(Settings())


def _change_feed(resources: Resources, in_flight: InFlight) -> ChangeFeed:
    """The process's one reader of changes for its live streams: woken by its own commits, and
    on PostgreSQL by every process's (LISTEN on its own connection). It hands the streams what
    it read between the process's requests."""
    settings = resources.settings
    feed = ChangeFeed(
        resources.sessionmaker,
        max_clients=settings.stream_max_clients,
        poll_seconds=settings.stream_poll_seconds,
        coalesce_seconds=settings.stream_batch_seconds,
        listen_url=None if settings.is_sqlite else resources.engine.url,
        requests_first=in_flight.busy,
    )
    resources.change_listeners.append(feed.wake)
    return feed


def _body_ceiling(settings: Settings) -> int:
    """The framework's body limit, a ceiling no client should reach: twice the largest upload.

    It bounds the routes that read a body other than through json_body.JSONRequest: an upload's
    bytes, a bulk import's form, Dapr's deliveries. Below it, each route refuses a body itself,
    with a problem: JSON bodies past OPS_MAX_BODY_BYTES (json_body.JSONRequest), uploads past
    OPS_FILES_MAX_BYTES (413 file-too-large, found as the chunk that crosses it arrives).
    Starlette answers a body over its limit with a text/plain 413 that replaces whatever the
    route answered, so its limit must lie well beyond theirs, where it only stops what no client
    sends. It is set on those routers, not on the app: on the app it wraps every request in four
    more layers (a tenth of a create's CPU), to bound bodies that JSONRequest bounds already.
    """
    return 2 * (settings.files_max_bytes + bulk.FORM_OVERHEAD)


def _include_routers(app: FastAPI, body_ceiling: int) -> None:
    app.include_router(health.router)
    app.add_api_route("/metrics", metrics.scrape, include_in_schema=False)
    app.include_router(asyncapi.router)
    app.include_router(streams.router, prefix=API_PREFIX)  # before /tasks/{task_id}
    app.include_router(tasks.router, prefix=API_PREFIX)
    app.include_router(templates.tasks_router, prefix=API_PREFIX)
    app.include_router(templates.router, prefix=API_PREFIX)
    app.include_router(task_types.router, prefix=API_PREFIX)
    app.include_router(task_history.router, prefix=API_PREFIX)
    app.include_router(dead_letters.router, prefix=API_PREFIX)
    app.include_router(analytics.router, prefix=API_PREFIX)
    app.include_router(bulk.router, prefix=API_PREFIX, max_body_size=body_ceiling)
    app.include_router(files.router, prefix=API_PREFIX, max_body_size=body_ceiling)
    app.include_router(schedules.router, prefix=API_PREFIX)
    app.include_router(notifications.router, prefix=API_PREFIX)
    app.include_router(stored_settings.router(), prefix=SETTINGS_PREFIX)
    app.include_router(settings_events.router, max_body_size=body_ceiling)
    app.include_router(queues.router, prefix=API_PREFIX)
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
            examples.add_examples(document)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
