"""/tasks: create, read, list, cancel, retry, soft delete."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Query, Response, status
from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema
from starlette.routing import Match
from starlette.types import Scope

from service.api import etags, fields
from service.api.deps import CallerDep, ResourcesDep, UnitDep
from service.api.idempotency import IdempotencyKeyDep
from service.api.json_body import BoundedRoute
from service.api.schemas import (
    InputModel,
    TaskCreate,
    TaskCreated,
    TaskPage,
    TaskPublic,
    TaskSpec,
)
from service.bootstrap import Resources
from service.catalog.notifications import NotificationSettings
from service.clock import utcnow
from service.db.repositories.tasks import Cursor, TaskFilters
from service.domain.callers import Caller
from service.domain.errors import InvalidInput
from service.domain.tasks import Priority, Queue, TaskRecord, TaskStatus
from service.usecases import (
    bulk_actions,
    downloads,
    queries,
    submissions,
    task_edits,
    tasks as task_usecases,
)
from service.usecases.downloads import DownloadLink
from service.usecases.files import FilePolicy, FilePurpose
from service.usecases.submissions import Submitted
from service.usecases.task_edits import TaskEdit
from service.usecases.tasks import IdempotencyKey
from service.usecases.uploads import confirmation
from service.web import problems
from service.web.problems import CALLER_RESPONSES, responses
from service.wire import CamelModel

#: Paths under /tasks that are not a task's id (routes/templates.py).
FIXED_PATHS = frozenset({"from-template"})


class TaskRoute(BoundedRoute):
    """A /tasks route: /tasks/{task_id} never matches a fixed path such as
    /tasks/from-template, so other methods there are a 405, not a 422 for a bad task id."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE and child.get("path_params", {}).get("task_id") in FIXED_PATHS:
            return Match.NONE, {}
        return match, child


router = APIRouter(
    prefix="/tasks", tags=["tasks"], responses=CALLER_RESPONSES, route_class=TaskRoute
)

#: Operation names that scope Idempotency-Keys (a key of POST /tasks is not one of /bulk/export).
CREATE_OPERATION = "tasks.create"


#: A create repeating an Idempotency-Key answers 200 with the first task.
REPLAY: dict[int | str, dict[str, Any]] = {
    200: {"model": TaskCreated, "description": "A repeated Idempotency-Key: the first task"}
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskCreated,
    responses=REPLAY | responses(400, 403, 409, 413, 415),
)
async def create_task(
    body: TaskCreate,
    caller: CallerDep,
    resources: ResourcesDep,
    response: Response,
    idempotency_key: IdempotencyKeyDep = None,
    traceparent: Annotated[str | None, Header(max_length=64)] = None,
) -> TaskCreated:
    """Create a task; repeating an Idempotency-Key returns the first task (200).

    With a fileName (and no inputFileId) the answer carries an uploadUrl for the input file:
    413 when its fileSize is over the limit, 415 when an import's file has a content type the
    import does not read.
    """
    submitted = await submit_create(resources, caller, body, idempotency_key, traceparent)
    return answer_created(submitted, response)


async def submit_create(
    resources: Resources,
    caller: Caller,
    body: TaskCreate,
    idempotency_key: str | None,
    traceparent: str | None,
) -> Submitted:
    """What POST /tasks does once its input is read (its fast path too: service.api.fast_create)."""
    key = None if idempotency_key is None else IdempotencyKey(idempotency_key, CREATE_OPERATION)
    return await submissions.submit_one(
        resources.unit,
        caller,
        body.as_new_task(),
        catalog=resources.catalog,
        store=resources.store,
        policy=FilePolicy.from_settings(resources.settings),
        now=utcnow(),
        idempotency=key,
        traceparent=traceparent,
        group=resources.creates,
    )


class TaskBatch(InputModel):
    """Many tasks to create at once, each as POST /tasks takes it but for an input file to
    upload (fileName and its companions)."""

    tasks: list[TaskSpec] = Field(min_length=1, max_length=submissions.MAX_BATCH)


class BatchItemAnswer(CamelModel):
    """One task of a batch: 201 with its id, or the problem that refused it (nothing of it
    was written)."""

    index: int
    status: int
    id: UUID | None = None
    task_status: TaskStatus | None = None
    problem: dict[str, Any] | None = None


class BatchAnswer(CamelModel):
    created: int
    refused: int
    items: list[BatchItemAnswer]


