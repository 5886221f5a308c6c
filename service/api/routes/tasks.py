"""/tasks: create, read, list, cancel, retry, soft delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Query, Response, status
from pydantic import Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from service.api import fields
from service.api.deps import CallerDep, ResourcesDep, SessionDep
from service.api.idempotency import IdempotencyKeyDep
from service.api.json_body import BoundedRoute
from service.api.schemas import InputModel, TaskCreate, TaskPage, TaskPublic
from service.bootstrap import Resources
from service.clock import utcnow
from service.db.repositories.tasks import Cursor, TaskFilters
from service.domain.callers import Caller
from service.domain.errors import InvalidInput
from service.domain.tasks import Priority, Queue, TaskStatus
from service.usecases import queries, task_files, tasks as task_usecases, uploads
from service.usecases.files import DownloadLink, FilePolicy, FilePurpose, Upload
from service.usecases.tasks import IdempotencyKey
from service.usecases.views import TaskView
from service.web.problems import CALLER_RESPONSES, responses

router = APIRouter(
    prefix="/tasks", tags=["tasks"], responses=CALLER_RESPONSES, route_class=BoundedRoute
)

#: Operation names that scope Idempotency-Keys (a key of POST /tasks is not one of /bulk/export).
CREATE_OPERATION = "tasks.create"


class TaskCreated(TaskView):
    """The new task; with a fileName, also where to PUT the input file (uploadUrl)."""

    upload_url: str | None = None
    upload_headers: dict[str, str] | None = None
    upload_expires_at: datetime | None = None


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
    session: SessionDep,
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
    key = None if idempotency_key is None else IdempotencyKey(idempotency_key, CREATE_OPERATION)
    task, upload, created = await create_with_upload(
        body, session, caller, resources, key, traceparent
    )
    return answer_created(task, upload, created, response)


async def create_with_upload(
    body: TaskCreate,
    session: AsyncSession,
    caller: Caller,
    resources: Resources,
    idempotency: IdempotencyKey | None,
    traceparent: str | None = None,
) -> tuple[TaskView, Upload | None, bool]:
    """The task (new, or the first one of a repeated Idempotency-Key), its input upload (when
    created with a fileName and still waiting for the bytes) and whether it is new."""
    if body.input_file_id is not None:
        await task_files.check_input(session, caller, body.input_file_id)
    new = task_usecases.NewTask(
        task_type=body.task_type,
        entity_type=body.entity_type,
        priority=None if body.priority is None else Priority.parse(body.priority),
        queue=Queue(body.queue) if body.queue else None,
        params=body.params,
        file_name=body.file_name,
        file_size=body.file_size,
        input_file_id=body.input_file_id,
        scheduled_at=body.scheduled_at,
        max_retries=body.max_retries,
        template_id=body.template_id,
        file_content_type=body.file_content_type,
        file_sha256=None if body.file_sha256 is None else body.file_sha256.lower(),
    )
    task, created = await task_usecases.create(
        session,
        caller,
        new,
        catalog=resources.catalog,
        now=utcnow(),
        idempotency=idempotency,
        traceparent=traceparent,
    )
    task, upload = await task_files.upload_for_task(
        session,
        resources.store,
        caller,
        task,
        content_type=new.file_content_type,
        sha256=new.file_sha256,
        policy=FilePolicy.from_settings(resources.settings),
        now=utcnow(),
    )
    return task, upload, created


def answer_created(
    task: TaskView, upload: Upload | None, created: bool, response: Response
) -> TaskCreated:
    """201 with Location (200 for a repeated Idempotency-Key), and the upload URL if any."""
    response.headers["Location"] = f"/api/v1/operations/tasks/{task.id}"
    if not created:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    if upload is None:
        return TaskCreated.model_validate(task.model_dump())
    extra = {"upload_url": upload.upload_url, "upload_headers": upload.upload_headers}
    return TaskCreated.model_validate(
        task.model_dump() | extra | {"upload_expires_at": upload.expires_at}
    )


class ListQuery(InputModel):
    page: fields.PageNumber = 1
    page_size: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=200, description="nextCursor of the last page")
    task_type: str | None = Field(None, max_length=64)
    entity_type: str | None = Field(None, max_length=64)
    status: str | None = Field(
        None, max_length=200, description="one status or a comma-separated list"
    )
    requested_by: str | None = Field(None, max_length=128)
    start_date: fields.Instant | None = None
    end_date: fields.Instant | None = None
    search: str | None = Field(None, max_length=200)

    @field_validator("status")
    @classmethod
    def _statuses(cls, value: str | None) -> str | None:
        if value is not None:
            bad = [s for s in value.split(",") if s.strip() not in TaskStatus.__members__.values()]
            if bad:
                allowed = ", ".join(s.value for s in TaskStatus)
                raise ValueError(f"unknown status {bad[0]!r}; allowed: {allowed}")
        return value


@router.get("", response_model=TaskPage)
async def list_tasks(
    query: Annotated[ListQuery, Query()],
    session: SessionDep,
    caller: CallerDep,
    resources: ResourcesDep,
) -> TaskPage:
    """Newest first. Page with page/pageSize, or follow nextCursor for deep lists.

    An item's params longer than OPS_LIST_PARAMS_MAX_BYTES (4 KiB) of JSON are left out:
    `params` is null and `paramsOmitted` true; GET /tasks/{id} has them.
    """
    cursor = _cursor(query.cursor)
    if query.start_date and query.end_date and query.start_date > query.end_date:
        raise InvalidInput("startDate is after endDate", field="startDate")
    filters = TaskFilters(
        task_type=query.task_type,
        entity_type=query.entity_type,
        status=[TaskStatus(s.strip()) for s in query.status.split(",")] if query.status else (),
        requested_by=query.requested_by,
        start_date=query.start_date,
        end_date=query.end_date,
        search=query.search,
    )
    page = await queries.list_tasks(
        session,
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


@router.get("/{task_id}", response_model=TaskPublic, responses=responses(404))
async def get_task(task_id: UUID, session: SessionDep, caller: CallerDep) -> TaskPublic:
    return await task_usecases.get(session, caller, task_id)


@router.get("/{task_id}/download", response_model=DownloadLink, responses=responses(404))
async def download_task_file(
    task_id: UUID,
    session: SessionDep,
    caller: CallerDep,
    resources: ResourcesDep,
    file: Annotated[Literal["output", "errorReport"], Query()] = "output",
) -> DownloadLink:
    """A short-lived URL of the task's output file (or, with file=errorReport, its error report)."""
    return await task_files.task_download_link(
        session,
        resources.store,
        caller,
        task_id,
        purpose=FilePurpose.OUTPUT if file == "output" else FilePurpose.ERROR_REPORT,
        policy=FilePolicy.from_settings(resources.settings),
        now=utcnow(),
    )


