"""/templates: task templates (admins manage them, each update a new version), and
/tasks/from-template, which makes a task from one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Response, status
from pydantic import Field, StrictInt, field_validator

from service.api import fields
from service.api.deps import CallerDep, ResourcesDep, UnitDep
from service.api.idempotency import IdempotencyKeyDep
from service.api.json_body import BoundedRoute
from service.api.routes.tasks import REPLAY, answer_created
from service.api.schemas import InputModel, TaskCreated
from service.catalog.notifications import NotificationSettings
from service.clock import utcnow
from service.db.repositories.templates import TemplateFilters
from service.domain.callers import Caller
from service.domain.tasks import Priority
from service.domain.templates import TemplateContent, TemplateRecord
from service.usecases import templates as template_usecases
from service.usecases.files import FilePolicy
from service.usecases.tasks import IdempotencyKey
from service.web.problems import CALLER_RESPONSES, responses
from service.wire import CamelModel

router = APIRouter(
    prefix="/templates", tags=["templates"], responses=CALLER_RESPONSES, route_class=BoundedRoute
)
tasks_router = APIRouter(
    prefix="/tasks", tags=["templates"], responses=CALLER_RESPONSES, route_class=BoundedRoute
)

#: Idempotency-Keys of POST /tasks/from-template are their own (not POST /tasks').
FROM_TEMPLATE_OPERATION = "tasks.from-template"

TEMPLATE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
TemplateIdPath = Annotated[str, Path(max_length=64, pattern=TEMPLATE_ID)]
TemplateId = Annotated[str, Field(max_length=64, pattern=TEMPLATE_ID)]
#: A param's name as the task type's params take it (GET /task-types: paramsSchema).
ParamName = Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]
Version = Annotated[StrictInt, Field(ge=1, le=fields.INT32_MAX), fields.Integral]
PriorityLabel = Literal["low", "normal", "high", "urgent"]


def _unique(names: list[str]) -> list[str]:
    if len(set(names)) != len(names):
        raise ValueError("each name at most once")
    return names


class TemplateBody(InputModel):
    """A template (create), or its next version (update: the whole template, as it should be)."""

    name: fields.Title
    description: fields.Description | None = None
    category: fields.Name | None = Field(None, description="e.g. import, export, maintenance")
    task_type: fields.Name = Field(description="A task type of GET /task-types")
    entity_type: fields.Name | None = None
    params: fields.Params = Field(
        default_factory=dict, description="Default params; a caller's are merged over them"
    )
    required_fields: list[ParamName] = Field(
        default_factory=list,
        max_length=50,
        description="Params a caller must give",
        json_schema_extra={"uniqueItems": True},
    )
    optional_fields: list[ParamName] = Field(
        default_factory=list,
        max_length=50,
        description="Params a caller may give too; with neither list, any param of the type",
        json_schema_extra={"uniqueItems": True},
    )
    required_role: fields.Name | None = Field(
        None, description="Role needed to use it; null: any user"
    )
    tags: fields.Tags = Field(default_factory=list)
    priority: PriorityLabel | None = None
    queue: Literal["default", "urgent", "bulk"] | None = None
    max_retries: fields.Retries | None = None
    notification_settings: NotificationSettings | None = None

    _tags = field_validator("tags")(fields.unique_tags)
    _fields = field_validator("required_fields", "optional_fields")(_unique)

    def content(self) -> TemplateContent:
        return TemplateContent(
            name=self.name,
            task_type=self.task_type,
            description=self.description,
            category=self.category,
            entity_type=self.entity_type,
            params=self.params,
            required_fields=tuple(self.required_fields),
            optional_fields=tuple(self.optional_fields),
            role=self.required_role,
            tags=tuple(self.tags),
            priority=None if self.priority is None else Priority.parse(self.priority),
            queue=self.queue,
            max_retries=self.max_retries,
            notification_settings=(
                None if self.notification_settings is None else self.notification_settings.stored()
            ),
        )


class TemplateView(CamelModel):
    """One version of a template; `allowed` says whether the caller may use it."""

    id: str
    version: int
    latest_version: int
    active: bool
    name: str
    description: str | None
    category: str | None
    task_type: str
    entity_type: str | None
    params: dict[str, Any]
    required_fields: list[str]
    optional_fields: list[str]
    params_schema: dict[str, Any]
    required_role: str | None
    allowed: bool
    tags: list[str]
    priority: str | None
    queue: str | None
    max_retries: int | None
    notification_settings: dict[str, Any] | None
    created_by: str
    created_at: datetime
    version_created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: TemplateRecord, caller: Caller) -> TemplateView:
        c = record.content
        return cls(
            id=record.id,
            version=record.version,
            latest_version=record.latest_version,
            active=record.active,
            name=c.name,
            description=c.description,
            category=c.category,
            task_type=c.task_type,
            entity_type=c.entity_type,
            params=c.default_params,
            required_fields=list(c.required_fields),
            optional_fields=list(c.optional_fields),
            params_schema=record.params_schema,
            required_role=c.role,
            allowed=record.active and caller.has_role(c.role),
            tags=list(c.tags),
            priority=None if c.priority is None else c.priority.label,
            queue=c.queue,
            max_retries=c.max_retries,
            notification_settings=(
                None if c.notification_settings is None else dict(c.notification_settings)
            ),
            created_by=record.created_by,
            created_at=record.created_at,
            version_created_at=record.version_created_at,
            updated_at=record.updated_at,
        )


class TemplatePage(CamelModel):
    items: list[TemplateView]
    total: int
    page: int
    page_size: int


class TemplateQuery(InputModel):
    page: fields.PageNumber = 1
    page_size: int = Field(20, ge=1, le=100)
    category: fields.Name | None = None
    task_type: fields.Name | None = None
    active: bool | None = None
    tag: list[fields.Tag] = Field(
        default_factory=list, max_length=20, description="repeatable: templates with every tag"
    )
    search: str | None = Field(
        None, max_length=200, description="in the name, description, category and task type"
    )


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=TemplateView, responses=responses(403)
)
async def create_template(
    body: TemplateBody, uow: UnitDep, caller: CallerDep, resources: ResourcesDep, response: Response
) -> TemplateView:
    """A new template at version 1 (admins). Checked against the catalog: its task type, entity
    type, fields and default params (422 naming the field)."""
    record = await template_usecases.create(
        uow, caller, body.content(), catalog=resources.catalog, now=utcnow()
    )
    response.headers["Location"] = f"/api/v1/operations/templates/{record.id}"
    return TemplateView.of(record, caller)


@router.get("", response_model=TemplatePage)
async def list_templates(
    query: Annotated[TemplateQuery, Query()], uow: UnitDep, caller: CallerDep
) -> TemplatePage:
    """Templates (their latest versions) by name, active and deactivated ones."""
    filters = TemplateFilters(
        category=query.category,
        task_type=query.task_type,
        active=query.active,
        tags=tuple(query.tag),
        search=query.search,
    )
    page = await template_usecases.list_templates(
        uow, filters, page=query.page, page_size=query.page_size
    )
    return TemplatePage(
        items=[TemplateView.of(r, caller) for r in page.items],
        total=page.total,
        page=page.page,
        page_size=page.page_size,
    )


@router.get("/{template_id}", response_model=TemplateView, responses=responses(404))
async def get_template(
    template_id: TemplateIdPath,
    uow: UnitDep,
    caller: CallerDep,
    version: Annotated[int | None, Query(ge=1, le=fields.INT32_MAX)] = None,
) -> TemplateView:
    """The latest version, or with ?version=N that version."""
    return TemplateView.of(await template_usecases.get(uow, template_id, version), caller)


@router.get("/{template_id}/versions", response_model=list[TemplateView], responses=responses(404))
async def template_versions(
    template_id: TemplateIdPath, uow: UnitDep, caller: CallerDep
) -> list[TemplateView]:
    """Every version, oldest first."""
    return [TemplateView.of(r, caller) for r in await template_usecases.versions(uow, template_id)]


@router.put("/{template_id}", response_model=TemplateView, responses=responses(403, 404, 409))
async def update_template(
    template_id: TemplateIdPath,
    body: TemplateBody,
    uow: UnitDep,
    caller: CallerDep,
    resources: ResourcesDep,
) -> TemplateView:
    """A new version (admins); earlier versions stay readable, and tasks keep the version they
    were made from. 409 for a deactivated template."""
    record = await template_usecases.update(
        uow, caller, template_id, body.content(), catalog=resources.catalog, now=utcnow()
    )
    return TemplateView.of(record, caller)


@router.post(
    "/{template_id}/deactivate", response_model=TemplateView, responses=responses(403, 404)
)
async def deactivate_template(
    template_id: TemplateIdPath, uow: UnitDep, caller: CallerDep
) -> TemplateView:
    """No more tasks from it (admins): it stays readable, its tasks are untouched. Repeating
    it is harmless."""
    return TemplateView.of(
        await template_usecases.deactivate(uow, caller, template_id, now=utcnow()), caller
    )


class FromTemplate(InputModel):
    """A task from a template: its params merged over the template's defaults; the other
    fields, when given, replace the template's."""

    template_id: TemplateId
    version: Version | None = Field(None, description="default: the latest")
    params: fields.Params = Field(default_factory=dict)
    name: fields.Title | None = None
    description: fields.Description | None = None
    tags: fields.Tags | None = None
    priority: PriorityLabel | None = None
    scheduled_at: fields.Instant | None = None
    max_retries: fields.Retries | None = None
    notification_settings: NotificationSettings | None = None
    input_file_id: str | None = Field(None, max_length=255)
    file_name: fields.FileName | None = None
    file_size: fields.ByteSize | None = None
    file_content_type: fields.ContentType | None = None
    file_sha256: fields.Sha256 | None = None

    _tags = field_validator("tags")(fields.unique_tags)

    def overrides(self) -> dict[str, Any]:
        """The NewTask fields this request replaces."""
        given: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "tags": None if self.tags is None else tuple(self.tags),
            "priority": None if self.priority is None else Priority.parse(self.priority),
            "max_retries": self.max_retries,
            "notification_settings": (
                None if self.notification_settings is None else self.notification_settings.stored()
            ),
            "scheduled_at": self.scheduled_at,
            "input_file_id": self.input_file_id,
            "file_name": self.file_name,
            "file_size": self.file_size,
            "file_content_type": self.file_content_type,
            "file_sha256": None if self.file_sha256 is None else self.file_sha256.lower(),
        }
        return {k: v for k, v in given.items() if v is not None}


@tasks_router.post(
    "/from-template",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskCreated,
    responses=REPLAY | responses(400, 403, 404, 409, 413, 415),
)
async def create_from_template(
    body: FromTemplate,
    uow: UnitDep,
    caller: CallerDep,
    resources: ResourcesDep,
    response: Response,
    idempotency_key: IdempotencyKeyDep = None,
    traceparent: Annotated[str | None, Header(max_length=64)] = None,
) -> TaskCreated:
    """Create a task from a template, as POST /tasks would create it (same checks, same
    Idempotency-Key rules): 404 for an unknown or deactivated template, 403 without its role,
    422 naming each missing required param. The task records templateId and templateVersion."""
    submitted = await template_usecases.submit_from_template(
        uow,
        caller,
        template_id=body.template_id,
        version=body.version,
        params=body.params,
        overrides=body.overrides(),
        catalog=resources.catalog,
        store=resources.store,
        policy=FilePolicy.from_settings(resources.settings),
        now=utcnow(),
        idempotency=(
            None
            if idempotency_key is None
            else IdempotencyKey(idempotency_key, FROM_TEMPLATE_OPERATION)
        ),
        traceparent=traceparent,
    )
    return answer_created(submitted, response)
