"""Which methods a path takes: the Allow header of a 405 answer and the answer to OPTIONS.

Starlette answers a method a path does not take with the methods of the first route that
matched the path only (POST for /tasks, which also lists with GET). The app's routes are asked
here, one method at a time, so Allow names every method of the path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from fastapi import APIRouter, Request, Response, status
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from service.domain.errors import NotFound

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class OptionsRoute(APIRoute):
    """A route that only ever matches OPTIONS: for any other method its catch-all path must not
    count as a partial match, which Starlette would answer with 405 instead of 404."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get("method") != "OPTIONS":
            return Match.NONE, {}
        return super().matches(scope)


router = APIRouter(include_in_schema=False, route_class=OptionsRoute)


def allowed(request: Request) -> list[str]:
    """The methods some route of the app takes at this request's path, OPTIONS included when
    the app answers it (the API does, through `router`); none when no route has the path."""
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


@router.options("/{path:path}", status_code=status.HTTP_204_NO_CONTENT)
async def options(request: Request) -> Response:
    """Every path answers OPTIONS with its methods in Allow (RFC 9110 §9.3.7)."""
    methods = allowed(request)
    if not methods:
        raise NotFound(f"no resource at {request.url.path}")
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers={"Allow": ", ".join(methods)})


def refuse(target: APIRouter, path: str, methods: list[str]) -> None:
    """Answer `methods` at `path` with 405 (and the path's real methods in Allow) where a route
    with a path parameter would otherwise take them: DELETE /tasks/stream is not a delete of a
    task whose id is "stream" (a 422), it is a method /tasks/stream does not take."""

    async def refused() -> None:
        raise HTTPException(status.HTTP_405_METHOD_NOT_ALLOWED)

    refused.refuses = True  # type: ignore[attr-defined]
    target.add_api_route(path, refused, methods=methods, include_in_schema=False)
