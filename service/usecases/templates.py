"""Task templates: managed by admins (each update a new version), used by whoever holds the
template's role to make tasks through the ordinary create."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Unpack
from uuid import uuid4

from pydantic import ValidationError

from service.catalog import templates as shipped_templates
from service.catalog.catalog import Catalog
from service.catalog.model import Submission, TaskType
from service.db.repositories.templates import TemplateFilters, TemplateRepository
from service.db.unit_of_work import UnitOfWork
from service.domain import templates as rules
from service.domain.callers import ADMIN_ROLE, Caller
from service.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from service.domain.tasks import Queue
from service.domain.templates import TemplateContent, TemplateRecord
from service.usecases import submissions
from service.usecases.submissions import Submitted
from service.usecases.tasks import NewTask

#: Who made the shipped templates.
SYSTEM_AUTHOR = "system"


def _require_admin(caller: Caller) -> None:
    if not caller.has_role(ADMIN_ROLE):
        raise Forbidden("managing templates needs the admin role")


def _field_names(task_type: TaskType) -> set[str]:
    return set(task_type.params.model_json_schema(by_alias=True).get("properties", {}))


def _check_fields(task_type: TaskType, content: TemplateContent) -> None:
    known = _field_names(task_type)
    for name, listed in (
        ("requiredFields", content.required_fields),
        ("optionalFields", content.optional_fields),
    ):
        for index, field in enumerate(listed):
            if field not in known:
                choices = ", ".join(sorted(known)) or "none"
                raise InvalidInput(
                    f"{field!r} is not a param of {task_type.name} tasks; they take: {choices}",
                    field=f"{name}.{index}",
                )
    both = set(content.required_fields) & set(content.optional_fields)
    if both:
        raise InvalidInput(
            f"{sorted(both)[0]!r} is required; it cannot be optional too", field="optionalFields"
        )


def _check_defaults(task_type: TaskType, content: TemplateContent) -> None:
    """Default params valid for the type, but for the required fields callers fill in."""
    defaults = content.default_params
    to_fill = set(content.required_fields)
    try:
        task_type.params.model_validate(defaults)
    except ValidationError as error:
        for problem in error.errors(include_url=False):
            loc = problem["loc"]
            if problem["type"] == "missing" and loc and loc[0] in to_fill:
                continue
            raise InvalidInput(
                problem["msg"], field=".".join(["params", *(str(p) for p in loc)])
            ) from error
        return  # only required fields are missing: complete only at use
    if task_type.check is not None and not rules.missing_fields(to_fill, defaults):
        submission = Submission(
            task_type.name, content.entity_type, defaults, has_input=task_type.needs_file
        )
        task_type.check(submission)


def checked_schema(catalog: Catalog, content: TemplateContent) -> dict[str, Any]:
    """The template's params schema, once the catalog agrees with it: its type exists, its
    entity type is allowed, its fields are the type's params and its defaults are valid
    (422 naming the field otherwise)."""
    task_type = catalog.require(content.task_type)
    allowed = task_type.entity_types
    if allowed is not None and content.entity_type not in allowed:
        raise InvalidInput(
            f"{task_type.name} templates need an entityType, one of: {', '.join(allowed)}; "
            f"got {content.entity_type!r}",
            field="entityType",
        )
    _check_fields(task_type, content)
    _check_defaults(task_type, content)
    type_schema = task_type.params.model_json_schema(by_alias=True)
    return rules.narrowed_schema(type_schema, content)


async def create(
    uow: UnitOfWork, caller: Caller, content: TemplateContent, *, catalog: Catalog, now: datetime
) -> TemplateRecord:
    """A new template at version 1 (admins)."""
    _require_admin(caller)
    schema = checked_schema(catalog, content)
    template_id = str(uuid4())
    repo = TemplateRepository(uow.session)
    await repo.insert(template_id, content, schema, by=caller.user_id, now=now)
    return await _found(repo, template_id, None)


async def update(
    uow: UnitOfWork,
    caller: Caller,
    template_id: str,
    content: TemplateContent,
    *,
    catalog: Catalog,
    now: datetime,
) -> TemplateRecord:
    """A new version (admins); earlier versions stay as they were, and so do their tasks."""
    _require_admin(caller)
    repo = TemplateRepository(uow.session)
    current = await _found(repo, template_id, None)
    if not current.active:
        raise Conflict(f"template {template_id} is deactivated; it cannot be changed")
    schema = checked_schema(catalog, content)
    version = await repo.add_version(
        template_id, current.latest_version, content, schema, by=caller.user_id, now=now
    )
    if version is None:
        raise Conflict(f"template {template_id} changed while this request ran; try again")
    return await _found(repo, template_id, version)


async def deactivate(
    uow: UnitOfWork, caller: Caller, template_id: str, *, now: datetime
) -> TemplateRecord:
    """No more tasks from it (admins); it stays readable, and its tasks are untouched."""
    _require_admin(caller)
    repo = TemplateRepository(uow.session)
    if not await repo.deactivate(template_id, now=now):
        raise NotFound(f"template {template_id} not found", template_id=template_id)
    return await _found(repo, template_id, None)


async def _found(repo: TemplateRepository, template_id: str, version: int | None) -> TemplateRecord:
    record = await repo.get(template_id, version)
    if record is None:
        what = "" if version is None else f" version {version}"
        raise NotFound(f"template {template_id}{what} not found", template_id=template_id)
    return record


async def get(uow: UnitOfWork, template_id: str, version: int | None = None) -> TemplateRecord:
    """One version of a template (the latest when None), active or not."""
    return await _found(TemplateRepository(uow.session), template_id, version)


async def versions(uow: UnitOfWork, template_id: str) -> list[TemplateRecord]:
    """Every version of a template, oldest first."""
    found = await TemplateRepository(uow.session).versions(template_id)
    if not found:
        raise NotFound(f"template {template_id} not found", template_id=template_id)
    return found


@dataclass(frozen=True, slots=True)
class TemplatePage:
    items: list[TemplateRecord]
    total: int
    page: int
    page_size: int


async def list_templates(
    uow: UnitOfWork, filters: TemplateFilters, *, page: int, page_size: int
) -> TemplatePage:
    """Templates (their latest versions) by name; every caller sees every template, and each
    says whether the caller may use it."""
    items, total = await TemplateRepository(uow.session).page(
        filters, limit=page_size, offset=(page - 1) * page_size
    )
    return TemplatePage(items, total, page, page_size)


async def new_task_from_template(
    uow: UnitOfWork,
    caller: Caller,
    *,
    template_id: str,
    version: int | None,
    params: Mapping[str, Any],
    catalog: Catalog,
    now: datetime,
) -> NewTask:
    """The task a template makes with these params, checked, for the ordinary create.

    NotFound for an unknown or deactivated template (or version); Forbidden without the
    template's role (or the task type's); InvalidInput naming each missing required param, a
    param the template does not let callers set, or what the catalog refuses. `now` is the
    moment of the use (kept for the schedules' callers; the template's rules do not vary).
    """
    del now
    record = await _found(TemplateRepository(uow.session), template_id, version)
    if not record.active:
        raise NotFound(f"template {template_id} is deactivated", template_id=template_id)
    content = record.content
    if not caller.has_role(content.role):
        raise Forbidden(
            f"using template {template_id} needs the {content.role} role", template_id=template_id
        )
    _refuse(
        [
            (f"params.{n}", "this template does not let callers set it")
            for n in _unsettable(content, params)
        ]
    )
    merged = rules.merged_params(content.default_params, params)
    _refuse(
        [
            (f"params.{n}", "is required by this template")
            for n in rules.missing_fields(content.required_fields, merged)
        ]
    )
    task_type = catalog.require(content.task_type)
    # a file comes with the create request, which checks it (and everything else) again
    catalog.check(
        caller,
        Submission(content.task_type, content.entity_type, merged, has_input=task_type.needs_file),
    )
    return NewTask(
        task_type=content.task_type,
        entity_type=content.entity_type,
        priority=content.priority,
        queue=None if content.queue is None else Queue(content.queue),
        params=merged,
        max_retries=content.max_retries,
        template_id=record.id,
        template_version=record.version,
        name=content.name,
        description=content.description,
        tags=content.tags,
        notification_settings=(
            None if content.notification_settings is None else dict(content.notification_settings)
        ),
    )


async def submit_from_template(
    uow: UnitOfWork,
    caller: Caller,
    *,
    template_id: str,
    version: int | None,
    params: Mapping[str, Any],
    overrides: Mapping[str, Any],
    **intake: Unpack[submissions.Intake],
) -> Submitted:
    """POST /tasks/from-template: the template's task, with the request's `overrides` of its
    NewTask fields (name, tags, scheduledAt, a file …), created as POST /tasks creates."""
    new = await new_task_from_template(
        uow,
        caller,
        template_id=template_id,
        version=version,
        params=params,
        catalog=intake["catalog"],
        now=intake["now"],
    )
    return await submissions.submit(uow, caller, replace(new, **overrides), **intake)


def _unsettable(content: TemplateContent, params: Mapping[str, Any]) -> list[str]:
    return rules.unsettable_fields(content, params)


def _refuse(errors: list[tuple[str, str]]) -> None:
    if errors:
        (field, reason), *others = errors
        raise InvalidInput(reason, field=field, others=others)


async def install_shipped(uow: UnitOfWork, catalog: Catalog, *, now: datetime) -> int:
    """Add the shipped templates that are not there yet (by id); returns how many were added.
    One whose task type this deployment's catalog lacks is left out."""
    repo = TemplateRepository(uow.session)
    added = 0
    for template_id, content in shipped_templates.SHIPPED:
        if content.task_type not in catalog:
            continue
        schema = checked_schema(catalog, content)
        if await repo.insert(
            template_id, content, schema, by=SYSTEM_AUTHOR, now=now, if_absent=True
        ):
            added += 1
    return added
