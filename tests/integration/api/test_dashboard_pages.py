"""The dashboard's pages over HTTP: every page and asset is served by the service and names
no external URL (it works without internet); identity as the JSON API's; the dev login is off
unless turned on, refused in production, and its cookie never authorises a cross-site change."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import ValidationError

from service.config import Settings
from service.ui.pages import PageRoute
from tests.fixtures.app import ADMIN, user
from tests.integration.api.support import assert_problem, create

STATIC = Path(__file__).resolve().parents[3] / "service" / "ui" / "static"
#: a URL to another host: scheme-qualified or protocol-relative
EXTERNAL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}|(?:src|href)\s*=\s*["']//""")
PAGES = ("/ui/tasks", "/ui/new", "/ui/import", "/ui/export", "/ui/queues")


#: the dashboard's routes that need no caller: the redirect to the tasks and the dev login
OPEN_PAGES = {"/ui", "/ui/login"}


def _assets(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)="(/ui/static/[^"]+)""", html)


async def test_no_page_or_asset_names_an_external_url(api: httpx.AsyncClient) -> None:
    task = await create(api, params={"seconds": 1}, tags=["t"])
    seen_assets: set[str] = set()
    for path in (*PAGES, f"/ui/tasks/{task['id']}", "/ui/tasks?search=x&status=pending"):
        page = await api.get(path, headers=ADMIN)
        assert page.status_code == 200, (path, page.text)
        assert page.headers["content-type"].startswith("text/html")
        assert not EXTERNAL.search(page.text), (path, EXTERNAL.search(page.text))
        seen_assets.update(_assets(page.text))
    assert seen_assets == {"/ui/static/ui.css", "/ui/static/ui.js"}
    for name in sorted(p.name for p in STATIC.iterdir()):
        asset = await api.get(f"/ui/static/{name}")
        assert asset.status_code == 200
        assert not EXTERNAL.search(asset.text), (name, EXTERNAL.search(asset.text))


async def test_pages_show_only_the_callers_tasks(api: httpx.AsyncClient) -> None:
    mine = await create(api)
    theirs = await create(api, headers=user("bob"))
    page = (await api.get("/ui/tasks", headers=user())).text
    assert mine["id"] in page
    assert theirs["id"] not in page
    assert theirs["id"] in (await api.get("/ui/tasks", headers=ADMIN)).text
    other = await api.get(f"/ui/tasks/{theirs['id']}", headers=user())
    assert other.status_code == 404
    assert (await api.get("/ui/queues", headers=user())).status_code == 403
    assert 'href="/ui/queues"' not in page  # the navigation offers admins' pages to admins


async def test_without_identity_the_page_says_so(api: httpx.AsyncClient) -> None:
    answer = await api.get("/ui/tasks")
    assert answer.status_code == 401
    assert "X-User-ID" in answer.text
    assert (await api.get("/ui/login", params={"user": "mallory"})).status_code == 404
    # the cookie is nothing without OPS_UI_DEV_LOGIN
    cookie = {"Cookie": "ops_dev_user=alice"}
    assert (await api.get("/ui/tasks", headers=cookie)).status_code == 401


def _page_routes(api: httpx.AsyncClient) -> list[APIRoute]:
    """Every GET route of the dashboard as the app serves it, included routers' routes one by
    one (FastAPI keeps an included router as one route); the static files are a mount."""
    app = api.app  # type: ignore[attr-defined]
    found = [
        context.original_route
        for context in iter_route_contexts(app.routes)
        if (context.path or "").startswith("/ui") and "GET" in (context.methods or ())
    ]
    assert len(found) >= 17, [getattr(r, "path", None) for r in found]
    assert all(isinstance(r, APIRoute) for r in found)
    return [r for r in found if isinstance(r, APIRoute)]


def _filled(route: APIRoute) -> str:
    """The route's path with each path parameter a fresh id (a UUID is a valid template id)."""
    return route.path_format.format(**{p.name: uuid.uuid4() for p in route.dependant.path_params})


def _is_page(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status, (answer.request.url, answer.status_code, answer.text)
    assert answer.headers["content-type"].startswith("text/html"), answer.request.url


async def test_every_page_answers_its_problems_as_pages(api: httpx.AsyncClient) -> None:
    """The whole class, not one route: every dashboard route is a PageRoute; without identity
    each is the 401 page, an unknown id the 404 page, a page the caller may not see the 403
    page, each naming the caller in its navigation, never JSON or a 500."""
    routes = _page_routes(api)
    assert all(isinstance(r, PageRoute) for r in routes), [
        r.path for r in routes if not isinstance(r, PageRoute)
    ]
    for route in routes:
        if route.path in OPEN_PAGES:
            continue
        path = _filled(route)
        anonymous = await api.get(path)
        _is_page(anonymous, 401)
        assert "Who are you?" in anonymous.text
        assert 'id="who"' not in anonymous.text
        as_alice = await api.get(path, headers=user())
        if route.dependant.path_params:
            _is_page(as_alice, 404)
            assert "not found" in as_alice.text
        elif as_alice.status_code == 403:  # the admins' pages
            _is_page(as_alice, 403)
            _is_page(await api.get(path, headers=ADMIN), 200)
        else:
            _is_page(as_alice, 200)
        assert '<strong id="who">alice</strong>' in as_alice.text, path
        assert '<span id="nav-unread">0</span>' in as_alice.text, path


async def test_a_bad_filter_is_shown_not_a_500(api: httpx.AsyncClient) -> None:
    answer = await api.get("/ui/tasks", params={"from": "2026-13-45"}, headers=user())
    assert answer.status_code == 200
    assert "The filter is not valid" in answer.text


def test_production_refuses_the_dev_login() -> None:
    with pytest.raises(ValidationError, match="OPS_UI_DEV_LOGIN"):
        Settings(
            environment="production",
            ui_dev_login=True,
            service_token="x" * 32,
            files_signing_key="k" * 32,
        )


class TestDevLogin:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"ui_dev_login": True}

    async def test_the_cookie_names_the_caller_and_needs_the_ui_header_to_change(
        self, api: httpx.AsyncClient
    ) -> None:
        login = await api.get("/ui/login", params={"user": "élodie", "roles": "admin"})
        assert login.status_code == 303
        api.cookies.clear()  # sent by hand below, as a browser would, or not at all
        cookie = "; ".join(f"{k}={v}" for k, v in login.cookies.items())
        page = await api.get("/ui/tasks", headers={"Cookie": cookie})
        assert page.status_code == 200
        assert "élodie" in page.text
        body = {"taskType": "noop"}
        # a cross-site form could send the cookie, not the header: no identity, nothing made
        forged = await api.post("/api/v1/operations/tasks", json=body, headers={"Cookie": cookie})
        assert_problem(forged, 401)
        made = await api.post(
            "/api/v1/operations/tasks", json=body, headers={"Cookie": cookie, "X-Ops-UI": "1"}
        )
        assert made.status_code == 201, made.text
        assert made.json()["requestedBy"] == "élodie"
        # the gateway's header wins over the cookie
        listed = await api.get(
            "/api/v1/operations/tasks", headers={"Cookie": cookie, **user("bob")}
        )
        assert listed.json()["total"] == 0
