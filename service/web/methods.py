"""Which methods a path takes: the Allow header of a 405 answer and the answer to OPTIONS.

Starlette answers a method a path does not take with the methods of the first route that
matched the path only (POST for /tasks, which also lists with GET). The app's routes are asked
here, one method at a time, so Allow names every method of the path.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.routing import APIRoute
from starlette.routing import Match
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
        return any(route.matches(scope)[0] == Match.FULL for route in routes)

    found = [method for method in _METHODS if taken(method)]
    return [*found, "OPTIONS"] if found and taken("OPTIONS") else found


@router.options("/{path:path}", status_code=status.HTTP_204_NO_CONTENT)
async def options(request: Request) -> Response:
    """Every path answers OPTIONS with its methods in Allow (RFC 9110 §9.3.7)."""
    methods = allowed(request)
    if not methods:
        raise NotFound(f"no resource at {request.url.path}")
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers={"Allow": ", ".join(methods)})