@router.post(":batch", response_model=BatchAnswer, responses=responses(413))
async def create_batch(
    body: TaskBatch, uow: UnitDep, caller: CallerDep, resources: ResourcesDep
) -> BatchAnswer:
    """Create up to 1,000 tasks in one request and one transaction (200): each is checked as
    POST /tasks would check it; the answer lists, in order, each task's 201 and id, or the
    problem that refused it, whose fields are named from the batch (`tasks.3.params.seconds`).
    The accepted ones are committed together before the answer."""
    items = await submissions.submit_batch(
        uow, caller, [t.as_new_task() for t in body.tasks], catalog=resources.catalog, now=utcnow()
    )
    answers = [_batch_item(item) for item in items]
    created = sum(1 for a in answers if a.status == status.HTTP_201_CREATED)
    return BatchAnswer(created=created, refused=len(answers) - created, items=answers)


def _batch_item(item: submissions.BatchItem) -> BatchItemAnswer:
    if item.task is not None:
        return BatchItemAnswer(
            index=item.index, status=201, id=item.task.id, task_status=item.task.status
        )
    assert item.error is not None
    problem = problems.error_body(item.error, f"/api/v1/operations/tasks:batch#{item.index}")
    for field_error in problem.get("errors", []):
        if not str(field_error["field"]).startswith("tasks."):
            field_error["field"] = f"tasks.{item.index}.{field_error['field']}"
    return BatchItemAnswer(index=item.index, status=problem["status"], problem=problem)


def answer_created(submitted: Submitted, response: Response) -> TaskCreated:
    """201 with Location (200 for a repeated Idempotency-Key), and the upload URL if any."""
    response.headers["Location"] = f"/api/v1/operations/tasks/{submitted.task.id}"
    if not submitted.created:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return TaskCreated.of_submitted(submitted)


_STATUS = "|".join(s.value for s in TaskStatus)
#: One status or several, comma-separated, spaces around each allowed.
_STATUS_LIST = rf"^ *({_STATUS}) *(, *({_STATUS}) *)*$"


def _split_statuses(value: str) -> list[str]:
    return [s.strip(" ") for s in value.split(",")]


class FilterFields(InputModel):
    """The filters of a task list (GET /tasks) and of a bulk action on it."""

    task_type: str | None = Field(None, max_length=64)
    entity_type: str | None = Field(None, max_length=64)
    status: str | None = Field(
        None,
        max_length=200,
        description="one status or a comma-separated list",
        json_schema_extra={"pattern": _STATUS_LIST},  # _statuses says which one is wrong
    )
    requested_by: str | None = Field(None, max_length=128)
    start_date: fields.Instant | None = None
    end_date: fields.Instant | None = None
    search: str | None = Field(
        None,
        max_length=200,
        description="text found in the type, entity, file name, name, description, error, "
        "params or result",
    )
    queue: Queue | None = None
    tag: list[fields.Tag] = Field(
        default_factory=list, max_length=20, description="repeatable: tasks with every tag"
    )

    @field_validator("status")
    @classmethod
    def _statuses(cls, value: str | None) -> str | None:
        if value is not None:
            bad = [s for s in _split_statuses(value) if s not in TaskStatus.__members__.values()]
            if bad:
                allowed = ", ".join(s.value for s in TaskStatus)
                raise ValueError(f"unknown status {bad[0]!r}; allowed: {allowed}")
        return value


class ListQuery(FilterFields):
    page: fields.PageNumber = 1
    page_size: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=200, description="nextCursor of the last page")


@router.get("", response_model=TaskPage)
async def list_tasks(
    query: Annotated[ListQuery, Query()],
    uow: UnitDep,
    caller: CallerDep,
    resources: ResourcesDep,
) -> TaskPage:
    """Newest first. Page with page/pageSize, or follow nextCursor for deep lists.

    An item's params longer than OPS_LIST_PARAMS_MAX_BYTES (4 KiB) of JSON are left out:
    `params` is null and `paramsOmitted` true; GET /tasks/{id} has them.
    """
    filters, cursor = task_filters(query)
    page = await queries.list_tasks(
        uow,
        caller,
        filters,
        page=query.page,
        page_size=query.page_size,
        cursor=cursor,
        params_cap=resources.settings.list_params_max_bytes,
    )
    return TaskPage(
        items=page.items,
        total=page.total,
        page=page.page,
        page_size=page.page_size,
        next_cursor=page.next_cursor,
    )


def task_filters(query: ListQuery) -> tuple[TaskFilters, Cursor | None]:
    """The filters and the cursor a list query asks for (REST's and gRPC's ListTasks)."""
    cursor = _cursor(query.cursor)
    return filters_of(query), cursor


