"""The worker's HTTP routes, served by Starlette without FastAPI (~0.1 s of the worker's start).

Health, metrics, the Dapr pub/sub routes and the cron bindings answer as they did when the
worker's app was FastAPI's: the same paths and methods (GET without Starlette's implied HEAD),
bodies serialised by pydantic as FastAPI serialises response models, the app-token check before
each Dapr route. The health answers and the caller's rules are the API's own
(service.web.probes, service.web.callers); the OpenAPI description and its pages are FastAPI's,
built on the first request for one (worker.openapi).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from service.web import callers, metrics, probes
from worker import bindings, subscriptions

Endpoint = Callable[[Request], Awaitable[Response]]
#: A Dapr route's endpoint: keyword path parameters and the request, a JSON value back.
DaprEndpoint = Callable[..., Awaitable[Any]]

#: What the Dapr sidecar calls: subscriptions (GET /dapr/subscribe), deliveries, cron ticks.
DAPR: list[tuple[str, str, DaprEndpoint]] = [
    ("GET", "/dapr/subscribe", subscriptions.dapr_subscribe),
    ("POST", "/events/routed/{task_type}", subscriptions.routed),
    ("POST", "/events/routed/{task_type}/{entity_type}", subscriptions.routed_entity),
    ("POST", "/events/unrouted", subscriptions.unrouted),
    ("POST", "/events/retried", subscriptions.retried),
    ("POST", "/events/deadletter", subscriptions.dead_letter),
    ("POST", "/jobs/{job}", bindings.cron_tick),
]
#: The description and its pages, as FastAPI serves them.
DOCS = ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")


def _json(value: Any, status_code: int = 200) -> Response:
    """A JSON answer, serialised as FastAPI serialises a response model (pydantic, by alias)."""
    return Response(to_json(value, by_alias=True), status_code, media_type="application/json")


async def _health(request: Request) -> Response:
    return _json(probes.health())


async def _live(request: Request) -> Response:
    return _json(probes.live())


async def _ready(request: Request) -> Response:
    answer, up = await probes.ready(request.app.state.resources)
    return _json(answer, 200 if up else 503)


async def _detailed(request: Request) -> Response:
    state = request.app.state
    caller = await callers.caller_from_headers(state.resources, request.headers)
    answer, up = await probes.detailed(state.resources, caller, getattr(state, "health_probes", {}))
    return _json(answer, 200 if up else 503)


def _dapr(endpoint: DaprEndpoint) -> Endpoint:
    async def answer(request: Request) -> Response:
        subscriptions.require_app_token(request)
        return _json(await endpoint(request=request, **request.path_params))

    return answer


class _Description:
    """The OpenAPI description and its pages: FastAPI's, built on the first request for one."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            from worker import openapi  # FastAPI: loaded by whoever reads the docs, not at start

            self._app = openapi.description(self.title)
        await self._app(scope, receive, send)


def _route(path: str, endpoint: Endpoint | ASGIApp, method: str, name: str) -> Route:
    route = Route(path, endpoint, methods=[method], name=name)
    route.methods = {method}  # as FastAPI's routes: a GET route takes no HEAD
    return route


def routes(title: str) -> list[BaseRoute]:
    """Every route of the worker's app, in FastAPI's order."""
    description = _Description(title)
    docs = [Route(path, description, methods=["GET"]) for path in DOCS]  # GET and HEAD
    return [
        *docs,
        _route("/health", _health, "GET", "health"),
        _route("/api/v1/operations/health", _health, "GET", "health"),
        _route("/health/live", _live, "GET", "live"),
        _route("/health/ready", _ready, "GET", "ready"),
        _route("/health/detailed", _detailed, "GET", "detailed"),
        _route("/metrics", metrics.scrape, "GET", "scrape"),
        *(_route(path, _dapr(fn), method, fn.__name__) for method, path, fn in DAPR),
    ]