@router.post("/{task_id}/submit", response_model=TaskPublic, responses=responses(404, 409, 413))
async def submit_task(
    task_id: UUID, session: SessionDep, caller: CallerDep, resources: ResourcesDep
) -> TaskPublic:
    """Confirm that the input file was uploaded (to the presigned S3 URL): the task starts.

    409 while the bytes are not in the store yet. Uploads through the service's own URL
    (local store) start the task by themselves; submitting them again is harmless.
    """
    return await uploads.submit(
        session,
        resources.store,
        caller,
        task_id,
        policy=FilePolicy.from_settings(resources.settings),
        now=utcnow(),
    )


@router.post("/{task_id}/cancel", response_model=TaskPublic, responses=responses(404, 409))
async def cancel_task(task_id: UUID, session: SessionDep, caller: CallerDep) -> TaskPublic:
    """Pending or scheduled: cancelled at once. Processing: the handler stops at its next report."""
    return await task_usecases.cancel(session, caller, task_id, now=utcnow())


@router.post("/{task_id}/retry", response_model=TaskPublic, responses=responses(404, 409))
async def retry_task(task_id: UUID, session: SessionDep, caller: CallerDep) -> TaskPublic:
    """Run a failed or cancelled task again."""
    return await task_usecases.retry(session, caller, task_id, now=utcnow())


@router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(404, 409))
async def delete_task(task_id: UUID, session: SessionDep, caller: CallerDep) -> Response:
    """Soft delete: the task disappears from reads; its history is kept until retention."""
    await task_usecases.delete(session, caller, task_id, now=utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)
