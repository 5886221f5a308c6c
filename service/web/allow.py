"""The methods a path takes, asked of the app's routes: the Allow header of a 405 answer (and
of the API's answer to OPTIONS, service.web.methods).

Starlette answers a method a path does not take with the methods of the first route that
matched the path only (POST for /tasks, which also lists with GET). The app's routes are asked
here, one method at a time, so Allow names every method of the path. Without FastAPI, so the
worker's app (Starlette's own) answers alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed(request: Request) -> list[str]:
    """The methods some route of the app takes at this request's path, OPTIONS included when
    the app answers it (the API does, through service.web.methods); none when no route has
    the path."""
    routes = request.app.router.routes

    def taken(method: str) -> bool:
        scope = {**request.scope, "method": method}
        for route in _leaves(routes):
            if getattr(getattr(route, "endpoint", None), "refuses", False):
                continue
            match, child = route.matches(scope)
            if match == Match.FULL and _fits(route, child):
                return True
        return False

    found = [method for method in _METHODS if taken(method)]
    return [*found, "OPTIONS"] if found and taken("OPTIONS") else found


def _leaves(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The app's routes, those of included routers one by one (FastAPI ≥ 0.160 keeps an included
    router as one route whose match does not say which of its routes matched)."""
    for route in routes:
        inner = getattr(route, "effective_candidates", None)
        if callable(inner):
            yield from _leaves(inner())
        else:
            yield route


def _fits(route: object, child: Scope) -> bool:
    """Whether the path's parameters are of the route's types: /tasks/stream is not a task id,
    so DELETE /tasks/{task_id} is not a method of /tasks/stream."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return True
    values = child.get("path_params", {})
    for field in dependant.path_params:
        _, errors = field.validate(values.get(field.alias), {}, loc=("path", field.alias))
        if errors:
            return False
    return True
