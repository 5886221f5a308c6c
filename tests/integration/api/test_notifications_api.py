"""Notifications written with the change that caused them (completion, failure for good, cancel,
lease expiry, progress milestones), the event through the outbox, and the inbox's routes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select, update

from service.bootstrap import Resources
from service.clock import utcnow
from service.config import Settings
from service.db.tables import deliveries_table, messages_table, outbox_table, tasks_table
from service.domain.events import NOTIFICATION_REQUESTED
from service.domain.settlement import Ending
from service.usecases import execution
from tests.fixtures.app import ADMIN, SERVICE, user, wait_until
from tests.integration.api.support import (
    BASE,
    WORKER,
    assert_problem,
    create,
    finish,
    make_completed,
    make_failed,
    start,
)
from worker.jobs import JOBS

ALICE = user("alice")
BOB = user("bob")
MESSAGES = "/api/v1/operations/messages"
HOOK = "https://hooks.example.test/ops"
ALL_CHANNELS = {"channels": ["inApp", "event", "webhook"], "webhookUrl": HOOK}


async def rows(resources: Resources, table: Any) -> list[Any]:
    async with resources.sessionmaker() as session:
        return list((await session.execute(select(table))).all())


async def notification_events(resources: Resources) -> list[Any]:
    async with resources.sessionmaker() as session:
        found = await session.execute(
            select(outbox_table).where(outbox_table.c.topic == NOTIFICATION_REQUESTED)
        )
        return list(found.all())


async def told(resources: Resources) -> dict[str, int]:
    return {
        "messages": len(await rows(resources, messages_table)),
        "webhooks": len(await rows(resources, deliveries_table)),
        "events": len(await notification_events(resources)),
    }


NONE = {"messages": 0, "webhooks": 0, "events": 0}


class TestEndings:
    async def test_completion_writes_each_channel(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        settings = {
            "onCompletion": True,
            "recipients": ["bob", "carol"],
            "templateKey": "task-done",
            **ALL_CHANNELS,
        }
        task = await make_completed(resources, api, notificationSettings=settings, name="Feed")
        messages = await rows(resources, messages_table)
        assert sorted(m.recipient for m in messages) == ["alice", "bob", "carol"]
        assert {m.kind for m in messages} == {"completed"}
        assert {m.title for m in messages} == {"Feed completed"}
        assert all(str(m.task_id) == task["id"] for m in messages)

        [event] = await notification_events(resources)
        assert str(event.task_id) == task["id"]
        assert event.payload["reason"] == "completed"
        assert event.payload["recipients"] == ["bob", "carol"]
        assert event.payload["templateKey"] == "task-done"
        assert event.payload["task"]["id"] == task["id"]
        assert event.payload["task"]["status"] == "completed"

        # the relay publishes it like any other outbox row
        async def published() -> bool:
            [row] = await notification_events(resources)
            return row.published_at is not None

        await wait_until(published)

        [delivery] = await rows(resources, deliveries_table)
        assert (delivery.status, delivery.url, delivery.owner) == ("pending", HOOK, "alice")
        assert delivery.payload["reason"] == "completed"
        assert delivery.payload["id"] == str(delivery.id)
        shown = await api.get(f"{BASE}/{task['id']}/notifications", headers=ALICE)
        assert shown.status_code == 200, shown.text
        [webhook] = shown.json()["webhooks"]
        assert (webhook["status"], webhook["attempts"], webhook["history"]) == ("pending", 0, [])

    async def test_event_without_recipients_names_the_submitter(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        await make_completed(
            resources, api, notificationSettings={"onCompletion": True, "channels": ["event"]}
        )
        [event] = await notification_events(resources)
        assert event.payload["recipients"] == ["alice"]
        assert await rows(resources, messages_table) == []

    async def test_failure_for_good_says_why(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        await make_failed(
            resources, api, error="disk full", notificationSettings={"onFailure": True}
        )
        [message] = await rows(resources, messages_table)
        assert (message.recipient, message.kind) == ("alice", "failed")
        assert "disk full" in message.body

    async def test_a_retry_is_no_failure_yet(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api, maxRetries=2, notificationSettings={"onFailure": True})
        await finish(resources, await start(resources, task["id"]), "retry", "flaky")
        assert await told(resources) == NONE

    async def test_nothing_when_not_asked(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        await make_completed(resources, api)  # no settings at all
        await make_completed(resources, api, notificationSettings={"onFailure": True})
        await make_failed(resources, api, notificationSettings={"onCompletion": True})
        assert await told(resources) == NONE

    async def test_cancel_of_a_pending_task(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api, notificationSettings={"onCancel": True, "channels": ["event"]})
        answer = await api.post(f"{BASE}/{task['id']}/cancel", headers=ALICE)
        assert answer.status_code == 200, answer.text
        [event] = await notification_events(resources)
        assert event.payload["reason"] == "cancelled"

    async def test_cancel_of_a_running_task_when_it_stops(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api, notificationSettings={"onCancel": True})
        running = await start(resources, task["id"])
        await api.post(f"{BASE}/{task['id']}/cancel", headers=ALICE)
        assert await told(resources) == NONE  # only asked to stop
        await finish(resources, running, "cancelled")
        [message] = await rows(resources, messages_table)
        assert message.kind == "cancelled"

    async def test_lease_expiry_that_fails_the_task(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api, maxRetries=0, notificationSettings={"onFailure": True})
        await start(resources, task["id"])
        async with resources.unit() as uow:
            moved = await execution.expire_leases(
                uow,
                now=utcnow() + timedelta(hours=1),
                policy=resources.retry_policy,
                rng=resources.rng,
            )
        assert [t.status.value for t in moved] == ["failed"]
        [message] = await rows(resources, messages_table)
        assert message.kind == "failed"
        assert "lease expired" in message.body

    async def test_an_upload_that_never_came(
        self, api: httpx.AsyncClient, resources: Resources, settings: Settings
    ) -> None:
        body = {
            "taskType": "import",
            "entityType": "product",
            "fileName": "p.csv",
            "notificationSettings": {"onFailure": True},
        }
        created = await api.post(BASE, json=body, headers=ALICE)
        assert created.status_code == 201, created.text
        async with resources.sessionmaker() as session:
            await session.execute(
                update(tasks_table)
                .where(tasks_table.c.id == UUID(created.json()["id"]))
                .values(created_at=utcnow() - timedelta(seconds=settings.upload_wait_seconds + 1))
            )
            await session.commit()
        assert "1 waiting tasks expired" in await JOBS["check-uploads"](resources)
        [message] = await rows(resources, messages_table)
        assert message.kind == "failed"
        assert "was not uploaded" in message.body

    async def test_progress_milestones_each_once(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        settings = {"onProgress": [25, 50, 75], "channels": ["inApp", "event"]}
        task = await create(api, notificationSettings=settings)
        await start(resources, task["id"])
        for progress in (10, 30, 30, 60):
            answer = await api.patch(
                f"{BASE}/{task['id']}/progress", json={"progress": progress}, headers=SERVICE
            )
            assert answer.status_code == 200, answer.text
        messages = await rows(resources, messages_table)
        assert sorted(m.data["milestone"] for m in messages) == [25, 50]
        assert {m.kind for m in messages} == {"progress"}
        events = await notification_events(resources)
        assert sorted(e.payload["milestone"] for e in events) == [25, 50]

    async def test_many_tasks_of_one_finish_batch(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        asked = [await create(api, notificationSettings={"onCompletion": True}) for _ in range(3)]
        plain = [await create(api) for _ in range(3)]
        async with resources.unit() as uow:
            claimed = await execution.claim(
                uow,
                worker_id=WORKER,
                queue="default",
                limit=10,
                now=utcnow(),
                lease_seconds=60,
                dispatch="poll",
            )
        assert len(claimed) == 6
        async with resources.unit() as uow:
            await execution.finish(
                uow,
                worker_id=WORKER,
                outcomes=[execution.Outcome(t, Ending.COMPLETED, utcnow()) for t in claimed],
                now=utcnow(),
                policy=resources.retry_policy,
                rng=resources.rng,
            )
        messages = await rows(resources, messages_table)
        assert sorted(str(m.task_id) for m in messages) == sorted(t["id"] for t in asked)
        assert not {str(m.task_id) for m in messages} & {t["id"] for t in plain}


class TestSameTransaction:
    async def test_a_finish_that_rolls_back_writes_no_notification(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api, notificationSettings={"onCompletion": True, **ALL_CHANNELS})
        running = await start(resources, task["id"])

        async def finish_then_lose_the_commit() -> None:
            async with resources.unit() as uow:
                await execution.finish(
                    uow,
                    worker_id=WORKER,
                    outcomes=[execution.Outcome(running, Ending.COMPLETED, utcnow())],
                    now=utcnow(),
                    policy=resources.retry_policy,
                    rng=resources.rng,
                )
                raise RuntimeError("the database went away before COMMIT")

        with pytest.raises(RuntimeError):
            await finish_then_lose_the_commit()
        assert await told(resources) == NONE
        shown = (await api.get(f"{BASE}/{task['id']}", headers=ALICE)).json()
        assert shown["status"] == "processing"


class TestWebhookUrlAtCreate:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1/hook",
            "http://[::1]:8080/hook",
            "http://10.1.2.3/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost:9000/hook",
        ],
    )
    async def test_private_addresses_are_refused(
        self, api: httpx.AsyncClient, resources: Resources, url: str
    ) -> None:
        settings = {"onCompletion": True, "channels": ["webhook"], "webhookUrl": url}
        answer = await api.post(
            BASE, json={"taskType": "sleep", "notificationSettings": settings}, headers=ALICE
        )
        problem = assert_problem(answer, 422)
        assert problem["errors"][0]["field"] == "notificationSettings.webhookUrl", problem

    async def test_a_public_name_is_taken(self, api: httpx.AsyncClient) -> None:
        await create(api, notificationSettings={"onCompletion": True, **ALL_CHANNELS})


class TestAllowList:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"webhook_allowed_hosts": "hooks.example.test, *.partner.test"}

    @pytest.mark.parametrize(
        ("url", "taken"),
        [
            ("https://hooks.example.test/x", True),
            ("https://a.partner.test/x", True),
            ("https://evil.test/x", False),
            ("https://hooks.example.test.evil.test/x", False),
        ],
    )
    async def test_only_listed_hosts(self, api: httpx.AsyncClient, url: str, taken: bool) -> None:
        settings = {"onCompletion": True, "channels": ["webhook"], "webhookUrl": url}
        answer = await api.post(
            BASE, json={"taskType": "sleep", "notificationSettings": settings}, headers=ALICE
        )
        if taken:
            assert answer.status_code == 201, answer.text
        else:
            problem = assert_problem(answer, 422)
            assert problem["errors"][0]["field"] == "notificationSettings.webhookUrl"
            assert "allow-list" in problem["detail"]


class TestInbox:
    async def inbox_for(self, api: httpx.AsyncClient, resources: Resources, n: int) -> None:
        for i in range(n):
            await make_completed(
                resources, api, name=f"t{i}", notificationSettings={"onCompletion": True}
            )

    async def test_own_messages_newest_first_with_paging(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        await self.inbox_for(api, resources, 5)
        first = (await api.get(MESSAGES, params={"pageSize": 2}, headers=ALICE)).json()
        assert (first["total"], first["unread"], first["page"], first["pageSize"]) == (5, 5, 1, 2)
        assert [m["title"] for m in first["items"]] == ["t4 completed", "t3 completed"]
        third = (await api.get(MESSAGES, params={"pageSize": 2, "page": 3}, headers=ALICE)).json()
        assert [m["title"] for m in third["items"]] == ["t0 completed"]
        assert (await api.get(MESSAGES, headers=BOB)).json()["total"] == 0
        assert (await api.get(MESSAGES, headers=ADMIN)).json()["total"] == 0

    async def test_read_one_all_and_the_unread_filter(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        await self.inbox_for(api, resources, 3)
        items = (await api.get(MESSAGES, headers=ALICE)).json()["items"]
        read = await api.post(f"{MESSAGES}/{items[0]['id']}/read", headers=ALICE)
        assert read.status_code == 200, read.text
        assert read.json()["read"] is True
        again = await api.post(f"{MESSAGES}/{items[0]['id']}/read", headers=ALICE)
        assert again.json()["readAt"] == read.json()["readAt"]
        unread = (await api.get(MESSAGES, params={"unread": "true"}, headers=ALICE)).json()
        assert unread["total"] == 2
        assert items[0]["id"] not in [m["id"] for m in unread["items"]]
        marked = await api.post(f"{MESSAGES}/read-all", headers=ALICE)
        assert marked.json() == {"marked": 2}
        after = (await api.get(MESSAGES, params={"unread": True}, headers=ALICE)).json()
        assert (after["total"], after["unread"]) == (0, 0)

    async def test_another_users_message_is_not_found(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        await self.inbox_for(api, resources, 1)
        [message] = (await api.get(MESSAGES, headers=ALICE)).json()["items"]
        for who in (BOB, ADMIN):
            assert_problem(await api.post(f"{MESSAGES}/{message['id']}/read", headers=who), 404)
        assert (await api.get(MESSAGES, headers=ALICE)).json()["unread"] == 1
        assert (await api.post(f"{MESSAGES}/read-all", headers=BOB)).json() == {"marked": 0}
        assert (await api.get(MESSAGES, headers=ALICE)).json()["unread"] == 1

    async def test_a_tasks_notifications_are_its_owners(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await make_completed(
            resources, api, notificationSettings={"onCompletion": True, **ALL_CHANNELS}
        )
        assert_problem(await api.get(f"{BASE}/{task['id']}/notifications", headers=BOB), 404)
        admin = await api.get(f"{BASE}/{task['id']}/notifications", headers=ADMIN)
        assert len(admin.json()["webhooks"]) == 1

    async def test_a_signing_secret_is_shown_once_per_rotation(
        self, api: httpx.AsyncClient
    ) -> None:
        first = await api.post("/api/v1/operations/webhooks/secret", headers=ALICE)
        assert first.status_code == 201, first.text
        second = await api.post("/api/v1/operations/webhooks/secret", headers=ALICE)
        assert first.json()["secret"].startswith("whsec_")
        assert first.json()["secret"] != second.json()["secret"]
