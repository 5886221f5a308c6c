"""What the dashboard's schedule and template pages show, each read in one use case (the pages
only render it), through the same use cases and visibility rules as the JSON API."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from service.db.repositories.schedules import ScheduleFilters
from service.db.repositories.templates import TemplateFilters
from service.db.unit_of_work import UnitOfWork
from service.domain.callers import Caller
from service.domain.templates import TemplateRecord
from service.usecases import schedules, templates
from service.usecases.schedule_views import ScheduleDetail

#: templates a schedule form offers at most (the active ones the caller may use)
FORM_TEMPLATES = 100


@dataclass(frozen=True, slots=True)
class SchedulesPage:
    #: each with its next fire times and last runs
    items: list[ScheduleDetail]
    total: int


async def schedules_page(
    uow: UnitOfWork, caller: Caller, *, page: int, page_size: int
) -> SchedulesPage:
    """The caller's schedules (admins: everyone's), newest first, as GET /schedules/{id} shows
    each."""
    records, total = await schedules.page(
        uow, caller, ScheduleFilters(), page=page, page_size=page_size
    )
    return SchedulesPage(await schedules.details(uow, records), total)


async def schedule_page(uow: UnitOfWork, caller: Caller, schedule_id: UUID) -> ScheduleDetail:
    """One schedule (404 for another user's, as the JSON API)."""
    return await schedules.detail(uow, caller, schedule_id)


async def usable_templates(uow: UnitOfWork, caller: Caller) -> list[TemplateRecord]:
    """The active templates the caller may make tasks from: a schedule form's choices."""
    found = await templates.list_templates(
        uow, TemplateFilters(active=True), page=1, page_size=FORM_TEMPLATES
    )
    return [r for r in found.items if caller.has_role(r.content.role)]


async def templates_page(uow: UnitOfWork, *, page: int, page_size: int) -> templates.TemplatePage:
    """Every template's latest version by name (every caller sees every template)."""
    return await templates.list_templates(uow, TemplateFilters(), page=page, page_size=page_size)


@dataclass(frozen=True, slots=True)
class TemplatePage:
    latest: TemplateRecord
    #: oldest first
    versions: list[TemplateRecord]


async def template_page(uow: UnitOfWork, template_id: str) -> TemplatePage:
    """A template with every version (404 for an unknown one)."""
    found = await templates.versions(uow, template_id)
    latest = next((r for r in found if r.version == r.latest_version), found[-1])
    return TemplatePage(latest=latest, versions=found)
