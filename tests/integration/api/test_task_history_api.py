"""/tasks/{id}/events, /logs, /attempts and the internal PATCH /tasks/{id}/progress."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy import update

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.engine import session_scope
from service.db.tables import tasks_table
from service.domain.events import EventType
from service.usecases import logs as log_usecases
from tests.fixtures.app import ADMIN, SERVICE, TOKEN, user, wait_until
from tests.integration.api.support import (
    BASE,
    assert_problem,
    counts,
    create,
    event_types,
    finish,
    make_completed,
    start,
    trail,
    try_start,
)

ALICE = user("alice")
BOB = user("bob")


async def write_logs(resources: Resources, task_id: str, *lines: tuple[str, str]) -> None:
    """Append (level, message) lines the way a handler's task logger does."""
    now = utcnow()
    entries = [
        log_usecases.LogEntry(UUID(task_id), level, message, now + timedelta(milliseconds=n))
        for n, (level, message) in enumerate(lines)
    ]
    async with resources.unit() as uow:
        await log_usecases.append(uow, entries)


class TestTaskEvents:
    async def test_every_state_change_in_order(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api)
        await finish(resources, await start(resources, task["id"]), "completed")
        response = await api.get(f"{BASE}/{task['id']}/events", headers=ALICE)
        assert response.status_code == 200
        events = response.json()
        assert [(e["eventType"], e["fromStatus"], e["toStatus"], e["actor"]) for e in events] == [
            (EventType.CREATED.value, None, "pending", "alice"),
            (EventType.STARTED.value, "pending", "processing", "test-worker"),
            (EventType.COMPLETED.value, "processing", "completed", "test-worker"),
        ]
        assert [e["id"] for e in events] == sorted(e["id"] for e in events)
        assert {e["taskId"] for e in events} == {task["id"]}
        stamps = [e["createdAt"] for e in events]
        assert stamps == sorted(stamps)

    async def test_only_this_tasks_events(self, api: httpx.AsyncClient) -> None:
        mine, other = await create(api), await create(api)
        await api.post(f"{BASE}/{other['id']}/cancel", headers=ALICE)
        assert await event_types(api, mine["id"]) == ["created"]
        assert await event_types(api, other["id"]) == ["created", "cancelled"]

    async def test_another_users_task_is_not_found_but_admins_see_it(
        self, api: httpx.AsyncClient
    ) -> None:
        task = await create(api, BOB)
        assert_problem(await api.get(f"{BASE}/{task['id']}/events", headers=ALICE), 404)
        assert await event_types(api, task["id"], ADMIN) == ["created"]

    async def test_an_unknown_task_is_404(self, api: httpx.AsyncClient) -> None:
        response = await api.get(f"{BASE}/{uuid4()}/events", headers=ALICE)
        assert_problem(response, 404, "not-found")


