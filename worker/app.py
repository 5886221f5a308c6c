"""create_worker_app(settings): the worker process, with its health endpoints."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from service import __version__
from service.config import Settings
from service.logging import configure_logging
from service.telemetry import tracing
from service.web import health, metrics, problems
from service.web.lifespan import run_resources
from service.web.observe import ObservedApp
from worker import bindings, subscriptions
from worker.service import WorkerCompanion


def create_worker_app(settings: Settings) -> FastAPI:
    configure_logging(settings)
    tracing.configure_tracing(settings, "worker")

    companion = WorkerCompanion()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with run_resources(app, settings, "worker", [companion], serves_api=False):
            yield

    app = FastAPI(title="Common-Operations worker", version=__version__, lifespan=lifespan)
    app.add_middleware(ObservedApp, name="worker")
    problems.add_exception_handlers(app)
    app.state.worker = companion
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(subscriptions.router)
    app.include_router(bindings.router)
    problems.describe_problems(app)
    return app