def filters_of(query: FilterFields) -> TaskFilters:
    """The filters a list query or a bulk action names."""
    if query.start_date and query.end_date and query.start_date > query.end_date:
        raise InvalidInput("startDate is after endDate", field="startDate")
    return TaskFilters(
        task_type=query.task_type,
        entity_type=query.entity_type,
        status=[TaskStatus(s) for s in _split_statuses(query.status)] if query.status else (),
        requested_by=query.requested_by,
        start_date=query.start_date,
        end_date=query.end_date,
        search=query.search,
        tags=tuple(query.tag),
        queue=None if query.queue is None else query.queue.value,
    )


def _cursor(token: str | None) -> Cursor | None:
    if token is None:
        return None
    try:
        cursor = Cursor.decode(token)
    except ValueError as error:
        raise InvalidInput("cursor is not one this API returned", field="cursor") from error
    if not fields.EARLIEST <= cursor.created_at < fields.LATEST:
        raise InvalidInput("cursor is not one this API returned", field="cursor")
    return cursor


class BulkRequest(InputModel):
    """A bulk action on chosen tasks (ids) or on every task a filter matches (filter): one of
    the two, never both, never neither (an empty filter matches every task)."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["ids"]}, {"required": ["filter"]}]}
    )

    action: bulk_actions.BulkAction
    ids: (
        Annotated[list[UUID], Field(min_length=1, max_length=bulk_actions.MAX_IDS)]
        | SkipJsonSchema[None]
    ) = None
    filter: FilterFields | SkipJsonSchema[None] = None
    preview: bool = Field(False, strict=True, description="only count: change nothing")

    @model_validator(mode="before")
    @classmethod
    def _one_target(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = [name for name in ("ids", "filter") if name in data]
            for name in given:
                if data[name] is None:
                    raise ValueError(f"{name} must not be null")
            if len(given) != 1:
                raise ValueError("name the tasks (ids) or a filter: one of them")
        return data


class BulkAnswer(CamelModel):
    action: bulk_actions.BulkAction
    matched: int
    eligible: int
    applied: bool
    changed: int
    skipped: int
    limit: int = bulk_actions.MAX_TASKS


@router.post(":bulk", response_model=BulkAnswer, responses=responses(413))
async def bulk_action(body: BulkRequest, uow: UnitDep, caller: CallerDep) -> BulkAnswer:
    """Cancel, retry or run now the tasks `ids` names or that `filter` matches (the caller's
    own, or anyone's for admins). `preview` counts: `matched` tasks, of which `eligible` are in
    a status the action applies to. More than 10,000 eligible tasks are refused (422): narrow
    the filter. Each task changes as its single action would change it, recorded with the
    caller as actor; tasks that changed meanwhile are `skipped`."""
    outcome = await bulk_actions.apply(
        uow,
        caller,
        body.action,
        filters=None if body.filter is None else filters_of(body.filter),
        ids=body.ids,
        preview=body.preview,
        now=utcnow(),
    )
    return BulkAnswer(
        action=outcome.action,
        matched=outcome.matched,
        eligible=outcome.eligible,
        applied=outcome.applied,
        changed=outcome.changed,
        skipped=outcome.skipped,
    )


ETAG_HEADER = {
    "ETag": {
        "description": 'The task\'s version, W/"<version>": send it as If-Match to PATCH',
        "schema": {"type": "string", "maxLength": 16},
    }
}


#: A task answer that names its version.
TAGGED: dict[int | str, dict[str, Any]] = {200: {"headers": ETAG_HEADER}}


def _tagged(task: TaskRecord, response: Response) -> TaskPublic:
    response.headers["ETag"] = etags.etag(task.version)
    return TaskPublic.of(task)


@router.get(
    "/{task_id}",
    response_model=TaskPublic,
    responses=TAGGED | responses(404),
)
async def get_task(
    task_id: UUID, uow: UnitDep, caller: CallerDep, response: Response
) -> TaskPublic:
    """The task; its ETag header names its version (for PATCH's If-Match)."""
    return _tagged(await task_usecases.get(uow, caller, task_id), response)


class TaskUpdate(InputModel):
    """The fields to change; a field left out stays. null resets: name, description,
    scheduledAt (due now) and notificationSettings are cleared, tags emptied, params {} (checked
    again), priority and maxRetries the task type's defaults."""

    name: fields.Title | None = None
    description: fields.Description | None = None
    tags: fields.Tags | None = None
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    scheduled_at: fields.Instant | None = Field(
        None, description="future: scheduled then; past, now or null: pending, due now"
    )
    params: fields.Params | None = None
    max_retries: fields.Retries | None = None
    notification_settings: NotificationSettings | None = None

    _tags = field_validator("tags")(fields.unique_tags)

    def edit(self) -> TaskEdit:
        return TaskEdit(
            given=frozenset(self.model_fields_set),
            name=self.name,
            description=self.description,
            tags=tuple(self.tags or ()),
            priority=None if self.priority is None else Priority.parse(self.priority),
            scheduled_at=self.scheduled_at,
            params=self.params or {},
            max_retries=self.max_retries,
            notification_settings=(
                None if self.notification_settings is None else self.notification_settings.stored()
            ),
        )


@router.patch(
    "/{task_id}",
    response_model=TaskPublic,
    responses=TAGGED | responses(403, 404, 409, 412),
)
async def update_task(
    task_id: UUID,
    body: TaskUpdate,
    uow: UnitDep,
    caller: CallerDep,
    resources: ResourcesDep,
    response: Response,
    if_match: etags.IfMatchDep = None,
) -> TaskPublic:
    """Change a task that has not started (scheduled, waiting or pending; 409 otherwise).
    With If-Match (the ETag of GET), 412 when the task changed since. A new scheduledAt moves
    it between scheduled and pending. Params are checked by the catalog again."""
    task = await task_edits.update(
        uow,
        caller,
        task_id,
        body.edit(),
        catalog=resources.catalog,
        now=utcnow(),
        if_match=if_match,
    )
    return _tagged(task, response)


@router.post("/{task_id}/run", response_model=TaskPublic, responses=responses(404, 409))
async def run_task_now(
    task_id: UUID, uow: UnitDep, caller: CallerDep, response: Response
) -> TaskPublic:
    """A scheduled task becomes pending and due now (409 in any other status)."""
    return _tagged(await task_edits.run_now(uow, caller, task_id, now=utcnow()), response)


@router.get("/{task_id}/download", response_model=DownloadLink, responses=responses(404))
async def download_task_file(
    task_id: UUID,
    uow: UnitDep,
    caller: CallerDep,
    resources: ResourcesDep,
    file: Annotated[Literal["output", "errorReport"], Query()] = "output",
) -> DownloadLink:
    """A short-lived URL of the task's output file (or, with file=errorReport, its error report)."""
    return await downloads.task_download_link(
        uow,
        resources.store,
        caller,
        task_id,
        purpose=FilePurpose.OUTPUT if file == "output" else FilePurpose.ERROR_REPORT,
        policy=FilePolicy.from_settings(resources.settings),
        now=utcnow(),
    )


@router.post("/{task_id}/submit", response_model=TaskPublic, responses=responses(404, 409, 413))
async def submit_task(
    task_id: UUID, uow: UnitDep, caller: CallerDep, resources: ResourcesDep
) -> TaskPublic:
    """Confirm that the input file was uploaded (to the presigned S3 URL): the task starts.

    409 while the bytes are not in the store yet. Uploads through the service's own URL
    (local store) start the task by themselves; submitting them again is harmless.
    """
    task = await confirmation.submit(
        uow,
        resources.store,
        caller,
        task_id,
        policy=FilePolicy.from_settings(resources.settings),
        now=utcnow(),
    )
    return TaskPublic.of(task)


@router.post("/{task_id}/cancel", response_model=TaskPublic, responses=responses(404, 409))
async def cancel_task(task_id: UUID, uow: UnitDep, caller: CallerDep) -> TaskPublic:
    """Pending or scheduled: cancelled at once. Processing: the handler stops at its next report."""
    return TaskPublic.of(await task_usecases.cancel(uow, caller, task_id, now=utcnow()))


@router.post("/{task_id}/retry", response_model=TaskPublic, responses=responses(404, 409))
async def retry_task(task_id: UUID, uow: UnitDep, caller: CallerDep) -> TaskPublic:
    """Run a failed or cancelled task again."""
    return TaskPublic.of(await task_usecases.retry(uow, caller, task_id, now=utcnow()))


@router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(404, 409))
async def delete_task(task_id: UUID, uow: UnitDep, caller: CallerDep) -> Response:
    """Soft delete: the task disappears from reads; its history is kept until retention."""
    await task_usecases.delete(uow, caller, task_id, now=utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)
