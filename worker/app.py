"""create_worker_app(settings): the worker process, with its health endpoints."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware

from service.config import Settings
from service.logging import configure_logging
from service.telemetry import tracing
from service.web import problems
from service.web.lifespan import run_resources
from service.web.observe import ObservedApp
from worker import routes
from worker.service import WorkerCompanion

TITLE = "Common-Operations worker"


def create_worker_app(settings: Settings) -> Starlette:
    """Starlette's app, not FastAPI's: FastAPI's imports were ~0.1 s of the worker's start
    (worker.routes serves the same answers)."""
    configure_logging(settings)
    tracing.configure_tracing(settings, "worker")

    companion = WorkerCompanion()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with run_resources(app, settings, "worker", [companion], serves_api=False):
            yield

    app = Starlette(
        routes=routes.routes(TITLE),
        middleware=[Middleware(ObservedApp, name="worker")],
        lifespan=lifespan,
    )
    problems.add_exception_handlers(app)
    app.state.worker = companion
    return app
