"""The dashboard's schedules and templates pages. Each route reads through one use case
(service/usecases/plan_pages.py) and renders a template; every change is a call of ui.js to
the JSON API. The forms are generated in the browser from the JSON Schema of the JSON API's
own request models (ScheduleCreate, ScheduleChange, TemplateBody), so a field the API gains
shows up in its form."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from service.api.deps import ResourcesDep, UnitDep
from service.api.routes.templates import TEMPLATE_ID, TemplateBody, TemplateView
from service.api.schedule_schemas import ScheduleChange, ScheduleCreate
from service.domain.callers import ADMIN_ROLE, Caller
from service.domain.errors import Forbidden, NotFound
from service.ui.pages import PageCaller, PageRoute, render
from service.usecases import dashboard, plan_pages

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=PageRoute)

PAGE_SIZE = 25
#: fire times and runs a row of the schedules list shows (the schedule's page shows all)
LIST_FIRE_TIMES = 3
LIST_RUNS = 3

#: the order a form shows its fields in (the rest follow in the model's order)
SCHEDULE_ORDER = (
    "name",
    "description",
    "cron",
    "timeZone",
    "taskType",
    "entityType",
    "params",
    "templateId",
    "templateVersion",
    "tags",
)
TEMPLATE_ORDER = ("name", "description", "category", "taskType", "entityType", "params")


def _label(name: str) -> str:
    """A field's label from its wire name: timeZone → "Time zone"."""
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    return words[:1].upper() + words[1:]


def form_schema(
    model: type[BaseModel],
    order: Sequence[str],
    choices: Mapping[str, Sequence[str]] | None = None,
    labels: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The request model's JSON Schema (wire names) for a generated form: fields in `order`,
    readable titles, and `choices` offered as an enum where the API takes a free string (the
    API still checks them). `labels` name a choice's options (`x-labels`)."""
    schema = model.model_json_schema(by_alias=True)
    props: dict[str, Any] = schema["properties"]
    ordered = {name: props[name] for name in order if name in props}
    ordered.update({k: v for k, v in props.items() if k not in ordered})
    for name, prop in ordered.items():
        prop["title"] = _label(name)
        values = (choices or {}).get(name)
        if values:
            branches = prop.get("anyOf", [prop])
            target = next((b for b in branches if b.get("type") == "string"), prop)
            target["enum"] = list(values)
    schema["properties"] = ordered
    if labels:
        schema["x-labels"] = {k: dict(v) for k, v in labels.items()}
    return schema


def _script_json(value: Any) -> str:
    """JSON to put inside <script type="application/json">: no early </script>."""
    return json.dumps(value, ensure_ascii=False, default=str).replace("</", "<\\/")


def _is_admin(caller: Caller) -> bool:
    return caller.has_role(ADMIN_ROLE)


async def _schedule_schema(
    uow: UnitDep, resources: ResourcesDep, caller: Caller, model: type[BaseModel]
) -> dict[str, Any]:
    """A schedule form's schema: the task types the caller may create, the templates they may
    use (by name)."""
    types = [t.task_type for t in dashboard.creatable_types(resources.catalog, caller)]
    usable = await plan_pages.usable_templates(uow, caller)
    names = {t.id: f"{t.content.name} (v{t.latest_version})" for t in usable}
    return form_schema(
        model,
        SCHEDULE_ORDER,
        choices={"taskType": types, "templateId": list(names)},
        labels={"templateId": names},
    )


def _template_schema(resources: ResourcesDep) -> dict[str, Any]:
    types = sorted(t.name for t in resources.catalog)
    return form_schema(TemplateBody, TEMPLATE_ORDER, choices={"taskType": types})


# ---------------------------------------------------------------- schedules


@router.get("/schedules")
async def schedules_list(
    request: Request,
    caller: PageCaller,
    uow: UnitDep,
    resources: ResourcesDep,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    found = await plan_pages.schedules_page(uow, caller, page=page, page_size=PAGE_SIZE)
    return render(
        request,
        resources,
        "schedules.html",
        caller,
        "schedules",
        schedules=found.items,
        total=found.total,
        page=page,
        pages=max(1, -(-found.total // PAGE_SIZE)),
        page_link=lambda n: "/ui/schedules?" + urlencode({"page": n}),
        fire_limit=LIST_FIRE_TIMES,
        runs_limit=LIST_RUNS,
    )


@router.get("/schedules/new")
async def schedule_new(
    request: Request, caller: PageCaller, uow: UnitDep, resources: ResourcesDep
) -> Response:
    schema = await _schedule_schema(uow, resources, caller, ScheduleCreate)
    return render(
        request,
        resources,
        "schedule_new.html",
        caller,
        "schedules",
        schema_json=_script_json(schema),
    )


@router.get("/schedules/{schedule_id}")
async def schedule_detail(
    schedule_id: UUID,
    request: Request,
    caller: PageCaller,
    uow: UnitDep,
    resources: ResourcesDep,
) -> Response:
    found = await plan_pages.schedule_page(uow, caller, schedule_id)
    schema = await _schedule_schema(uow, resources, caller, ScheduleChange)
    return render(
        request,
        resources,
        "schedule.html",
        caller,
        "schedules",
        s=found,
        schema_json=_script_json(schema),
        values_json=_script_json(found.model_dump(mode="json", by_alias=True)),
    )


# ---------------------------------------------------------------- templates


@router.get("/templates")
async def templates_list(
    request: Request,
    caller: PageCaller,
    uow: UnitDep,
    resources: ResourcesDep,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    found = await plan_pages.templates_page(uow, page=page, page_size=PAGE_SIZE)
    return render(
        request,
        resources,
        "templates.html",
        caller,
        "templates",
        templates=[TemplateView.of(r, caller) for r in found.items],
        total=found.total,
        page=page,
        pages=max(1, -(-found.total // PAGE_SIZE)),
        page_link=lambda n: "/ui/templates?" + urlencode({"page": n}),
    )


@router.get("/templates/new")
async def template_new(request: Request, caller: PageCaller, resources: ResourcesDep) -> Response:
    if not _is_admin(caller):
        raise Forbidden("managing templates needs the admin role")
    return render(
        request,
        resources,
        "template_new.html",
        caller,
        "templates",
        schema_json=_script_json(_template_schema(resources)),
    )


@router.get("/templates/{template_id}")
async def template_detail(
    template_id: str, request: Request, caller: PageCaller, uow: UnitDep, resources: ResourcesDep
) -> Response:
    if not re.fullmatch(TEMPLATE_ID, template_id):  # no such id can exist
        raise NotFound(f"template {template_id[:64]} not found")
    found = await plan_pages.template_page(uow, template_id)
    latest = TemplateView.of(found.latest, caller)
    return render(
        request,
        resources,
        "template.html",
        caller,
        "templates",
        t=latest,
        versions=[TemplateView.of(r, caller) for r in reversed(found.versions)],
        editable=_is_admin(caller) and latest.active,
        schema_json=_script_json(_template_schema(resources)),
        values_json=_script_json(latest.model_dump(mode="json", by_alias=True)),
        params_schema_json=_script_json(latest.params_schema),
    )
