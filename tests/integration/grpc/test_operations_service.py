"""Every method of api.operations.v1.OperationsService through the generated client, against
the API app's own gRPC server, on SQLite and PostgreSQL: the rules of REST, as status codes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2, timestamp_pb2

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.tables import tasks_table
from service.rpc.gen import operations_pb2 as pb, operations_pb2_grpc as pb_grpc
from service.usecases import outputs
from service.usecases.files import FilePolicy
from tests.integration.api.support import count, finish, start
from tests.integration.grpc.support import ADMIN, ALICE, BOB, SERVICE, refused, user

pytestmark = pytest.mark.usefixtures("_trail")

if TYPE_CHECKING:  # mypy-protobuf's type of a stub on an aio channel (no runtime class)
    Stub = pb_grpc.OperationsServiceAsyncStub
REST = "/api/v1/operations/tasks"
Code = grpc.StatusCode


def params(**values: str | float | bool | None) -> struct_pb2.Struct:
    holder = struct_pb2.Struct()
    holder.update(values)
    return holder


async def sleep_task(stub: Stub, who: tuple[tuple[str, str], ...] = ALICE) -> pb.Task:
    request = pb.CreateTaskRequest(task_type="sleep", params=params(seconds=1))
    answer = await stub.CreateTask(request, metadata=who)
    assert answer.created
    return answer.task


class TestTasks:
    async def test_create_get_and_list_agree_with_rest(
        self, stub: Stub, api: httpx.AsyncClient
    ) -> None:
        request = pb.CreateTaskRequest(
            task_type="sleep",
            params=params(seconds=5),
            priority=pb.TASK_PRIORITY_HIGH,
            tags=["nightly", "eu"],
            name="a nap",
        )
        answer = await stub.CreateTask(request, metadata=ALICE)
        task = answer.task
        assert answer.created
        assert not answer.HasField("upload_url")
        assert (task.task_type, task.status, task.priority) == (
            "sleep",
            pb.TASK_STATUS_PENDING,
            pb.TASK_PRIORITY_HIGH,
        )
        assert (task.requested_by, task.queue, list(task.tags)) == (
            "alice",
            pb.TASK_QUEUE_DEFAULT,
            ["nightly", "eu"],
        )
        assert dict(task.params) == {"seconds": 5}
        assert task.name == "a nap"
        assert not task.HasField("entity_type")
        assert task.HasField("created_at")
        # committed before the answer: REST reads it, field for field
        rest = (await api.get(f"{REST}/{task.id}", headers={"X-User-ID": "alice"})).json()
        assert rest["params"] == {"seconds": 5}
        assert rest["priority"] == "high"
        assert rest["createdAt"].startswith(task.created_at.ToDatetime().isoformat()[:19])
        assert await stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=ALICE) == task

        other = await sleep_task(stub, BOB)
        page = await stub.ListTasks(pb.ListTasksRequest(), metadata=ALICE)
        assert [t.id for t in page.items] == [task.id]
        assert page.total == 1
        assert (page.page, page.page_size) == (1, 20)
        assert not page.HasField("next_cursor")
        everyone = await stub.ListTasks(pb.ListTasksRequest(page_size=1), metadata=ADMIN)
        assert [t.id for t in everyone.items] == [other.id]
        assert everyone.total == 2
        deeper = pb.ListTasksRequest(page_size=1, cursor=everyone.next_cursor)
        assert [t.id for t in (await stub.ListTasks(deeper, metadata=ADMIN)).items] == [task.id]
        filtered = pb.ListTasksRequest(
            statuses=[pb.TASK_STATUS_CANCELLED, pb.TASK_STATUS_FAILED], requested_by="bob"
        )
        assert not (await stub.ListTasks(filtered, metadata=ADMIN)).items
        by_type = pb.ListTasksRequest(task_type="sleep", statuses=[pb.TASK_STATUS_PENDING])
        assert (await stub.ListTasks(by_type, metadata=ADMIN)).total == 2

    async def test_cancel_retry_and_delete(self, stub: Stub, api: httpx.AsyncClient) -> None:
        task = await sleep_task(stub)
        cancelled = await stub.CancelTask(pb.CancelTaskRequest(id=task.id), metadata=ALICE)
        assert cancelled.status == pb.TASK_STATUS_CANCELLED
        again = await refused(
            stub.CancelTask(pb.CancelTaskRequest(id=task.id), metadata=ALICE),
            Code.FAILED_PRECONDITION,
        )
        assert again.reason == "ILLEGAL_TRANSITION"
        retried = await stub.RetryTask(pb.RetryTaskRequest(id=task.id), metadata=ALICE)
        assert (retried.status, retried.retry_count) == (pb.TASK_STATUS_PENDING, 1)
        assert await stub.DeleteTask(pb.DeleteTaskRequest(id=task.id), metadata=ALICE) == (
            pb.DeleteTaskResponse()
        )
        await refused(stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=ALICE), Code.NOT_FOUND)
        response = await api.get(f"{REST}/{task.id}", headers={"X-User-ID": "alice"})
        assert response.status_code == 404

    async def test_a_repeated_idempotency_key_answers_the_first_task(self, stub: Stub) -> None:
        request = pb.CreateTaskRequest(task_type="noop", idempotency_key="order-42")
        first = await stub.CreateTask(request, metadata=ALICE)
        second = await stub.CreateTask(request, metadata=ALICE)
        assert first.created
        assert not second.created
        assert second.task.id == first.task.id
        other = pb.CreateTaskRequest(task_type="sleep", idempotency_key="order-42")
        mismatch = await refused(stub.CreateTask(other, metadata=ALICE), Code.INVALID_ARGUMENT)
        assert "idempotency_key" in mismatch.fields

    async def test_a_file_name_gets_an_upload_url(self, stub: Stub) -> None:
        request = pb.CreateTaskRequest(
            task_type="import", entity_type="product", file_name="products.csv"
        )
        answer = await stub.CreateTask(request, metadata=ALICE)
        assert answer.task.status == pb.TASK_STATUS_WAITING
        assert answer.upload_url
        assert answer.upload_headers["Content-Type"] == "text/csv"
        assert answer.upload_expires_at.ToDatetime(UTC) > datetime.now(UTC)


class TestProgress:
    async def test_the_service_token_reports_progress(
        self, stub: Stub, resources: Resources
    ) -> None:
        task = await sleep_task(stub)
        await start(resources, task.id)
        report = pb.UpdateTaskProgressRequest(
            id=task.id, progress=40, total_items=10, processed_items=4, message="halfway"
        )
        ack = await stub.UpdateTaskProgress(report, metadata=SERVICE)
        assert (ack.status, ack.progress, ack.cancel_requested) == (
            pb.TASK_STATUS_PROCESSING,
            40,
            False,
        )
        seen = await stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=ALICE)
        assert (seen.progress, seen.total_items, seen.processed_items) == (40, 10, 4)
        logs = await stub.GetTaskLogs(pb.GetTaskLogsRequest(id=task.id), metadata=ALICE)
        assert [entry.message for entry in logs.items] == ["halfway"]
        assert (logs.total, logs.page, logs.page_size, logs.items[0].level) == (1, 1, 100, "info")

        await stub.CancelTask(pb.CancelTaskRequest(id=task.id), metadata=ALICE)
        ack = await stub.UpdateTaskProgress(
            pb.UpdateTaskProgressRequest(id=task.id, progress=50), metadata=SERVICE
        )
        assert ack.cancel_requested  # the executor learns it should stop

    async def test_progress_needs_the_service_token(self, stub: Stub, resources: Resources) -> None:
        task = await sleep_task(stub)
        await start(resources, task.id)
        report = pb.UpdateTaskProgressRequest(id=task.id, progress=10)
        denied = await refused(
            stub.UpdateTaskProgress(report, metadata=ALICE), Code.PERMISSION_DENIED
        )
        assert "service token" in denied.message
        assert denied.reason == "FORBIDDEN"
        admin = await refused(
            stub.UpdateTaskProgress(report, metadata=ADMIN), Code.PERMISSION_DENIED
        )
        assert admin.reason == "FORBIDDEN"
        await refused(stub.UpdateTaskProgress(report), Code.UNAUTHENTICATED)
        wrong = (("x-service-token", "not-the-token"),)
        await refused(stub.UpdateTaskProgress(report, metadata=wrong), Code.UNAUTHENTICATED)
        seen = await stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=ALICE)
        assert seen.progress == 0
        bearer = (("authorization", "Bearer test-service-token"),)
        assert (await stub.UpdateTaskProgress(report, metadata=bearer)).progress == 10

    async def test_bad_progress_is_refused_by_field(self, stub: Stub, resources: Resources) -> None:
        task = await sleep_task(stub)
        pending = pb.UpdateTaskProgressRequest(id=task.id, progress=10)
        await refused(stub.UpdateTaskProgress(pending, metadata=SERVICE), Code.FAILED_PRECONDITION)
        await start(resources, task.id)
        over = pb.UpdateTaskProgressRequest(id=task.id, progress=101)
        bad = await refused(stub.UpdateTaskProgress(over, metadata=SERVICE), Code.INVALID_ARGUMENT)
        assert list(bad.fields) == ["progress"]
        past = pb.UpdateTaskProgressRequest(id=task.id, total_items=3, processed_items=4)
        bad = await refused(stub.UpdateTaskProgress(past, metadata=SERVICE), Code.INVALID_ARGUMENT)
        assert list(bad.fields) == ["processed_items"]
        seen = await stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=ALICE)
        assert (seen.progress, seen.HasField("total_items")) == (0, False)  # rolled back


class TestHistory:
    async def test_events_and_logs(self, stub: Stub, resources: Resources) -> None:
        task = await sleep_task(stub)
        await finish(resources, await start(resources, task.id), "completed")
        events = await stub.GetTaskEvents(pb.GetTaskEventsRequest(id=task.id), metadata=ALICE)
        kinds = [e.event_type.rsplit(".", 1)[1] for e in events.items]
        assert kinds == ["created", "started", "completed"]
        assert events.items[0].actor == "alice"
        assert events.items[-1].to_status == "completed"
        assert all(e.task_id == task.id and e.HasField("created_at") for e in events.items)
        for level in ("debug", "error"):
            request = pb.GetTaskLogsRequest(id=task.id, level=level, page=1, page_size=500)
            answer = await stub.GetTaskLogs(request, metadata=ALICE)
            assert answer.page_size == 500
        bad = pb.GetTaskLogsRequest(id=task.id, level="loud", page_size=501)
        refusal = await refused(stub.GetTaskLogs(bad, metadata=ALICE), Code.INVALID_ARGUMENT)
        assert set(refusal.fields) == {"level", "page_size"}


class TestDownload:
    async def test_a_task_with_an_output_has_a_download_url(
        self, stub: Stub, api: httpx.AsyncClient, app_resources: Resources
    ) -> None:
        request = pb.CreateTaskRequest(task_type="export", entity_type="order")
        task = (await stub.CreateTask(request, metadata=ALICE)).task
        ask = pb.GetDownloadUrlRequest(id=task.id)
        missing = await refused(stub.GetDownloadUrl(ask, metadata=ALICE), Code.NOT_FOUND)
        assert "no output file" in missing.message
        key = f"tasks/{task.id}/orders.csv"
        with app_resources.store.open_write(key, "text/csv") as stream:
            stream.write(b"id,total\n1,9.99\n")
        async with app_resources.unit() as uow:
            await outputs.register_output(
                uow,
                app_resources.store,
                UUID(task.id),
                key,
                file_name="orders.csv",
                content_type="text/csv",
                policy=FilePolicy.from_settings(app_resources.settings),
                now=utcnow(),
            )
        link = await stub.GetDownloadUrl(ask, metadata=ALICE)
        assert link.expires_at.ToDatetime(UTC) > datetime.now(UTC)
        got = await api.get(link.download_url)  # the local store's URL, served by the API
        assert (got.status_code, got.content) == (200, b"id,total\n1,9.99\n")
        await refused(stub.GetDownloadUrl(ask, metadata=BOB), Code.NOT_FOUND)
        report = pb.GetDownloadUrlRequest(id=task.id, file=pb.DOWNLOAD_FILE_ERROR_REPORT)
        await refused(stub.GetDownloadUrl(report, metadata=ALICE), Code.NOT_FOUND)
        odd = pb.GetDownloadUrlRequest(id=task.id, file=7)  # type: ignore[arg-type]
        refusal = await refused(stub.GetDownloadUrl(odd, metadata=ALICE), Code.INVALID_ARGUMENT)
        assert list(refusal.fields) == ["file"]


def _calls(task_id: str) -> list[tuple[str, object]]:
    return [
        ("GetTask", pb.GetTaskRequest(id=task_id)),
        ("CancelTask", pb.CancelTaskRequest(id=task_id)),
        ("RetryTask", pb.RetryTaskRequest(id=task_id)),
        ("DeleteTask", pb.DeleteTaskRequest(id=task_id)),
        ("GetTaskLogs", pb.GetTaskLogsRequest(id=task_id)),
        ("GetTaskEvents", pb.GetTaskEventsRequest(id=task_id)),
        ("GetDownloadUrl", pb.GetDownloadUrlRequest(id=task_id)),
    ]


class TestRules:
    async def test_no_identity_is_unauthenticated(self, stub: Stub, resources: Resources) -> None:
        task = await sleep_task(stub)
        calls = [
            *_calls(task.id),
            ("CreateTask", pb.CreateTaskRequest(task_type="noop")),
            ("ListTasks", pb.ListTasksRequest()),
        ]
        for method, request in calls:
            refusal = await refused(getattr(stub, method)(request), Code.UNAUTHENTICATED)
            assert "X-User-ID" in refusal.message
            assert refusal.reason == "UNAUTHENTICATED"
        blank = await refused(
            stub.ListTasks(pb.ListTasksRequest(), metadata=user(" ")), Code.UNAUTHENTICATED
        )
        assert blank.reason == "UNAUTHENTICATED"
        long = await refused(
            stub.ListTasks(pb.ListTasksRequest(), metadata=user("x" * 129)), Code.INVALID_ARGUMENT
        )
        assert list(long.fields) == ["x-user-id"]
        assert await count(resources, tasks_table) == 1

    async def test_another_users_task_is_not_found(self, stub: Stub) -> None:
        task = await sleep_task(stub)
        for method, request in _calls(task.id):
            refusal = await refused(getattr(stub, method)(request, metadata=BOB), Code.NOT_FOUND)
            assert refusal.reason == "NOT_FOUND"
            assert task.id in refusal.message
        seen = await stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=ADMIN)
        assert seen.status == pb.TASK_STATUS_PENDING  # still there, untouched
        nobody = str(uuid4())
        await refused(stub.GetTask(pb.GetTaskRequest(id=nobody), metadata=ADMIN), Code.NOT_FOUND)

    async def test_bad_input_names_the_field(self, stub: Stub, resources: Resources) -> None:
        cases: list[tuple[pb.CreateTaskRequest, str]] = [
            (pb.CreateTaskRequest(), "task_type"),
            (pb.CreateTaskRequest(task_type="sleep", params=params(seconds="5")), "params.seconds"),
            (
                pb.CreateTaskRequest(task_type="sleep", params=params(seconds=90_000)),
                "params.seconds",
            ),
            (pb.CreateTaskRequest(task_type="sleep", params=params(naps=2)), "params.naps"),
            (pb.CreateTaskRequest(task_type="noop", max_retries=21), "max_retries"),
            (pb.CreateTaskRequest(task_type="noop", tags=["a b"]), "tags.0"),
            (pb.CreateTaskRequest(task_type="noop", name="x" * 201), "name"),
            (pb.CreateTaskRequest(task_type="noop", priority=9), "priority"),  # type: ignore[arg-type]
            (pb.CreateTaskRequest(task_type="noop", idempotency_key=""), "idempotency_key"),
            (
                pb.CreateTaskRequest(
                    task_type="noop", scheduled_at=timestamp_pb2.Timestamp(seconds=-86_400)
                ),
                "scheduled_at",
            ),
            (pb.CreateTaskRequest(task_type="export", entity_type="planet"), "entity_type"),
            (pb.CreateTaskRequest(task_type="export"), "entity_type"),
        ]
        for request, field in cases:
            refusal = await refused(stub.CreateTask(request, metadata=ALICE), Code.INVALID_ARGUMENT)
            assert field in refusal.fields, (request, refusal)
            assert refusal.message
        for method, by_id in _calls("not-a-uuid"):
            refusal = await refused(
                getattr(stub, method)(by_id, metadata=ALICE), Code.INVALID_ARGUMENT
            )
            assert list(refusal.fields) == ["id"]
        listing = pb.ListTasksRequest(page_size=101, cursor="nonsense")
        refusal = await refused(stub.ListTasks(listing, metadata=ALICE), Code.INVALID_ARGUMENT)
        assert "page_size" in refusal.fields
        later, earlier = (
            timestamp_pb2.Timestamp(seconds=2_000_000_000),
            timestamp_pb2.Timestamp(seconds=1),
        )
        dates = pb.ListTasksRequest(start_date=later, end_date=earlier)
        refusal = await refused(stub.ListTasks(dates, metadata=ALICE), Code.INVALID_ARGUMENT)
        assert list(refusal.fields) == ["start_date"]
        assert await count(resources, tasks_table) == 0  # nothing was written

    async def test_the_catalog_decides_what_may_be_created(
        self, stub: Stub, resources: Resources
    ) -> None:
        unknown = pb.CreateTaskRequest(task_type="teleport")
        refusal = await refused(stub.CreateTask(unknown, metadata=ALICE), Code.INVALID_ARGUMENT)
        assert list(refusal.fields) == ["task_type"]
        assert "unknown task type" in refusal.message
        sweep = pb.CreateTaskRequest(task_type="maintenance", entity_type="outbox-sweep")
        denied = await refused(stub.CreateTask(sweep, metadata=ALICE), Code.PERMISSION_DENIED)
        assert denied.reason == "FORBIDDEN"
        assert await count(resources, tasks_table) == 0
        made = await stub.CreateTask(sweep, metadata=ADMIN)
        assert made.task.entity_type == "outbox-sweep"
        by_service = await stub.CreateTask(sweep, metadata=SERVICE)
        assert by_service.task.requested_by == "service"


class TestHealth:
    async def test_health(self, stub: Stub) -> None:
        health = await stub.Health(pb.HealthRequest())  # no identity needed
        assert health.status == "ok"
        assert health.version
        assert health.checks["database"] == "up"
        assert health.checks["storage"] == "up"
