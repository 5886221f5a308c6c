"""The dashboard's pages. Each route reads through one use case and renders a template; every
change a page makes is a call of its script to the JSON API (the same routes and use cases as
any client, recorded with the caller as actor).

Every page router uses PageRoute and its routes take the caller as PageCaller: a request with no
usable identity gets the 401 page and a use case's problem its own status as a page, in one
place instead of in each route.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from service.api.deps import ResourcesDep, UnitDep
from service.api.routes.tasks import FilterFields, filters_of
from service.clock import utcnow
from service.config import Settings
from service.db.repositories.tasks import TaskFilters
from service.domain.callers import ADMIN_ROLE, Caller
from service.domain.errors import OperationsError, Unavailable
from service.domain.tasks import Queue, TaskStatus
from service.ui import devlogin
from service.usecases import dashboard, notifications, queries, queues as queue_usecases
from service.web import problems
from service.web.deps import get_caller, get_resources

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

PAGE_SIZE = 50
FINAL = ("completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class NavItem:
    key: str
    label: str
    href: str
    admin: bool = False


#: The dashboard's sections, in the order the navigation shows them. Templates, schedules,
#: analytics and the inbox add one line each here when their pages arrive.
NAV: tuple[NavItem, ...] = (
    NavItem("tasks", "Tasks", "/ui/tasks"),
    NavItem("new", "New task", "/ui/new"),
    NavItem("import", "Import", "/ui/import"),
    NavItem("export", "Export", "/ui/export"),
    NavItem("schedules", "Schedules", "/ui/schedules"),
    NavItem("templates", "Templates", "/ui/templates"),
    NavItem("queues", "Queues", "/ui/queues", admin=True),
    # analytics, dead letters, inbox: service/ui/insights.py
    NavItem("analytics", "Analytics", "/ui/analytics"),
    NavItem("dead-letters", "Dead letters", "/ui/dead-letters", admin=True),
    NavItem("inbox", "Inbox", "/ui/inbox"),
)


def _short_time(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


templates.env.filters["when"] = _short_time
templates.env.filters["pretty"] = _pretty
templates.env.globals["NAV"] = NAV


#: where request_caller leaves the caller for PageRoute's error page
CALLER_STATE = "page_caller"


async def request_caller(request: Request, resources: ResourcesDep) -> Caller | None:
    """The caller as the JSON API sees it (gateway headers; the dev login's cookie arrives as
    those headers too), or None: the page then says who it needs.

    A dependency, so FastAPI resolves it once per request for the page and the navigation's
    unread count; kept on request.state for the error page of PageRoute."""
    headers = request.headers
    try:
        caller: Caller | None = await get_caller(
            resources,
            user_id=headers.get("x-user-id"),
            service_token=headers.get("x-service-token"),
            bearer=None,
            user_roles=headers.get("x-user-roles"),
        )
    except OperationsError:
        caller = None
    setattr(request.state, CALLER_STATE, caller)
    return caller


#: the caller, or None when the request names none (the navigation's count needs no caller)
MaybeCaller = Annotated[Caller | None, Depends(request_caller)]


class Unidentified(Exception):
    """The request names no caller the dashboard can serve: PageRoute answers the 401 page."""


async def page_caller(caller: MaybeCaller) -> Caller:
    if caller is None:
        raise Unidentified
    return caller


#: the caller of a page; without one the page is the 401 "Who are you?" (PageRoute)
PageCaller = Annotated[Caller, Depends(page_caller)]


def render(
    request: Request,
    resources: ResourcesDep,
    template: str,
    caller: Caller | None,
    active: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        template,
        {
            "caller": caller,
            "is_admin": caller is not None and caller.has_role(ADMIN_ROLE),
            "active": active,
            "dev_login": resources.settings.ui_dev_login,
            **context,
        },
        status_code=status_code,
    )


def unknown(request: Request, resources: ResourcesDep) -> HTMLResponse:
    return render(
        request,
        resources,
        "message.html",
        None,
        "",
        status_code=401,
        title="Who are you?",
        message="The dashboard needs the caller's identity (the gateway's X-User-ID header).",
    )


def failed(
    request: Request, resources: ResourcesDep, caller: Caller | None, error: OperationsError
) -> HTMLResponse:
    """A problem as a page: its status and text (and Retry-After), as the JSON API answers."""
    body = problems.error_body(error, request.url.path)
    page = render(
        request,
        resources,
        "message.html",
        caller,
        "",
        status_code=body["status"],
        title=body["title"],
        message=body["detail"],
    )
    if isinstance(error, Unavailable):
        page.headers["Retry-After"] = str(error.retry_after)
    return page


class PageRoute(APIRoute):
    """A dashboard page's route: Unidentified (from PageCaller) becomes the 401 page and an
    OperationsError of a use case the page of that problem, so a route only reads and renders.

    Other errors (a bad query parameter's 422, a bug's 500) stay the app's problems."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handle(request)
            except Unidentified:
                return unknown(request, await get_resources(request))
            except OperationsError as error:
                resources = await get_resources(request)
                caller: Caller | None = getattr(request.state, CALLER_STATE, None)
                if not hasattr(request.state, CALLER_STATE):  # raised before it was resolved
                    caller = await request_caller(request, resources)
                return failed(request, resources, caller, error)

        return page


router = APIRouter(prefix="/ui", include_in_schema=False, route_class=PageRoute)


@router.get("")
async def home() -> RedirectResponse:
    return RedirectResponse("/ui/tasks", status_code=303)


