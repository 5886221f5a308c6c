"""api.operations.v1.OperationsService: each call parses its request with the REST models,
runs one use case in its own unit of work (committed before the answer), and answers.

The rules are REST's: identity from metadata (`x-user-id`, `x-user-roles`, `x-service-token`,
`authorization: Bearer`) through service.web.callers.identify, the task-type catalog and the input
bounds through service.api's request models, errors through service.rpc.errors.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Literal, TypeVar
from uuid import UUID

from grpc import aio
from pydantic import Field

from service import __version__
from service.api import fields
from service.api.idempotency import parse_key
from service.api.routes.tasks import CREATE_OPERATION, ListQuery, task_filters
from service.api.schemas import InputModel, ProgressReport, TaskCreate
from service.bootstrap import Resources
from service.clock import utcnow
from service.domain.callers import SERVICE_ROLE, Caller
from service.domain.errors import Forbidden, InvalidInput
from service.rpc import convert, errors
from service.rpc.gen import operations_pb2 as pb, operations_pb2_grpc as pb_grpc
from service.usecases import (
    downloads,
    logs as log_usecases,
    progress as progress_usecases,
    queries,
    submissions,
    tasks as task_usecases,
)
from service.usecases.files import FilePolicy, FilePurpose
from service.usecases.tasks import IdempotencyKey
from service.usecases.views import TaskPublic
from service.web import probes
from service.web.callers import USER_ID_MAX, USER_ROLES_MAX, identify

Request = TypeVar("Request")
Response = TypeVar("Response")
Context = aio.ServicerContext[Any, Any]
Method = Callable[[Any, Request, Context], Awaitable[Response]]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def edge(method: Method[Request, Response]) -> Method[Request, Response]:
    """Answer any exception of the call as its status (service.rpc.errors), the way the REST
    app's exception handlers answer a problem; the call's unit of work has rolled back by then."""

    @functools.wraps(method)
    async def call(self: Any, request: Request, context: Context) -> Response:
        try:
            return await method(self, request, context)
        except Exception as error:  # every exception becomes a status, as in REST
            status = errors.of_exception(error, method.__name__)
        await context.abort(status.code, status.details, status.trailing_metadata)
        raise AssertionError("context.abort returns by raising")

    return call


@contextlib.contextmanager
def _limits(resources: Resources) -> Iterator[None]:
    """The input limits of the settings, where the request models' validators look (as
    service.api.json_body.BoundedRoute sets them for a REST request)."""
    token = fields.LIMITS.set(fields.InputLimits.from_settings(resources.settings))
    try:
        yield
    finally:
        fields.LIMITS.reset(token)


def _text(value: str | None, name: str, max_length: int) -> str | None:
    if value is None:
        return None
    if len(value) > max_length:
        raise InvalidInput(f"is longer than {max_length} characters", field=name)
    if _CONTROL.search(value):
        raise InvalidInput("must not contain control characters", field=name)
    return value


def _task_id(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise InvalidInput("must be a UUID", field="id") from None


class LogsQuery(InputModel):
    """GET /tasks/{id}/logs's query (level, page, pageSize), with its bounds."""

    level: Literal["debug", "info", "warning", "error"] | None = None
    page: fields.PageNumber = 1
    page_size: int = Field(100, ge=1, le=500)


