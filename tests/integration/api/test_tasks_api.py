"""/api/v1/operations/tasks: the contract other services and the gateway rely on."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar
from uuid import UUID, uuid4

import httpx
import pytest

from service.api.routes import tasks as task_routes
from service.bootstrap import Resources
from service.db.repositories.tasks import TaskRepository
from service.domain.events import EventType
from tests.fixtures.app import ADMIN, SERVICE, user, wait_until
from tests.integration.api.support import (
    BASE,
    assert_problem,
    counts,
    create,
    event_types,
    finish,
    make_completed,
    make_failed,
    start,
    trail,
    try_start,
)

ALICE = user("alice")
BOB = user("bob")
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOTHING = {"tasks": 0, "events": 0, "outbox": 0}


class Clock:
    """Stands in for the routes' utcnow, so tests choose each task's createdAt."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    frozen = Clock()
    monkeypatch.setattr(task_routes, "utcnow", frozen)
    return frozen


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def listing(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: Any
) -> dict[str, Any]:
    response = await client.get(BASE, params=params, headers=headers or ALICE)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def listed_ids(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: Any
) -> list[str]:
    return [t["id"] for t in (await listing(client, headers, pageSize=100, **params))["items"]]


class TestCreateTask:
    async def test_returns_201_the_task_in_camel_case_and_its_location(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        response = await api.post(
            BASE,
            json={"taskType": "export", "entityType": "product", "params": {"format": "csv"}},
            headers=ALICE,
        )
        assert response.status_code == 201
        body = response.json()
        assert response.headers["location"] == f"{BASE}/{body['id']}"
        assert UUID(body["id"])
        assert body["taskType"] == "export"
        assert body["entityType"] == "product"
        assert body["params"] == {"format": "csv"}
        assert body["status"] == "pending"
        assert body["priority"] == "normal"
        assert body["requestedBy"] == "alice"
        assert body["progress"] == 0
        assert body["retryCount"] == 0
        assert body["maxRetries"] == resources.settings.default_max_retries
        assert body["cancelRequested"] is False
        assert when(body["createdAt"]).tzinfo is not None
        assert all("_" not in key for key in body), "response keys are camelCase"
        assert "requestHash" not in body
        assert await event_types(api, body["id"]) == ["created"]
        assert await counts(resources) == {"tasks": 1, "events": 1, "outbox": 1}

    async def test_accepts_snake_case_input(self, api: httpx.AsyncClient) -> None:
        response = await api.post(
            BASE,
            json={
                "task_type": "import",
                "entity_type": "customer",
                "max_retries": 5,
                "file_name": "customers.csv",
                "file_size": 2048,
                "input_file_id": "f-1",
            },
            headers=ALICE,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["taskType"], body["entityType"]) == ("import", "customer")
        assert (body["maxRetries"], body["fileName"], body["fileSize"]) == (
            5,
            "customers.csv",
            2048,
        )
        assert body["inputFileId"] == "f-1"

    QUEUES: ClassVar[list[tuple[str, str, str | None, str]]] = [
        ("sleep", "normal", None, "default"),
        ("import", "normal", None, "bulk"),
        ("export", "low", None, "bulk"),
        ("sleep", "urgent", None, "urgent"),
        ("import", "urgent", None, "urgent"),
        ("sleep", "high", "bulk", "bulk"),
    ]

    async def test_priority_and_type_choose_the_queue(
        self, api: httpx.AsyncClient, subtests: pytest.Subtests
    ) -> None:
        for task_type, priority, queue, expected in self.QUEUES:
            with subtests.test(taskType=task_type, priority=priority, queue=queue):
                bulk = {"entityType": "product", "inputFileId": "ext-1"}
                extra: dict[str, Any] = bulk if task_type in ("import", "export") else {}
                if task_type == "export":
                    del extra["inputFileId"]
                body = await create(
                    api, taskType=task_type, priority=priority, queue=queue, **extra
                )
                assert (body["priority"], body["queue"]) == (priority, expected)

    async def test_a_future_scheduled_at_makes_a_scheduled_task(
        self, api: httpx.AsyncClient
    ) -> None:
        at = datetime.now(UTC) + timedelta(hours=1)
        body = await create(api, scheduledAt=at.isoformat())
        assert body["status"] == "scheduled"
        assert when(body["scheduledAt"]) == at
        assert when(body["availableAt"]) == at
        assert await event_types(api, body["id"]) == ["scheduled"]

    async def test_a_scheduled_at_in_another_zone_is_the_same_instant(
        self, api: httpx.AsyncClient
    ) -> None:
        at = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
        zoned = at.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
        assert zoned.endswith("+05:30")
        body = await create(api, scheduledAt=zoned)
        assert when(body["scheduledAt"]) == at

    async def test_a_past_scheduled_at_is_pending_at_once(self, api: httpx.AsyncClient) -> None:
        body = await create(api, scheduledAt="2020-01-01T00:00:00Z")
        assert body["status"] == "pending"
        assert await event_types(api, body["id"]) == ["created"]

    async def test_scheduled_at_without_a_timezone_is_422(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        response = await api.post(
            BASE, json={"taskType": "sleep", "scheduledAt": "2030-01-01T00:00:00"}, headers=ALICE
        )
        problem = assert_problem(response, 422, "validation-error")
        assert [e["field"] for e in problem["errors"]] == ["scheduledAt"]
        assert await counts(resources) == NOTHING

    INVALID: ClassVar[list[tuple[dict[str, Any], str]]] = [
        ({}, "taskType"),
        ({"taskType": ""}, "taskType"),
        ({"taskType": "Import Products"}, "taskType"),
        ({"taskType": "x" * 65}, "taskType"),
        ({"taskType": "sleep", "entityType": "Product!"}, "entityType"),
        ({"taskType": "sleep", "priority": "critical"}, "priority"),
        ({"taskType": "sleep", "priority": 3}, "priority"),
        ({"taskType": "sleep", "queue": "fast"}, "queue"),
        ({"taskType": "sleep", "maxRetries": 21}, "maxRetries"),
        ({"taskType": "sleep", "maxRetries": -1}, "maxRetries"),
        ({"taskType": "sleep", "fileSize": -1}, "fileSize"),
        ({"taskType": "sleep", "fileName": ""}, "fileName"),
        ({"taskType": "sleep", "params": [1, 2]}, "params"),
        ({"taskType": "sleep", "scheduledAt": "tomorrow"}, "scheduledAt"),
    ]

    async def test_invalid_input_is_a_problem_with_field_errors_and_writes_nothing(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        for body, field in self.INVALID:
            with subtests.test(body=body):
                response = await api.post(BASE, json=body, headers=ALICE)
                problem = assert_problem(response, 422, "validation-error")
                assert problem["errors"], problem
                assert all(e["field"] and e["reason"] for e in problem["errors"])
                assert field in [e["field"] for e in problem["errors"]]
                assert field in problem["detail"]
        assert (await listing(api))["total"] == 0
        assert await counts(resources) == NOTHING

    UNSTORABLE: ClassVar[list[tuple[bytes, str]]] = [
        (b'{"taskType": "sleep", "params": {"note": "a\\u0000b"}}', "params.note"),
        (b'{"taskType": "sleep", "params": {"a\\u0000": 1}}', "params.a\x00"),
        (b'{"taskType": "sleep", "params": {"rows": [1, {"n": NaN}]}}', "params.rows.1.n"),
        (b'{"taskType": "sleep", "params": {"n": Infinity}}', "params.n"),
        (b'{"taskType": "sleep", "params": {"n": 1e999}}', "params.n"),
        (b'{"taskType": "sleep", "fileName": "a\\u0000.csv"}', "fileName"),
    ]

    async def test_values_postgresql_cannot_store_are_422_on_both_databases(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        headers = {**ALICE, "Content-Type": "application/json"}
        for raw, field in self.UNSTORABLE:
            with subtests.test(body=raw):
                response = await api.post(BASE, content=raw, headers=headers)
                problem = assert_problem(response, 422, "validation-error")
                assert field in [e["field"] for e in problem["errors"]]
        assert await counts(resources) == NOTHING

    async def test_every_bad_field_is_reported_at_once(self, api: httpx.AsyncClient) -> None:
        response = await api.post(
            BASE,
            json={"taskType": "sleep", "priority": "critical", "maxRetries": 99},
            headers=ALICE,
        )
        problem = assert_problem(response, 422)
        assert sorted(e["field"] for e in problem["errors"]) == ["maxRetries", "priority"]

    async def test_a_body_that_is_not_a_json_object_is_422(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        for raw in (b"{not json", b"[1, 2]", b'"sleep"', b""):
            with subtests.test(raw=raw):
                response = await api.post(
                    BASE, content=raw, headers={**ALICE, "Content-Type": "application/json"}
                )
                problem = assert_problem(response, 422, "validation-error")
                assert all(e["field"] and e["reason"] for e in problem["errors"])
        assert await counts(resources) == NOTHING

    async def test_without_a_caller_nothing_is_created(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        response = await api.post(BASE, json={"taskType": "sleep"})
        assert_problem(response, 401, "unauthenticated")
        assert await counts(resources) == NOTHING


class TestImportAndExportChecks:
    """Imports and exports are checked when created: a typo is a 422, not a failed task later."""

    IMPORT: ClassVar[dict[str, Any]] = {
        "taskType": "import",
        "entityType": "product",
        "fileName": "products.csv",
    }
    EXPORT: ClassVar[dict[str, Any]] = {"taskType": "export", "entityType": "order"}
    BAD: ClassVar[list[tuple[dict[str, Any], str, str]]] = [
        (IMPORT | {"entityType": "planet"}, "entityType", "one of: customer, inventory"),
        ({k: v for k, v in IMPORT.items() if k != "entityType"}, "entityType", "got None"),
        (
            {k: v for k, v in IMPORT.items() if k != "fileName"},
            "fileName",
            "needs a fileName",
        ),
        (IMPORT | {"fileName": "invoice.pdf"}, "fileName", "not a file this service imports"),
        (IMPORT | {"params": {"mode": "merge"}}, "params.mode", "'insert' or 'upsert'"),
        (IMPORT | {"params": {"batchSize": 0}}, "params.batchSize", "greater than or equal"),
        (IMPORT | {"params": {"sink": "service"}}, "params", "needs targetService and method"),
        (EXPORT | {"params": {"columns": ["nope"]}}, "params.columns", "unknown order columns"),
        (EXPORT | {"params": {"format": "pdf"}}, "params.format", "'csv', 'jsonl' or 'xlsx'"),
        (EXPORT | {"params": {"gzip": "maybe"}}, "params.gzip", "valid boolean"),
        (IMPORT | {"params": {"validateonly": True}}, "params.validateonly", "not permitted"),
    ]

    async def test_bad_fields_are_422_and_nothing_is_written(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        for body, field, reason in self.BAD:
            with subtests.test(field=field, reason=reason):
                response = await api.post(BASE, json=body, headers=ALICE)
                problem = assert_problem(response, 422)
                assert problem["errors"][0]["field"] == field
                assert reason in problem["errors"][0]["reason"]
        assert await counts(resources) == NOTHING

    async def test_an_unknown_extension_is_fine_when_the_format_is_named(
        self, api: httpx.AsyncClient
    ) -> None:
        body = self.IMPORT | {"fileName": "dump.2026-11-01", "params": {"format": "csv"}}
        assert (await api.post(BASE, json=body, headers=ALICE)).status_code == 201
        unnamed = self.IMPORT | {"fileName": "products"}  # no extension: the content decides
        assert (await api.post(BASE, json=unnamed, headers=ALICE)).status_code == 201


class TestIdempotencyKey:
    BODY: ClassVar[dict[str, Any]] = {
        "taskType": "export",
        "entityType": "order",
        "params": {"format": "jsonl"},
    }

    async def post(
        self, api: httpx.AsyncClient, key: str, body: dict[str, Any], who: dict[str, str] = ALICE
    ) -> httpx.Response:
        return await api.post(BASE, json=body, headers={**who, "Idempotency-Key": key})

    async def test_the_same_key_and_body_return_the_first_task_with_200(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        first = await self.post(api, "order-export-1", self.BODY)
        again = await self.post(api, "order-export-1", self.BODY)
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
        assert first.json()["idempotencyKey"] == "order-export-1"
        assert await counts(resources) == {"tasks": 1, "events": 1, "outbox": 1}
        assert await event_types(api, first.json()["id"]) == ["created"]

    async def test_snake_case_spelling_of_the_same_body_is_the_same_request(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        first = await self.post(api, "k", self.BODY)
        again = await self.post(
            api, "k", {"task_type": "export", "entity_type": "order", "params": {"format": "jsonl"}}
        )
        assert again.status_code == 200
        assert again.json()["id"] == first.json()["id"]

    async def test_the_same_key_with_another_body_is_a_422_problem(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        """The Idempotency-Key draft's answer to a key reused for another request."""
        first = await self.post(api, "order-export-1", self.BODY)
        other = await self.post(api, "order-export-1", {**self.BODY, "entityType": "product"})
        problem = assert_problem(other, 422, "idempotency-mismatch")
        assert problem["errors"][0]["field"] == "Idempotency-Key"
        assert "Idempotency-Key" in problem["detail"]
        assert await counts(resources) == {"tasks": 1, "events": 1, "outbox": 1}
        task = (await api.get(f"{BASE}/{first.json()['id']}", headers=ALICE)).json()
        assert task["entityType"] == "order"

    async def test_keys_belong_to_one_user(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        alices = await self.post(api, "shared-key", self.BODY)
        bobs = await self.post(api, "shared-key", self.BODY, BOB)
        assert (alices.status_code, bobs.status_code) == (201, 201)
        assert alices.json()["id"] != bobs.json()["id"]
        assert bobs.json()["requestedBy"] == "bob"
        assert await counts(resources) == {"tasks": 2, "events": 2, "outbox": 2}

    async def test_concurrent_requests_with_one_key_make_one_task(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        responses = await asyncio.gather(*(self.post(api, "race", self.BODY) for _ in range(5)))
        assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 201]
        assert len({r.json()["id"] for r in responses}) == 1
        assert await counts(resources) == {"tasks": 1, "events": 1, "outbox": 1}

    async def test_without_a_key_each_request_makes_a_task(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        first, second = await create(api, **self.BODY), await create(api, **self.BODY)
        assert first["id"] != second["id"]
        assert (await counts(resources))["tasks"] == 2

    async def test_the_key_of_a_deleted_task_is_a_409_not_the_deleted_task(
        self, api: httpx.AsyncClient
    ) -> None:
        first = await self.post(api, "once", self.BODY)
        assert (await api.delete(f"{BASE}/{first.json()['id']}", headers=ALICE)).status_code == 204
        problem = assert_problem(await self.post(api, "once", self.BODY), 409)
        assert "was deleted" in problem["detail"]

    async def test_an_overlong_key_is_400(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        response = await self.post(api, "k" * 256, self.BODY)
        problem = assert_problem(response, 400, "malformed-request")
        assert problem["errors"][0]["field"] == "Idempotency-Key"
        assert await counts(resources) == NOTHING


class TestGetTask:
    async def test_returns_the_task_as_created(self, api: httpx.AsyncClient) -> None:
        created = await create(api, taskType="import", entityType="product", fileName="p.csv")
        response = await api.get(f"{BASE}/{created['id']}", headers=ALICE)
        assert response.status_code == 200
        task = response.json()
        assert {"id", "taskType", "entityType", "status", "createdAt"} <= set(task)
        assert task == {key: created[key] for key in task}  # create may add upload details

    async def test_an_unknown_id_is_a_404_problem(self, api: httpx.AsyncClient) -> None:
        missing = uuid4()
        problem = assert_problem(
            await api.get(f"{BASE}/{missing}", headers=ALICE), 404, "not-found"
        )
        assert str(missing) in problem["detail"]
        assert problem["instance"] == f"{BASE}/{missing}"

    async def test_an_id_that_is_not_a_uuid_is_422(
        self, api: httpx.AsyncClient, subtests: pytest.Subtests
    ) -> None:
        for bad in ("42", "not-a-uuid", "0000", "%20"):
            with subtests.test(id=bad):
                problem = assert_problem(await api.get(f"{BASE}/{bad}", headers=ALICE), 422)
                assert [e["field"] for e in problem["errors"]] == ["taskId"]

    async def test_another_users_task_is_not_found(self, api: httpx.AsyncClient) -> None:
        task = await create(api, headers=BOB)
        assert_problem(await api.get(f"{BASE}/{task['id']}", headers=ALICE), 404, "not-found")

    async def test_admins_and_services_see_every_task(self, api: httpx.AsyncClient) -> None:
        task = await create(api, headers=BOB)
        for who in (ADMIN, SERVICE):
            response = await api.get(f"{BASE}/{task['id']}", headers=who)
            assert response.status_code == 200
            assert response.json()["requestedBy"] == "bob"


class TestListTasks:
    async def seed(self, api: httpx.AsyncClient, resources: Resources) -> dict[str, str]:
        """Tasks of alice and bob in several states; returns name -> id."""
        ids = {
            "alice-failed": await make_failed(  # first: it claims every pending default task
                resources, api, taskType="noop", error="disk 50%_full"
            ),
            "alice-import": await create(
                api, taskType="import", entityType="product", inputFileId="ext-1"
            ),
            "alice-export": await create(api, taskType="export", entityType="order"),
            "alice-sleep": await create(api, taskType="sleep"),
            "bob-import": await create(
                api, BOB, taskType="import", entityType="customer", inputFileId="ext-2"
            ),
        }
        await api.post(f"{BASE}/{ids['alice-sleep']['id']}/cancel", headers=ALICE)
        return {name: task["id"] for name, task in ids.items()}

    FILTERS: ClassVar[list[tuple[dict[str, str], dict[str, str], set[str]]]] = [
        ({}, ALICE, {"alice-import", "alice-export", "alice-sleep", "alice-failed"}),
        ({}, BOB, {"bob-import"}),
        ({"taskType": "import"}, ALICE, {"alice-import"}),
        ({"taskType": "import"}, ADMIN, {"alice-import", "bob-import"}),
        ({"entityType": "order"}, ALICE, {"alice-export"}),
        ({"status": "cancelled"}, ALICE, {"alice-sleep"}),
        ({"status": "failed,cancelled"}, ALICE, {"alice-sleep", "alice-failed"}),
        ({"status": "pending, failed"}, ALICE, {"alice-import", "alice-export", "alice-failed"}),
        ({"status": "completed"}, ALICE, set()),
        ({"requestedBy": "bob"}, ADMIN, {"bob-import"}),
        ({"requestedBy": "bob"}, ALICE, set()),
        ({"search": "PRODUCT"}, ALICE, {"alice-import"}),  # any case
        ({"search": "DISK"}, ALICE, {"alice-failed"}),
        ({"search": "%"}, ALICE, {"alice-failed"}),  # LIKE wildcards are literal
        ({"search": "_"}, ALICE, {"alice-failed"}),
        ({"taskType": "import", "status": "pending"}, ADMIN, {"alice-import", "bob-import"}),
    ]

    async def test_filters(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        ids = await self.seed(api, resources)
        names = {task_id: name for name, task_id in ids.items()}
        for params, who, expected in self.FILTERS:
            with subtests.test(params=params, caller=who["X-User-ID"]):
                page = await listing(api, who, **params)
                assert {names[t["id"]] for t in page["items"]} == expected
                assert page["total"] == len(expected)

    async def test_users_list_only_their_own_tasks_and_admins_all(
        self, api: httpx.AsyncClient
    ) -> None:
        mine = {(await create(api))["id"] for _ in range(2)}
        bobs = {(await create(api, BOB))["id"]}
        assert set(await listed_ids(api, ALICE)) == mine
        assert set(await listed_ids(api, BOB)) == bobs
        assert set(await listed_ids(api, ADMIN)) == mine | bobs
        assert set(await listed_ids(api, ADMIN, requestedBy="alice")) == mine

    BAD_QUERIES: ClassVar[list[tuple[dict[str, Any], str]]] = [
        ({"status": "bogus"}, "status"),
        ({"status": "pending,bogus"}, "status"),
        ({"status": ""}, "status"),
        ({"pageSize": 101}, "pageSize"),
        ({"pageSize": 0}, "pageSize"),
        ({"page": 0}, "page"),
        ({"page": "two"}, "page"),
        ({"startDate": "2024-01-01T00:00:00"}, "startDate"),
        ({"endDate": "yesterday"}, "endDate"),
        ({"startDate": "2024-02-01T00:00:00Z", "endDate": "2024-01-01T00:00:00Z"}, "startDate"),
        ({"search": "a\x00b"}, "search"),
        ({"taskType": "import\x00"}, "taskType"),
    ]

    async def test_invalid_queries_are_422_problems(
        self, api: httpx.AsyncClient, subtests: pytest.Subtests
    ) -> None:
        for params, field in self.BAD_QUERIES:
            with subtests.test(params=params):
                response = await api.get(BASE, params=params, headers=ALICE)
                problem = assert_problem(response, 422)
                assert field in [e["field"] for e in problem["errors"]], problem

    async def test_an_unknown_status_is_named_with_the_allowed_ones(
        self, api: httpx.AsyncClient
    ) -> None:
        problem = assert_problem(await api.get(BASE, params={"status": "done"}, headers=ALICE), 422)
        assert "'done'" in problem["detail"]
        assert "completed" in problem["detail"]

    async def test_page_size_may_be_one_hundred(self, api: httpx.AsyncClient) -> None:
        assert (await listing(api, pageSize=100))["pageSize"] == 100

    async def test_page_and_page_size_walk_the_list_with_its_total(
        self, api: httpx.AsyncClient
    ) -> None:
        for _ in range(5):
            await create(api)
        everything = await listed_ids(api)
        pages = [await listing(api, page=n, pageSize=2) for n in (1, 2, 3, 4)]
        assert [len(p["items"]) for p in pages] == [2, 2, 1, 0]
        assert {p["total"] for p in pages} == {5}
        assert [(p["page"], p["pageSize"]) for p in pages] == [(1, 2), (2, 2), (3, 2), (4, 2)]
        assert [t["id"] for p in pages for t in p["items"]] == everything
        assert pages[2]["nextCursor"] is None

    async def test_newest_first_with_ties_in_a_stable_order(
        self, api: httpx.AsyncClient, clock: Clock
    ) -> None:
        created = []
        for second in (0, 1, 1, 1, 1, 2):
            clock.now = T0 + timedelta(seconds=second)
            created.append(await create(api))
        ids = await listed_ids(api)
        assert ids[0] == created[-1]["id"]
        assert ids[-1] == created[0]["id"]
        ties = ids[1:5]
        assert set(ties) == {t["id"] for t in created[1:5]}
        assert ties == sorted(ties, reverse=True), "equal createdAt: by id, descending"
        assert await listed_ids(api) == ids
        stamps = [when(t["createdAt"]) for t in (await listing(api, pageSize=100))["items"]]
        assert stamps == sorted(stamps, reverse=True)

    async def test_a_cursor_walks_every_task_once_even_with_equal_created_at(
        self, api: httpx.AsyncClient, clock: Clock
    ) -> None:
        for n in range(27):
            clock.now = T0 + timedelta(seconds=n // 4)  # four tasks share each createdAt
            await create(api)
        expected = await listed_ids(api)
        walked: list[str] = []
        page = await listing(api, pageSize=5)
        requests = 1
        while True:
            walked.extend(t["id"] for t in page["items"])
            assert page["total"] == 27
            if page["nextCursor"] is None:
                break
            page = await listing(api, pageSize=5, cursor=page["nextCursor"])
            requests += 1
            assert requests <= 8, "the cursor does not advance"
        assert walked == expected
        assert len(set(walked)) == 27

    async def test_an_exactly_full_last_page_has_no_next_cursor(
        self, api: httpx.AsyncClient
    ) -> None:
        for _ in range(4):
            await create(api)
        first = await listing(api, pageSize=2)
        assert first["nextCursor"] is not None
        last = await listing(api, pageSize=2, cursor=first["nextCursor"])
        assert len(last["items"]) == 2
        assert last["nextCursor"] is None
        assert (await listing(api, pageSize=4))["nextCursor"] is None

    async def test_a_cursor_keeps_the_filters(self, api: httpx.AsyncClient, clock: Clock) -> None:
        exports = set()
        for n in range(12):
            clock.now = T0 + timedelta(seconds=n // 3)
            kind: dict[str, Any] = (
                {"taskType": "export"} if n % 2 else {"taskType": "import", "inputFileId": "x"}
            )
            task = await create(api, entityType="product", **kind)
            if n % 2:
                exports.add(task["id"])
        walked: list[str] = []
        page = await listing(api, pageSize=4, taskType="export")
        walked.extend(t["id"] for t in page["items"])
        while page["nextCursor"]:
            page = await listing(api, pageSize=4, taskType="export", cursor=page["nextCursor"])
            walked.extend(t["id"] for t in page["items"])
        assert len(walked) == len(exports) == 6
        assert set(walked) == exports

    BAD_CURSORS: ClassVar[list[str]] = [
        "not-a-cursor",
        "!!!!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
        base64.urlsafe_b64encode(b"null").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b'["2024-05-01T12:00:00+00:00", "nope"]').decode(),
        base64.urlsafe_b64encode(b'["yesterday", "' + str(uuid4()).encode() + b'"]').decode(),
        "x" * 201,
    ]

    async def test_a_bad_cursor_is_422(
        self, api: httpx.AsyncClient, subtests: pytest.Subtests
    ) -> None:
        await create(api)
        for cursor in self.BAD_CURSORS:
            with subtests.test(cursor=cursor):
                response = await api.get(BASE, params={"cursor": cursor}, headers=ALICE)
                problem = assert_problem(response, 422)
                assert [e["field"] for e in problem["errors"]] == ["cursor"]

    async def test_start_and_end_dates_bound_created_at_inclusively(
        self, api: httpx.AsyncClient, clock: Clock
    ) -> None:
        tasks = []
        for hours in (0, 1, 2):
            clock.now = T0 + timedelta(hours=hours)
            tasks.append((await create(api))["id"])
        first, middle, last = tasks
        half = timedelta(minutes=30)
        assert await listed_ids(api, startDate=(T0 + half).isoformat()) == [last, middle]
        assert await listed_ids(api, endDate=(T0 + 3 * half).isoformat()) == [middle, first]
        both: dict[str, Any] = {
            "startDate": (T0 + half).isoformat(),
            "endDate": (T0 + 3 * half).isoformat(),
        }
        assert await listed_ids(api, **both) == [middle]
        exact = (T0 + timedelta(hours=1)).isoformat()
        assert await listed_ids(api, startDate=exact, endDate=exact) == [middle]
        in_paris = (T0 + timedelta(hours=1)).astimezone(timezone(timedelta(hours=2)))
        assert await listed_ids(api, startDate=in_paris.isoformat()) == [last, middle]

    async def test_deleted_tasks_are_not_listed(self, api: httpx.AsyncClient) -> None:
        kept, gone = await create(api), await create(api)
        assert (await api.delete(f"{BASE}/{gone['id']}", headers=ALICE)).status_code == 204
        page = await listing(api)
        assert [t["id"] for t in page["items"]] == [kept["id"]]
        assert page["total"] == 1


class TestCancelTask:
    async def cancel(
        self, api: httpx.AsyncClient, task_id: str, who: dict[str, str] = ALICE
    ) -> httpx.Response:
        return await api.post(f"{BASE}/{task_id}/cancel", headers=who)

    async def test_a_pending_task_is_cancelled_at_once(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api)
        response = await self.cancel(api, task["id"])
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "cancelled"
        assert body["completedAt"] is not None
        assert (await api.get(f"{BASE}/{task['id']}", headers=ALICE)).json()["status"] == (
            "cancelled"
        )
        assert await event_types(api, task["id"]) == ["created", "cancelled"]
        assert await counts(resources) == {"tasks": 1, "events": 2, "outbox": 2}
        assert await try_start(resources, task["id"]) is None, "a cancelled task never runs"

    async def test_a_scheduled_task_is_cancelled_at_once(self, api: httpx.AsyncClient) -> None:
        task = await create(api, scheduledAt="2099-01-01T00:00:00Z")
        assert (await self.cancel(api, task["id"])).json()["status"] == "cancelled"
        assert await event_types(api, task["id"]) == ["scheduled", "cancelled"]

    @pytest.mark.parametrize(
        ("make", "message"),
        [
            (make_completed, "cannot move a completed task to cancelled; it is final"),
            (make_failed, "cannot move a failed task to cancelled"),
        ],
        ids=["completed", "failed"],
    )
    async def test_a_finished_task_cannot_be_cancelled(
        self, api: httpx.AsyncClient, resources: Resources, make: Any, message: str
    ) -> None:
        task = await make(resources, api)
        before = await counts(resources)
        problem = assert_problem(await self.cancel(api, task["id"]), 409, "illegal-transition")
        assert message in problem["detail"]
        assert await counts(resources) == before

    async def test_cancelling_twice_is_a_409_naming_both_states(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api)
        await self.cancel(api, task["id"])
        problem = assert_problem(await self.cancel(api, task["id"]), 409, "illegal-transition")
        assert "cannot move a cancelled task to cancelled" in problem["detail"]
        assert await event_types(api, task["id"]) == ["created", "cancelled"]

    async def test_a_processing_task_gets_a_cancel_request(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api)
        await start(resources, task["id"])
        response = await self.cancel(api, task["id"])
        assert response.status_code == 200
        body = response.json()
        assert (body["status"], body["cancelRequested"]) == ("processing", True)
        assert await event_types(api, task["id"]) == ["created", "started", "cancel_requested"]
        again = await self.cancel(api, task["id"])
        assert again.status_code == 200
        assert again.json()["cancelRequested"] is True
        assert await event_types(api, task["id"]) == ["created", "started", "cancel_requested"]

    async def test_a_running_handler_stops_when_cancelled(
        self, embedded: httpx.AsyncClient
    ) -> None:
        task = await create(embedded, params={"seconds": 30})

        async def status() -> str:
            return str((await embedded.get(f"{BASE}/{task['id']}", headers=ALICE)).json()["status"])

        await wait_until(lambda: _is(status, "processing"))
        assert (await self.cancel(embedded, task["id"])).json()["cancelRequested"] is True
        await wait_until(lambda: _is(status, "cancelled"), timeout=10)
        assert (await event_types(embedded, task["id"]))[-1] == "cancelled"

    async def test_another_users_task_is_not_found_but_an_admin_may_cancel_it(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api, BOB)
        assert_problem(await self.cancel(api, task["id"]), 404, "not-found")
        assert (await self.cancel(api, task["id"], ADMIN)).json()["status"] == "cancelled"
        events = (await api.get(f"{BASE}/{task['id']}/events", headers=BOB)).json()
        assert events[-1]["actor"] == "root"

    async def test_an_unknown_task_is_404(self, api: httpx.AsyncClient) -> None:
        assert_problem(await self.cancel(api, str(uuid4())), 404, "not-found")


async def _is(read: Any, expected: str) -> bool:
    return bool(await read() == expected)


class TestRetryTask:
    async def retry(
        self, api: httpx.AsyncClient, task_id: str, who: dict[str, str] = ALICE
    ) -> httpx.Response:
        return await api.post(f"{BASE}/{task_id}/retry", headers=who)

    async def test_a_failed_task_goes_back_to_pending_with_a_fresh_retry_budget(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        """retryCount counts every retry, a person's too (as the original service did); the
        person's retry grants the automatic retries (maxRetries) anew."""
        task = await create(api, maxRetries=1)
        await finish(resources, await start(resources, task["id"]), "retry", "flaky")
        claimed = await wait_until(lambda: try_start(resources, task["id"]), timeout=5)
        failed = await finish(resources, claimed, "retry", "flaky again")
        assert (failed.status.value, failed.retry_count) == ("failed", 1)

        response = await self.retry(api, task["id"])
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "pending"
        assert (body["retryCount"], body["autoRetries"]) == (2, 0)
        assert body["errorMessage"] is None
        assert body["completedAt"] is None
        assert body["maxRetries"] == 1
        assert (await event_types(api, task["id"]))[-2:] == ["failed", "retried"]
        again = await try_start(resources, task["id"])
        assert again is not None, "it runs again"
        retried = await finish(resources, again, "retry", "flaky once more")
        assert (retried.status.value, retried.retry_count, retried.auto_retries) == (
            "pending",
            3,
            1,
        )

    async def test_a_cancelled_task_goes_back_to_pending(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api)
        await api.post(f"{BASE}/{task['id']}/cancel", headers=ALICE)
        body = (await self.retry(api, task["id"])).json()
        assert (body["status"], body["cancelRequested"]) == ("pending", False)
        assert await event_types(api, task["id"]) == ["created", "cancelled", "retried"]
        events, outbox = await trail(resources)
        assert [topic for _, topic in outbox] == [
            EventType.CREATED,
            EventType.CANCELLED,
            EventType.RETRIED,
        ]
        assert outbox == events

    async def test_a_task_cancelled_while_running_runs_again_without_the_cancel_flag(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api)
        await start(resources, task["id"])
        await api.post(f"{BASE}/{task['id']}/cancel", headers=ALICE)
        running = (await api.get(f"{BASE}/{task['id']}", headers=ALICE)).json()
        assert running["cancelRequested"] is True
        async with resources.sessionmaker() as session:
            row = await TaskRepository(session).get(UUID(task["id"]))
        assert row is not None
        await finish(resources, row, "cancelled")
        body = (await self.retry(api, task["id"])).json()
        assert (body["status"], body["cancelRequested"]) == ("pending", False)

    async def test_a_pending_task_cannot_be_retried(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api)
        problem = assert_problem(await self.retry(api, task["id"]), 409, "illegal-transition")
        assert "a pending task cannot be retried" in problem["detail"]
        assert await counts(resources) == {"tasks": 1, "events": 1, "outbox": 1}

    async def test_a_completed_task_cannot_be_retried(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await make_completed(resources, api)
        problem = assert_problem(await self.retry(api, task["id"]), 409, "illegal-transition")
        assert "a completed task cannot be retried" in problem["detail"]

    async def test_a_processing_task_cannot_be_retried(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api)
        await start(resources, task["id"])
        problem = assert_problem(await self.retry(api, task["id"]), 409, "illegal-transition")
        assert "a processing task cannot be retried" in problem["detail"]
        after = (await api.get(f"{BASE}/{task['id']}", headers=ALICE)).json()
        assert (after["status"], after["workerId"]) == ("processing", "test-worker")
        assert await event_types(api, task["id"]) == ["created", "started"]

    async def test_a_scheduled_task_cannot_be_retried(self, api: httpx.AsyncClient) -> None:
        task = await create(api, scheduledAt="2099-01-01T00:00:00Z")
        problem = assert_problem(await self.retry(api, task["id"]), 409, "illegal-transition")
        assert "a scheduled task cannot be retried" in problem["detail"]
        after = (await api.get(f"{BASE}/{task['id']}", headers=ALICE)).json()
        assert after["status"] == "scheduled"

    async def test_another_users_task_is_not_found(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await make_failed(resources, api)
        assert_problem(await self.retry(api, task["id"], BOB), 404, "not-found")
        assert (await self.retry(api, task["id"], ADMIN)).json()["status"] == "pending"


class TestDeleteTask:
    async def delete(
        self, api: httpx.AsyncClient, task_id: str, who: dict[str, str] = ALICE
    ) -> httpx.Response:
        return await api.delete(f"{BASE}/{task_id}", headers=who)

    async def test_a_deleted_task_is_gone_from_reads(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api)
        response = await self.delete(api, task["id"])
        assert response.status_code == 204
        assert response.content == b""
        assert_problem(await api.get(f"{BASE}/{task['id']}", headers=ALICE), 404, "not-found")
        assert (await listing(api))["total"] == 0
        assert (await listing(api, ADMIN))["total"] == 0
        events, _ = await trail(resources)
        assert [kind for _, kind in events] == [EventType.CREATED, EventType.DELETED]
        assert await counts(resources) == {"tasks": 1, "events": 2, "outbox": 2}
        assert await try_start(resources, task["id"]) is None, "a deleted task never runs"

    async def test_deleting_twice_is_404(self, api: httpx.AsyncClient) -> None:
        task = await create(api)
        await self.delete(api, task["id"])
        assert_problem(await self.delete(api, task["id"]), 404, "not-found")

    @pytest.mark.parametrize("make", [make_completed, make_failed], ids=["completed", "failed"])
    async def test_a_finished_task_may_be_deleted(
        self, api: httpx.AsyncClient, resources: Resources, make: Any
    ) -> None:
        task = await make(resources, api)
        assert (await self.delete(api, task["id"])).status_code == 204

    async def test_a_processing_task_cannot_be_deleted(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api)
        await start(resources, task["id"])
        problem = assert_problem(await self.delete(api, task["id"]), 409, "conflict")
        assert "cancel it first" in problem["detail"]
        assert (await api.get(f"{BASE}/{task['id']}", headers=ALICE)).status_code == 200

    async def test_another_users_task_is_not_found_and_stays(self, api: httpx.AsyncClient) -> None:
        task = await create(api, BOB)
        assert_problem(await self.delete(api, task["id"]), 404, "not-found")
        assert (await api.get(f"{BASE}/{task['id']}", headers=BOB)).status_code == 200
        assert (await self.delete(api, task["id"], ADMIN)).status_code == 204


class TestCallerIdentity:
    ENDPOINTS: ClassVar[list[tuple[str, str]]] = [
        ("POST", ""),
        ("GET", ""),
        ("GET", "/{id}"),
        ("POST", "/{id}/cancel"),
        ("POST", "/{id}/retry"),
        ("DELETE", "/{id}"),
        ("GET", "/{id}/events"),
        ("GET", "/{id}/logs"),
        ("GET", "/{id}/attempts"),
    ]

    async def test_without_x_user_id_every_endpoint_is_401(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        task = await create(api)
        before = await counts(resources)
        for method, path in self.ENDPOINTS:
            for headers in ({}, {"X-User-ID": "  "}):
                with subtests.test(method=method, path=path, headers=headers):
                    body = {"taskType": "sleep"} if method == "POST" and not path else None
                    response = await api.request(
                        method, BASE + path.format(id=task["id"]), json=body, headers=headers
                    )
                    problem = assert_problem(response, 401, "unauthenticated")
                    assert "X-User-ID" in problem["detail"]
        assert await counts(resources) == before
        assert (await api.get(f"{BASE}/{task['id']}", headers=ALICE)).json()["status"] == "pending"

    async def test_an_overlong_user_id_is_refused_on_both_databases(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        response = await api.post(BASE, json={"taskType": "sleep"}, headers=user("u" * 129))
        problem = assert_problem(response, 422)
        assert [e["field"] for e in problem["errors"]] == ["x-user-id"]
        assert await counts(resources) == NOTHING
        assert (await create(api, user("u" * 128)))["requestedBy"] == "u" * 128

    async def test_a_wrong_service_token_is_not_an_identity(self, api: httpx.AsyncClient) -> None:
        response = await api.get(BASE, headers={"X-Service-Token": "guess"})
        assert_problem(response, 401, "unauthenticated")

    async def test_a_non_ascii_service_token_is_401_not_a_crash(
        self, api: httpx.AsyncClient
    ) -> None:
        headers = {"X-Service-Token": "t\xe9st".encode("latin-1")}
        response = await api.get(BASE, headers=headers)  # type: ignore[arg-type]
        assert_problem(response, 401, "unauthenticated")


Refuse = Callable[[], Awaitable[None]]


class TestStateChangesAreAtomic:
    """A task row, its event and its outbox row commit together or not at all."""

    @pytest.fixture
    async def break_outbox(
        self, resources: Resources
    ) -> AsyncIterator[Callable[[], Awaitable[None]]]:
        """From the call on, the database refuses every new outbox row (a trigger), as a
        broken constraint or a full disk would: whatever statement writes it fails."""
        postgres = resources.engine.dialect.name == "postgresql"

        async def refuse() -> None:
            async with resources.engine.begin() as connection:
                if postgres:
                    await connection.exec_driver_sql(
                        "CREATE FUNCTION refuse_outbox() RETURNS trigger LANGUAGE plpgsql AS "
                        "$$ BEGIN RAISE EXCEPTION 'outbox insert failed'; END $$"
                    )
                    await connection.exec_driver_sql(
                        "CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox "
                        "FOR EACH ROW EXECUTE FUNCTION refuse_outbox()"
                    )
                else:
                    await connection.exec_driver_sql(
                        "CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox "
                        "BEGIN SELECT RAISE(ABORT, 'outbox insert failed'); END"
                    )

        yield refuse
        async with resources.engine.begin() as connection:  # the database may be reused
            if postgres:
                await connection.exec_driver_sql("DROP FUNCTION IF EXISTS refuse_outbox CASCADE")
            else:
                await connection.exec_driver_sql("DROP TRIGGER IF EXISTS refuse_outbox")

    async def test_a_create_that_cannot_queue_its_event_leaves_nothing(
        self,
        api: httpx.AsyncClient,
        resources: Resources,
        break_outbox: Refuse,
    ) -> None:
        await break_outbox()
        response = await api.post(BASE, json={"taskType": "sleep"}, headers=ALICE)
        assert_problem(response, 500, "internal-error")
        assert await counts(resources) == NOTHING

    async def test_a_cancel_that_cannot_queue_its_event_changes_nothing(
        self,
        api: httpx.AsyncClient,
        resources: Resources,
        break_outbox: Refuse,
    ) -> None:
        task = await create(api)
        await break_outbox()
        response = await api.post(f"{BASE}/{task['id']}/cancel", headers=ALICE)
        assert_problem(response, 500, "internal-error")
        assert (await api.get(f"{BASE}/{task['id']}", headers=ALICE)).json()["status"] == "pending"
        assert await counts(resources) == {"tasks": 1, "events": 1, "outbox": 1}