def _list_query(params: dict[str, str], caller: Caller) -> dict[str, Any]:
    """The JSON API's query (camelCase) for the page's filters; dates are whole days (UTC)."""
    names = ("status", "taskType", "entityType", "queue", "search")
    query: dict[str, Any] = {
        name: params[name].strip() for name in names if params.get(name, "").strip()
    }
    if params.get("tag", "").strip():
        query["tag"] = [params["tag"].strip()]  # the API's tag filter is a list (every tag)
    if caller.sees_all and params.get("owner", "").strip():
        query["requestedBy"] = params["owner"].strip()
    if params.get("from"):
        query["startDate"] = f"{params['from']}T00:00:00Z"
    if params.get("to"):
        query["endDate"] = f"{params['to']}T23:59:59.999Z"
    return query


@router.get("/tasks")
async def tasks_page(
    request: Request,
    caller: PageCaller,
    uow: UnitDep,
    resources: ResourcesDep,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """A bad filter shows the list unfiltered with the problem beside it, not an error page."""
    params = {k: v[:200] for k, v in request.query_params.items()}
    query = _list_query(params, caller)
    error = None
    try:
        filters = filters_of(FilterFields.model_validate(query))
    except (ValidationError, OperationsError) as problem:
        error = str(problem) if isinstance(problem, ValidationError) else problem.detail
        filters, query = TaskFilters(), {}
    listing = await queries.list_tasks(
        uow,
        caller,
        filters,
        page=page,
        page_size=PAGE_SIZE,
        cursor=None,
        params_cap=resources.settings.list_params_max_bytes,
    )
    api_query = urlencode({**query, "page": page, "pageSize": PAGE_SIZE})
    return render(
        request,
        resources,
        "tasks.html",
        caller,
        "tasks",
        tasks=listing.items,
        total=listing.total,
        page=page,
        pages=max(1, -(-listing.total // PAGE_SIZE)),
        params=params,
        error=error,
        statuses=[s.value for s in TaskStatus],
        queues=[q.value for q in Queue],
        types=sorted(t.name for t in resources.catalog),
        api_query=api_query,
        filter_json=json.dumps(query),
        page_link=lambda n: "/ui/tasks?" + urlencode({**params, "page": n}),
    )


@router.get("/tasks/{task_id}")
async def task_page(
    task_id: UUID, request: Request, caller: PageCaller, uow: UnitDep, resources: ResourcesDep
) -> Response:
    found = await dashboard.task_page(uow, caller, task_id)
    return render(
        request,
        resources,
        "task.html",
        caller,
        "tasks",
        t=found.task,
        page=found,
        final=found.task.status.value in FINAL,
    )


def _types_json(resources: ResourcesDep, caller: Caller) -> str:
    types = dashboard.creatable_types(resources.catalog, caller)
    text = json.dumps([t.model_dump(mode="json", by_alias=True) for t in types])
    return text.replace("</", "<\\/")  # inside <script>: no early </script>


@router.get("/new")
async def new_page(request: Request, caller: PageCaller, resources: ResourcesDep) -> Response:
    return render(
        request,
        resources,
        "new.html",
        caller,
        "new",
        types_json=_types_json(resources, caller),
        queues=[q.value for q in Queue],
    )


@router.get("/import")
async def import_page(request: Request, caller: PageCaller, resources: ResourcesDep) -> Response:
    found = resources.catalog.get("import")
    entities = sorted(found.entity_types or ()) if found is not None else []
    return render(request, resources, "import.html", caller, "import", entities=entities)


@router.get("/export")
async def export_page(request: Request, caller: PageCaller, resources: ResourcesDep) -> Response:
    return render(
        request,
        resources,
        "export.html",
        caller,
        "export",
        types_json=_types_json(resources, caller),
    )


@router.get("/queues")
async def queues_page(
    request: Request, caller: PageCaller, uow: UnitDep, resources: ResourcesDep
) -> Response:
    views = await queue_usecases.overview(uow, caller, now=utcnow())
    return render(request, resources, "queues.html", caller, "queues", queues=views)


@router.get("/login")
async def login_page(
    request: Request,
    resources: ResourcesDep,
    user: Annotated[str | None, Query(max_length=128)] = None,
    roles: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """Local use only (OPS_UI_DEV_LOGIN): pick who you are; a cookie remembers it."""
    if not resources.settings.ui_dev_login:
        return render(
            request,
            resources,
            "message.html",
            None,
            "",
            status_code=404,
            title="Not here",
            message="Sign in through the gateway.",
        )
    if user is None:
        return render(request, resources, "login.html", None, "")
    answer = RedirectResponse("/ui/tasks", status_code=303)
    for name, value in ((devlogin.USER_COOKIE, user), (devlogin.ROLES_COOKIE, roles or "")):
        answer.set_cookie(name, quote(value), httponly=True, samesite="strict", path="/")
    return answer


async def inbox_unread(request: Request, uow: UnitDep, caller: MaybeCaller) -> None:
    """The caller's unread message count for the navigation of every page (one COUNT, in the
    page's own unit of work): base.html reads request.state.inbox_unread."""
    if caller is not None:
        request.state.inbox_unread = await notifications.unread_count(uow, caller)


#: what every page router is included with (the navigation's unread count)
PAGE_DEPENDENCIES = [Depends(inbox_unread)]


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the dashboard: its pages, its own static files (no CDN), and with
    OPS_UI_DEV_LOGIN the dev login's cookie as identity headers."""
    app.include_router(router, dependencies=PAGE_DEPENDENCIES)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    if settings.ui_dev_login:
        app.add_middleware(devlogin.DevLogin)
