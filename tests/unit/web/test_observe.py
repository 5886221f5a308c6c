"""Route labels are templates whatever the path: bounded, prefix included, mounts collapsed."""

from __future__ import annotations

from typing import Any

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from service.web.observe import route_of


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