class OperationsServicer(pb_grpc.OperationsServiceServicer):
    """The service's methods over the process's resources."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def _caller(self, context: Context) -> Caller:
        """The caller, from the metadata the gateway forwards, by REST's rules."""
        metadata = _metadata(context)
        scheme, _, credentials = metadata.get("authorization", "").partition(" ")
        return await identify(
            self.resources,
            user_id=_text(metadata.get("x-user-id"), "x-user-id", USER_ID_MAX),
            user_roles=_text(metadata.get("x-user-roles"), "x-user-roles", USER_ROLES_MAX),
            service_token=metadata.get("x-service-token"),
            bearer=(credentials.strip() or None) if scheme.lower() == "bearer" else None,
        )

    def _policy(self) -> FilePolicy:
        return FilePolicy.from_settings(self.resources.settings)

    @edge
    async def CreateTask(
        self, request: pb.CreateTaskRequest, context: Context
    ) -> pb.CreateTaskResponse:
        caller = await self._caller(context)
        body: dict[str, Any] = {"task_type": request.task_type}
        body |= convert.present(request, _CREATE_OPTIONAL)
        body |= convert.enum_label(request.priority, convert.PRIORITY_IN, "priority")
        body |= convert.enum_label(request.queue, convert.QUEUE_IN, "queue")
        body |= convert.struct(request, "params") | convert.instant(request, "scheduled_at")
        body |= convert.struct(request, "notification_settings")
        if request.tags:
            body["tags"] = list(request.tags)
        with _limits(self.resources):
            spec = TaskCreate.model_validate(body)
        key = None
        if request.HasField("idempotency_key"):
            key = IdempotencyKey(parse_key(request.idempotency_key), CREATE_OPERATION)
        traceparent = _text(_metadata(context).get("traceparent"), "traceparent", 64)
        submitted = await submissions.submit_one(
            self.resources.unit,
            caller,
            spec.as_new_task(),
            catalog=self.resources.catalog,
            store=self.resources.store,
            policy=self._policy(),
            now=utcnow(),
            idempotency=key,
            traceparent=traceparent,
            group=self.resources.creates,
        )
        answer = pb.CreateTaskResponse(task=convert.task(TaskPublic.of(submitted.task)))
        answer.created = submitted.created
        if submitted.upload is not None:
            answer.upload_url = submitted.upload.upload_url
            answer.upload_headers.update(submitted.upload.upload_headers)
            answer.upload_expires_at.FromDatetime(submitted.upload.expires_at)
        return answer

    @edge
    async def GetTask(self, request: pb.GetTaskRequest, context: Context) -> pb.Task:
        caller = await self._caller(context)
        async with self.resources.unit() as uow:
            record = await task_usecases.get(uow, caller, _task_id(request.id))
        return convert.task(TaskPublic.of(record))

    @edge
    async def ListTasks(
        self, request: pb.ListTasksRequest, context: Context
    ) -> pb.ListTasksResponse:
        caller = await self._caller(context)
        query: dict[str, Any] = convert.present(request, _LIST_OPTIONAL)
        query |= {k: v for k, v in [("page", request.page), ("page_size", request.page_size)] if v}
        if request.cursor:
            query["cursor"] = request.cursor
        if request.statuses:
            labels = [
                convert.enum_label(s, convert.STATUS_IN, "statuses") for s in request.statuses
            ]
            query["status"] = ",".join(label["statuses"] for label in labels if label)
        query |= convert.instant(request, "start_date") | convert.instant(request, "end_date")
        parsed = ListQuery.model_validate(query)
        filters, cursor = task_filters(parsed)
        async with self.resources.unit() as uow:
            page = await queries.list_tasks(
                uow,
                caller,
                filters,
                page=parsed.page,
                page_size=parsed.page_size,
                cursor=cursor,
                params_cap=self.resources.settings.list_params_max_bytes,
            )
        answer = pb.ListTasksResponse(
            items=[convert.task(item) for item in page.items],
            total=page.total,
            page=page.page,
            page_size=page.page_size,
        )
        if page.next_cursor is not None:
            answer.next_cursor = page.next_cursor
        return answer

    @edge
    async def CancelTask(self, request: pb.CancelTaskRequest, context: Context) -> pb.Task:
        caller = await self._caller(context)
        async with self.resources.unit() as uow:
            record = await task_usecases.cancel(uow, caller, _task_id(request.id), now=utcnow())
        return convert.task(TaskPublic.of(record))

    @edge
    async def RetryTask(self, request: pb.RetryTaskRequest, context: Context) -> pb.Task:
        caller = await self._caller(context)
        async with self.resources.unit() as uow:
            record = await task_usecases.retry(uow, caller, _task_id(request.id), now=utcnow())
        return convert.task(TaskPublic.of(record))

    @edge
    async def UpdateTaskProgress(
        self, request: pb.UpdateTaskProgressRequest, context: Context
    ) -> pb.UpdateTaskProgressResponse:
        caller = await self._caller(context)
        if SERVICE_ROLE not in caller.roles:
            raise Forbidden("this method is internal: send the service token (x-service-token)")
        task_id = _task_id(request.id)
        report = ProgressReport.model_validate(convert.present(request, _PROGRESS_OPTIONAL))
        now = utcnow()
        update = progress_usecases.ProgressUpdate(
            progress=report.progress,
            total_items=report.total_items,
            processed_items=report.processed_items,
            succeeded_items=report.succeeded_items,
            failed_items=report.failed_items,
        )
        async with self.resources.unit() as uow:
            record = await progress_usecases.report(
                uow,
                task_id,
                update,
                now=now,
                announce=True,
                announce_every=self.resources.settings.progress_interval_seconds,
            )
            if report.message:
                entry = log_usecases.LogEntry(task_id, "info", report.message, now, record.attempts)
                await log_usecases.append(uow, [entry])
        return pb.UpdateTaskProgressResponse(
            status=convert.STATUS_OUT[record.status],
            progress=record.progress,
            cancel_requested=record.cancel_requested,
        )

    @edge
    async def GetDownloadUrl(
        self, request: pb.GetDownloadUrlRequest, context: Context
    ) -> pb.GetDownloadUrlResponse:
        caller = await self._caller(context)
        if request.file not in (0, *_DOWNLOADS):
            raise InvalidInput(f"{request.file} is not one of its enum's values", field="file")
        async with self.resources.unit() as uow:
            link = await downloads.task_download_link(
                uow,
                self.resources.store,
                caller,
                _task_id(request.id),
                purpose=_DOWNLOADS.get(request.file, FilePurpose.OUTPUT),
                policy=self._policy(),
                now=utcnow(),
            )
        return convert.download(link)

    @edge
    async def GetTaskLogs(
        self, request: pb.GetTaskLogsRequest, context: Context
    ) -> pb.GetTaskLogsResponse:
        caller = await self._caller(context)
        given = [("level", request.level), ("page", request.page), ("page_size", request.page_size)]
        query = LogsQuery.model_validate({k: v for k, v in given if v})
        async with self.resources.unit() as uow:
            items, total = await queries.logs(
                uow,
                caller,
                _task_id(request.id),
                level=query.level,
                page=query.page,
                page_size=query.page_size,
            )
        return pb.GetTaskLogsResponse(
            items=[convert.log(item) for item in items],
            total=total,
            page=query.page,
            page_size=query.page_size,
        )

    @edge
    async def GetTaskEvents(
        self, request: pb.GetTaskEventsRequest, context: Context
    ) -> pb.GetTaskEventsResponse:
        caller = await self._caller(context)
        async with self.resources.unit() as uow:
            items = await queries.events(uow, caller, _task_id(request.id))
        return pb.GetTaskEventsResponse(items=[convert.event(item) for item in items])

    @edge
    async def DeleteTask(
        self, request: pb.DeleteTaskRequest, context: Context
    ) -> pb.DeleteTaskResponse:
        caller = await self._caller(context)
        async with self.resources.unit() as uow:
            await task_usecases.delete(uow, caller, _task_id(request.id), now=utcnow())
        return pb.DeleteTaskResponse()

    @edge
    async def Health(self, request: pb.HealthRequest, context: Context) -> pb.HealthResponse:
        """GET /health/ready's verdict (no identity needed): ok when every check is up."""
        ready, checks = await probes.readiness(self.resources)
        return pb.HealthResponse(
            status="ok" if ready else "unavailable",
            version=__version__,
            checks={name: str(check.get("status")) for name, check in checks.items()},
        )


def _metadata(context: Context) -> dict[str, str]:
    """The call's text metadata, the first value of each key (as a header's first value)."""
    metadata: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):
            metadata.setdefault(key.lower(), value)
    return metadata


_CREATE_OPTIONAL = (
    "entity_type",
    "input_file_id",
    "max_retries",
    "template_id",
    "name",
    "description",
    "file_name",
    "file_size",
    "file_content_type",
    "file_sha256",
)
_LIST_OPTIONAL = ("task_type", "entity_type", "requested_by", "search")
_PROGRESS_OPTIONAL = (
    "progress",
    "total_items",
    "processed_items",
    "succeeded_items",
    "failed_items",
    "message",
)
_DOWNLOADS = {
    pb.DOWNLOAD_FILE_OUTPUT: FilePurpose.OUTPUT,
    pb.DOWNLOAD_FILE_ERROR_REPORT: FilePurpose.ERROR_REPORT,
}
