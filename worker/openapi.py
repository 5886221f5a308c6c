"""The worker's OpenAPI description, by FastAPI: loaded on the first request for /openapi.json
or its pages (worker.routes), so the worker starts without FastAPI.

The health routes are the API's own (service.web.health); the Dapr routes are described from
the endpoints worker.routes serves, with the app token as the header FastAPI documents.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Header, Request

from service import __version__
from service.web import health, problems
from worker import routes, subscriptions


def _app_token(request: Request, dapr_api_token: str | None = Header(None)) -> None:
    subscriptions.require_app_token(request)


def description(title: str) -> FastAPI:
    """An app that serves the description and its pages of the worker's routes (only those)."""
    app = FastAPI(title=title, version=__version__)
    dapr = APIRouter(tags=["dapr"], dependencies=[Depends(_app_token)])
    for method, path, endpoint in routes.DAPR:
        dapr.add_api_route(path, endpoint, methods=[method])
    app.include_router(health.router)
    app.include_router(dapr)
    problems.describe_problems(app)
    return app
