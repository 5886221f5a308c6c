"""Route labels are templates whatever the path: bounded, prefix included, mounts collapsed.
Requests being answered are counted, a live stream once it streams excepted."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from service.web.observe import InFlight, ObservedApp, route_of, streaming


async def endpoint(request: Any) -> None: ...


def test_a_route_included_under_a_prefix_is_labelled_with_its_full_template() -> None:
    route = Route("/tasks/{task_id}", endpoint)
    scope = {"route": route, "path": "/api/v1/operations/tasks/3f8a1c52"}
    assert route_of(scope) == "/api/v1/operations/tasks/{task_id}"


def test_a_route_at_the_root_keeps_its_template() -> None:
    assert route_of({"route": Route("/health", endpoint), "path": "/health"}) == "/health"


def test_a_mount_collapses_every_file_under_it() -> None:
    mount = Mount("/docs/assets", app=StaticFiles(directory="."))
    scope = {"route": mount, "path": "/docs/assets/swagger-ui.css"}
    assert route_of(scope) == "/docs/assets/{path}"


def test_a_path_no_route_matched_is_unmatched() -> None:
    assert route_of({"path": "/no/such/thing/42"}) == "unmatched"


async def test_requests_being_answered_are_counted_and_a_stream_stops_counting() -> None:
    """The change feed hands its streams their events between requests: it must see a create
    being answered, and not an hour-long stream."""
    in_flight = InFlight()

    async def answer(request: Request) -> JSONResponse:
        return JSONResponse({"during": in_flight.count, "busy": in_flight.busy()})

    async def stream(request: Request) -> JSONResponse:
        streaming(request.scope)
        streaming(request.scope)  # given back once, however often it is said
        return JSONResponse({"during": in_flight.count})

    async def fail(request: Request) -> JSONResponse:
        raise RuntimeError("a failed request is over too")

    app = Starlette(
        routes=[Route("/answer", answer), Route("/stream", stream), Route("/fail", fail)]
    )
    observed = ObservedApp(app, name="test", in_flight=in_flight)
    transport = httpx.ASGITransport(app=observed, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/answer")).json() == {"during": 1, "busy": True}
        assert (await client.get("/stream")).json() == {"during": 0}
        assert (await client.get("/fail")).status_code == 500
    assert in_flight.count == 0
    assert not in_flight.busy()
