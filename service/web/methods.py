"""OPTIONS for every path of the API, and 405 for methods a parametrised route would take
by mistake; the methods a path takes come from service.web.allow."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import Scope

from service.domain.errors import NotFound
from service.web.allow import allowed


class OptionsRoute(APIRoute):
    """A route that only ever matches OPTIONS: for any other method its catch-all path must not
    count as a partial match, which Starlette would answer with 405 instead of 404."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get("method") != "OPTIONS":
            return Match.NONE, {}
        return super().matches(scope)


router = APIRouter(include_in_schema=False, route_class=OptionsRoute)


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