class TestTaskLogs:
    LINES: ClassVar[list[tuple[str, str]]] = [
        ("debug", "opened file"),
        ("info", "row 1 imported"),
        ("warning", "row 2 has no price"),
        ("info", "row 3 imported"),
        ("error", "row 4 rejected"),
        ("debug", "closing"),
        ("info", "done"),
    ]

    async def logs(self, api: httpx.AsyncClient, task_id: str, **params: Any) -> dict[str, Any]:
        response = await api.get(f"{BASE}/{task_id}/logs", params=params, headers=ALICE)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def test_lines_come_oldest_first(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api)
        await write_logs(resources, task["id"], *self.LINES)
        page = await self.logs(api, task["id"])
        assert [(line["level"], line["message"]) for line in page["items"]] == self.LINES
        assert (page["total"], page["page"], page["pageSize"]) == (7, 1, 100)
        assert {line["taskId"] for line in page["items"]} == {task["id"]}

    async def test_a_level_shows_that_level_and_above(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        task = await create(api)
        await write_logs(resources, task["id"], *self.LINES)
        for level, expected in [
            ("debug", {"debug", "info", "warning", "error"}),
            ("info", {"info", "warning", "error"}),
            ("warning", {"warning", "error"}),
            ("error", {"error"}),
        ]:
            with subtests.test(level=level):
                page = await self.logs(api, task["id"], level=level)
                wanted = [line for line in self.LINES if line[0] in expected]
                assert [(line["level"], line["message"]) for line in page["items"]] == wanted
                assert page["total"] == len(wanted)

    async def test_pages_of_lines_with_the_total(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api)
        await write_logs(resources, task["id"], *self.LINES)
        pages = [await self.logs(api, task["id"], page=n, pageSize=3) for n in (1, 2, 3, 4)]
        assert [len(p["items"]) for p in pages] == [3, 3, 1, 0]
        assert {p["total"] for p in pages} == {7}
        messages = [line["message"] for p in pages for line in p["items"]]
        assert messages == [message for _, message in self.LINES]
        filtered = await self.logs(api, task["id"], level="info", page=2, pageSize=2)
        assert [line["message"] for line in filtered["items"]] == [
            "row 3 imported",
            "row 4 rejected",
        ]
        assert filtered["total"] == 5

    async def test_structured_data_and_attempt_round_trip(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api)
        entry = log_usecases.LogEntry(
            UUID(task["id"]), "warning", "bad row", utcnow(), attempt=2, data={"row": 5}
        )
        async with resources.unit() as uow:
            await log_usecases.append(uow, [entry])
        [line] = (await self.logs(api, task["id"]))["items"]
        assert (line["attempt"], line["data"]) == (2, {"row": 5})

    async def test_other_tasks_lines_are_not_shown(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        mine, other = await create(api), await create(api)
        await write_logs(resources, other["id"], ("info", "not yours"))
        assert (await self.logs(api, mine["id"]))["total"] == 0

    async def test_invalid_paging_or_level_is_422(
        self, api: httpx.AsyncClient, subtests: pytest.Subtests
    ) -> None:
        task = await create(api)
        cases: list[tuple[dict[str, str | int], str]] = [
            ({"level": "critical"}, "level"),
            ({"level": "INFO"}, "level"),
            ({"pageSize": 501}, "pageSize"),
            ({"pageSize": 0}, "pageSize"),
            ({"page": 0}, "page"),
        ]
        for params, field in cases:
            with subtests.test(params=params):
                response = await api.get(f"{BASE}/{task['id']}/logs", params=params, headers=ALICE)
                problem = assert_problem(response, 422)
                assert field in [e["field"] for e in problem["errors"]]

    async def test_another_users_task_is_not_found(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api, BOB)
        await write_logs(resources, task["id"], ("info", "bob's secret"))
        assert_problem(await api.get(f"{BASE}/{task['id']}/logs", headers=ALICE), 404)
        response = await api.get(f"{BASE}/{task['id']}/logs", headers=ADMIN)
        assert response.json()["total"] == 1


class TestTaskAttempts:
    async def attempts(
        self, api: httpx.AsyncClient, task_id: str, who: dict[str, str] = ALICE
    ) -> list[dict[str, Any]]:
        response = await api.get(f"{BASE}/{task_id}/attempts", headers=who)
        assert response.status_code == 200, response.text
        body: list[dict[str, Any]] = response.json()
        return body

    async def test_a_task_that_never_ran_has_none(self, api: httpx.AsyncClient) -> None:
        assert await self.attempts(api, (await create(api))["id"]) == []

    async def test_a_running_attempt(self, api: httpx.AsyncClient, resources: Resources) -> None:
        task = await create(api)
        await start(resources, task["id"])
        [attempt] = await self.attempts(api, task["id"])
        assert attempt["attempt"] == 1
        assert (attempt["workerId"], attempt["dispatch"]) == ("test-worker", "poll")
        assert attempt["outcome"] == "running"
        assert attempt["finishedAt"] is None
        assert attempt["durationMs"] is None

    async def test_one_row_per_run_with_its_outcome(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api, maxRetries=2)
        await finish(resources, await start(resources, task["id"]), "retry", "timeout talking to x")
        claimed = await wait_until(lambda: try_start(resources, task["id"]), timeout=5)
        await finish(resources, claimed, "completed")
        attempts = await self.attempts(api, task["id"])
        assert [(a["attempt"], a["outcome"]) for a in attempts] == [
            (1, "retried"),
            (2, "completed"),
        ]
        assert attempts[0]["error"] == "timeout talking to x"
        assert attempts[1]["error"] is None
        assert all(a["finishedAt"] and a["durationMs"] >= 0 for a in attempts)

    async def test_another_users_task_is_not_found(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await make_completed(resources, api)
        assert_problem(await api.get(f"{BASE}/{task['id']}/attempts", headers=BOB), 404)
        assert len(await self.attempts(api, task["id"], ADMIN)) == 1


class TestReportProgress:
    async def patch(
        self, api: httpx.AsyncClient, task_id: str, body: dict[str, Any], headers: dict[str, str]
    ) -> httpx.Response:
        return await api.patch(f"{BASE}/{task_id}/progress", json=body, headers=headers)

    async def running(self, api: httpx.AsyncClient, resources: Resources) -> str:
        task = await create(api)
        await start(resources, task["id"])
        return str(task["id"])

    async def test_the_service_token_may_report(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        task_id = await self.running(api, resources)
        for progress, headers in [
            (40, SERVICE),
            (41, {"Authorization": f"Bearer {TOKEN}"}),
            (42, {**SERVICE, "X-User-ID": "importer"}),
        ]:
            with subtests.test(headers=headers):
                response = await self.patch(api, task_id, {"progress": progress}, headers)
                assert response.status_code == 200, response.text
                assert response.json() == {
                    "status": "processing",
                    "progress": progress,
                    "cancelRequested": False,
                }
                task = (await api.get(f"{BASE}/{task_id}", headers=ALICE)).json()
                assert task["progress"] == progress

    REFUSED: ClassVar[list[tuple[str, dict[str, str], int]]] = [
        ("nobody", {}, 401),
        ("wrong token", {"X-Service-Token": "wrong"}, 401),
        ("wrong bearer", {"Authorization": "Bearer wrong"}, 401),
        ("bare token", {"Authorization": TOKEN}, 401),  # not a Bearer credential
        ("user", ALICE, 403),
        ("admin", ADMIN, 403),
        ("claimed role", user("alice", "service"), 403),  # the role header grants nothing
        ("user, wrong token", {**ALICE, "X-Service-Token": "wrong"}, 401),  # wrong token
    ]

    async def test_anyone_else_is_refused_and_nothing_changes(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        task_id = await self.running(api, resources)
        before = await counts(resources)
        for who, headers, status in self.REFUSED:
            with subtests.test(who=who):
                response = await self.patch(api, task_id, {"progress": 90}, headers)
                problem = assert_problem(response, status)
                if status == 403:
                    assert "service token" in problem["detail"]
        assert (await api.get(f"{BASE}/{task_id}", headers=ALICE)).json()["progress"] == 0
        assert await counts(resources) == before

    async def test_counts_are_stored_and_omitted_fields_kept(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task_id = await self.running(api, resources)
        body = {
            "progress": 40,
            "totalItems": 10,
            "processedItems": 4,
            "succeededItems": 3,
            "failedItems": 1,
        }
        assert (await self.patch(api, task_id, body, SERVICE)).status_code == 200
        assert (await self.patch(api, task_id, {"processed_items": 5}, SERVICE)).status_code == 200
        task = (await api.get(f"{BASE}/{task_id}", headers=ALICE)).json()
        assert {k: task[k] for k in body} == {**body, "processedItems": 5}

    async def test_a_message_becomes_a_log_line(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task_id = await self.running(api, resources)
        body = {"progress": 10, "message": "read 1000 rows"}
        assert (await self.patch(api, task_id, body, SERVICE)).status_code == 200
        [line] = (await api.get(f"{BASE}/{task_id}/logs", headers=ALICE)).json()["items"]
        assert (line["level"], line["message"], line["attempt"]) == ("info", "read 1000 rows", 1)

    async def test_progress_is_announced_without_a_state_change_event(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task_id = await self.running(api, resources)
        before = await counts(resources)
        assert (await self.patch(api, task_id, {"progress": 50}, SERVICE)).status_code == 200
        after = await counts(resources)
        assert after["events"] == before["events"]
        assert after["outbox"] == before["outbox"] + 1  # the operations.task.progress notice
        events, _ = await trail(resources)
        assert [kind for _, kind in events] == [EventType.CREATED, EventType.STARTED]

    async def test_a_burst_of_reports_is_announced_once_per_interval(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task_id = await self.running(api, resources)
        before = (await counts(resources))["outbox"]
        for progress in range(10, 60, 10):
            assert (await self.patch(api, task_id, {"progress": progress}, SERVICE)).is_success
        assert (await counts(resources))["outbox"] == before + 1
        task = (await api.get(f"{BASE}/{task_id}", headers=ALICE)).json()
        assert task["progress"] == 50  # every report is stored; only the notices are thinned
        async with session_scope(resources.sessionmaker) as session:  # an interval later
            await session.execute(
                update(tasks_table)
                .where(tasks_table.c.id == UUID(task_id))
                .values(progress_announced_at=utcnow() - timedelta(seconds=2))
            )
        assert (await self.patch(api, task_id, {"progress": 60}, SERVICE)).is_success
        assert (await counts(resources))["outbox"] == before + 2

    async def test_the_answer_says_when_a_cancel_was_requested(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task_id = await self.running(api, resources)
        first = await self.patch(api, task_id, {"progress": 20}, SERVICE)
        assert first.json()["cancelRequested"] is False
        assert (await api.post(f"{BASE}/{task_id}/cancel", headers=ALICE)).status_code == 200
        second = await self.patch(api, task_id, {"progress": 30}, SERVICE)
        assert second.json() == {"status": "processing", "progress": 30, "cancelRequested": True}

    async def test_only_a_processing_task_takes_progress(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        pending = await create(api)
        scheduled = await create(api, scheduledAt="2099-01-01T00:00:00Z")
        completed = await make_completed(resources, api, queue="bulk")
        before = await counts(resources)
        for task, status in [
            (pending, "pending"),
            (scheduled, "scheduled"),
            (completed, "completed"),
        ]:
            with subtests.test(status=status):
                response = await self.patch(api, task["id"], {"progress": 50}, SERVICE)
                problem = assert_problem(response, 409, "conflict")
                assert f"this one is {status}" in problem["detail"]
                task_now = (await api.get(f"{BASE}/{task['id']}", headers=ALICE)).json()
                assert task_now["progress"] == (100 if status == "completed" else 0)
        assert await counts(resources) == before

    async def test_an_unknown_task_is_404(self, api: httpx.AsyncClient) -> None:
        response = await self.patch(api, str(uuid4()), {"progress": 1}, SERVICE)
        assert_problem(response, 404, "not-found")

    async def test_values_out_of_range_are_422_and_change_nothing(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        task_id = await self.running(api, resources)
        before = await counts(resources)
        cases: list[tuple[dict[str, Any], str]] = [
            ({"progress": 101}, "progress"),
            ({"progress": -1}, "progress"),
            ({"progress": "half"}, "progress"),
            ({"progress": 50, "processedItems": -1}, "processedItems"),
            ({"totalItems": -5}, "totalItems"),
            ({"message": "x" * 2001}, "message"),
            ({"message": "a\x00b"}, "message"),
        ]
        for body, field in cases:
            with subtests.test(body=body):
                problem = assert_problem(await self.patch(api, task_id, body, SERVICE), 422)
                assert field in [e["field"] for e in problem["errors"]]
        for edge in (0, 100):
            with subtests.test(progress=edge):
                response = await self.patch(api, task_id, {"progress": edge}, SERVICE)
                assert response.json()["progress"] == edge
        assert (await counts(resources))["events"] == before["events"]
