"""/schedules over REST: every route and rule, and what ticks make of them (their time is
handed to the tick use case, so fire times come without waiting)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select

from service.bootstrap import Resources
from service.catalog.catalog import Catalog
from service.db.tables import outbox_table, schedule_runs_table, schedules_table, tasks_table
from service.usecases import execution, firing
from service.usecases.schedules import Makers
from tests.fixtures.app import ADMIN, user
from tests.integration.api.support import WORKER, assert_problem, count, finish

BASE = "/api/v1/operations/schedules"
API = "/api/v1/operations"
TASKS = f"{API}/tasks"
ALICE = user("alice")
BOB = user("bob")
TIMING = firing.Timing(grace=timedelta(seconds=60))


async def make(client: httpx.AsyncClient, headers: dict[str, str] = ALICE, **body: Any) -> Any:
    answer = await client.post(
        BASE,
        json={"name": "Nightly", "cron": "* * * * *", "taskType": "sleep", **body},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


async def tick(resources: Resources, at: datetime, makers: Makers | None = None) -> firing.Report:
    return await firing.fire_due(
        resources.unit, makers or resources.schedule_makers, TIMING, now=at
    )


async def end(resources: Resources, task_id: Any, at: datetime, ending: str) -> None:
    """Claim and end a task as a worker would at `at` (a tick's time: it may lie ahead)."""
    async with resources.unit() as uow:
        claimed = await execution.claim(
            uow,
            worker_id=WORKER,
            queue="default",
            limit=100,
            now=at,
            lease_seconds=60,
            dispatch="poll",
        )
    [task] = [t for t in claimed if t.id == task_id]
    await finish(resources, task, ending, "x" if ending == "failed" else None)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def shown(client: httpx.AsyncClient, schedule: Any, headers: dict[str, str] = ALICE) -> Any:
    answer = await client.get(f"{BASE}/{schedule['id']}", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def schedule_topics(resources: Resources) -> list[str]:
    async with resources.sessionmaker() as session:
        stmt = (
            select(outbox_table.c.topic)
            .where(outbox_table.c.topic.like("operations.schedule.%"))
            .order_by(outbox_table.c.id)
        )
        return [t.rsplit(".", 1)[1] for t in (await session.execute(stmt)).scalars()]


async def tasks_of(resources: Resources, schedule_id: str) -> list[Any]:
    async with resources.sessionmaker() as session:
        stmt = (
            select(tasks_table)
            .where(tasks_table.c.schedule_id == schedule_id)
            .order_by(tasks_table.c.fire_time)
        )
        return list((await session.execute(stmt)).all())


class TestCreate:
    async def test_a_schedule_shows_its_next_five_fire_times_in_utc_and_its_zone(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        answer = await api.post(
            BASE,
            json={
                "name": "Nightly export",
                "description": "feeds the marketplace",
                "cron": "30 2 * * *",
                "timeZone": "Europe/Berlin",
                "taskType": "sleep",
                "params": {"seconds": 0},
                "priority": "high",
                "maxRetries": 1,
                "tags": ["nightly"],
                "notificationSettings": {"onFailure": True},
                "overlapPolicy": "queue-one",
                "catchUp": "all",
                "catchUpLimit": 3,
            },
            headers=ALICE,
        )
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert answer.headers["location"].endswith(f"/schedules/{body['id']}")
        assert body["owner"] == "alice"
        assert body["status"] == "active"
        assert body["priority"] == "high"
        assert (body["overlapPolicy"], body["catchUp"], body["catchUpLimit"]) == (
            "queue-one",
            "all",
            3,
        )
        times = body["nextFireTimes"]
        assert len(times) == 5
        for fire in times:
            local = instant(fire["local"])
            assert (local.hour, local.minute) == (2, 30)
            assert local == instant(fire["utc"])
            assert local.utcoffset() in (timedelta(hours=1), timedelta(hours=2))
        assert instant(body["nextFireAt"]) == instant(times[0]["utc"])
        assert body["lastRuns"] == []
        assert await schedule_topics(resources) == ["created"]

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"cron": "61 * * * *"}, "cron"),
            ({"cron": "* * * *"}, "cron"),
            ({"cron": "every day"}, "cron"),
            ({"timeZone": "Mars/Olympus"}, "timeZone"),
            ({"timeZone": "../../etc/passwd"}, "timeZone"),
            ({"taskType": "nope"}, "taskType"),
            ({"params": {"seconds": -1}}, "params.seconds"),
            ({"params": {"what": 1}}, "params.what"),
            ({"taskType": "export", "entityType": "planet"}, "entityType"),
            ({"templateId": "tpl-1", "taskType": None}, "templateId"),
            ({"templateId": "tpl-1"}, "templateId"),
            ({"taskType": None}, "taskType"),
            ({"templateVersion": 2}, "templateVersion"),
            ({"startAt": "2030-01-02T00:00:00Z", "endAt": "2030-01-01T00:00:00Z"}, "endAt"),
            ({"endAt": "2020-01-01T00:00:00Z"}, "endAt"),
            ({"cron": "0 0 30 2 *"}, "cron"),
            ({"catchUpLimit": 101}, "catchUpLimit"),
            ({"catchUpLimit": 0}, "catchUpLimit"),
            ({"overlapPolicy": "sometimes"}, "overlapPolicy"),
            ({"catchUp": "everything"}, "catchUp"),
            ({"name": ""}, "name"),
            ({"cron": "*" * 201}, "cron"),
            ({"owner": "mallory"}, "owner"),
        ],
    )
    async def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(
        self, api: httpx.AsyncClient, resources: Resources, change: dict[str, Any], field: str
    ) -> None:
        body = {"name": "n", "cron": "* * * * *", "taskType": "sleep", **change}
        answer = await api.post(BASE, json=body, headers=ALICE)
        problem = assert_problem(answer, 422)
        assert field in [e["field"] for e in problem["errors"]], problem
        assert await count(resources, schedules_table) == 0
        assert await count(resources, outbox_table) == 0

    async def test_an_unknown_template_is_refused_and_writes_nothing(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        body = {"name": "n", "cron": "* * * * *", "templateId": "no-such-template"}
        answer = await api.post(BASE, json=body, headers=ALICE)
        assert assert_problem(answer, 422)["errors"][0]["field"] == "templateId"
        assert await count(resources, schedules_table) == 0

    async def test_a_type_the_owner_may_not_create_is_a_403(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        body = {"taskType": "maintenance", "entityType": "outbox-sweep"}
        answer = await api.post(
            BASE, json={"name": "n", "cron": "* * * * *", **body}, headers=ALICE
        )
        assert_problem(answer, 403)
        assert await count(resources, schedules_table) == 0
        made = await make(api, ADMIN, **body)
        assert made["owner"] == "root"

    async def test_six_fields_count_seconds_first(self, api: httpx.AsyncClient) -> None:
        made = await make(api, cron="*/15 * * * * *")
        seconds = {instant(t["utc"]).second for t in made["nextFireTimes"]}
        assert seconds <= {0, 15, 30, 45}


class TestReadAndList:
    async def test_own_schedules_only_admins_see_all(self, api: httpx.AsyncClient) -> None:
        mine = await make(api, ALICE)
        await make(api, BOB, taskType="noop")
        listed = (await api.get(BASE, headers=ALICE)).json()
        assert [s["id"] for s in listed["items"]] == [mine["id"]]
        assert listed["total"] == 1
        assert (await api.get(BASE, headers=ADMIN)).json()["total"] == 2
        only_bob = (await api.get(BASE, params={"owner": "bob"}, headers=ADMIN)).json()
        assert [s["owner"] for s in only_bob["items"]] == ["bob"]
        assert_problem(await api.get(f"{BASE}/{mine['id']}", headers=BOB), 404)
        assert (await shown(api, mine, ADMIN))["id"] == mine["id"]

    async def test_filters_and_paging(self, api: httpx.AsyncClient) -> None:
        first = await make(api)
        await make(api, taskType="noop")
        await make(api, taskType="noop")
        await api.post(f"{BASE}/{first['id']}/pause", headers=ALICE)
        paused = (await api.get(BASE, params={"status": "paused"}, headers=ALICE)).json()
        assert [s["id"] for s in paused["items"]] == [first["id"]]
        noop = (await api.get(BASE, params={"taskType": "noop"}, headers=ALICE)).json()
        assert noop["total"] == 2
        page = (await api.get(BASE, params={"pageSize": 1, "page": 3}, headers=ALICE)).json()
        assert [s["id"] for s in page["items"]] == [first["id"]]
        assert_problem(await api.get(BASE, params={"status": "gone"}, headers=ALICE), 422)
        assert_problem(await api.get(f"{BASE}/not-a-uuid", headers=ALICE), 422)


class TestChange:
    async def test_patch_changes_the_fields_sent_and_moves_the_next_fire_time(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        made = await make(api, tags=["a"])
        answer = await api.patch(
            f"{BASE}/{made['id']}",
            json={"cron": "0 9 * * MON", "timeZone": "America/New_York", "description": "x"},
            headers=ALICE,
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["cron"], body["timeZone"], body["description"]) == (
            "0 9 * * MON",
            "America/New_York",
            "x",
        )
        assert body["tags"] == ["a"]
        assert body["version"] == made["version"] + 1
        local = instant(body["nextFireTimes"][0]["local"])
        assert (local.weekday(), local.hour) == (0, 9)
        assert await schedule_topics(resources) == ["created", "updated"]

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"name": None}, "name"),
            ({"cron": None}, "cron"),
            ({"cron": "nope"}, "cron"),
            ({"params": {"seconds": "long"}}, "params.seconds"),
            ({"taskType": "maintenance", "entityType": "outbox-sweep"}, None),
            ({"unknown": 1}, "unknown"),
        ],
    )
    async def test_a_bad_change_is_refused_and_changes_nothing(
        self,
        api: httpx.AsyncClient,
        resources: Resources,
        change: dict[str, Any],
        field: str | None,
    ) -> None:
        made = await make(api)
        answer = await api.patch(f"{BASE}/{made['id']}", json=change, headers=ALICE)
        if field is None:
            assert_problem(answer, 403)
        else:
            problem = assert_problem(answer, 422)
            assert field in [e["field"] for e in problem["errors"]]
        assert (await shown(api, made))["version"] == made["version"]
        assert await schedule_topics(resources) == ["created"]

    async def test_switching_to_an_unknown_template_is_a_422(self, api: httpx.AsyncClient) -> None:
        made = await make(api)
        answer = await api.patch(
            f"{BASE}/{made['id']}", json={"templateId": "t", "taskType": None}, headers=ALICE
        )
        assert assert_problem(answer, 422)["errors"][0]["field"] == "templateId"

    async def test_only_the_owner_or_an_admin_changes_it(self, api: httpx.AsyncClient) -> None:
        made = await make(api)
        assert_problem(await api.patch(f"{BASE}/{made['id']}", json={}, headers=BOB), 404)
        for verb in ("pause", "resume"):
            assert_problem(await api.post(f"{BASE}/{made['id']}/{verb}", headers=BOB), 404)
        assert_problem(await api.delete(f"{BASE}/{made['id']}", headers=BOB), 404)
        answer = await api.patch(f"{BASE}/{made['id']}", json={"name": "by root"}, headers=ADMIN)
        assert answer.json()["owner"] == "alice"


class TestPauseResumeDelete:
    async def test_paused_schedules_do_not_fire_and_resume_from_now(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        made = await make(api)
        paused = (await api.post(f"{BASE}/{made['id']}/pause", headers=ALICE)).json()
        assert (paused["status"], paused["pausedReason"]) == ("paused", "paused by alice")
        assert paused["nextFireTimes"] == []
        again = await api.post(f"{BASE}/{made['id']}/pause", headers=ALICE)
        assert again.json()["version"] == paused["version"]
        later = instant(made["nextFireAt"]) + timedelta(minutes=10)
        assert (await tick(resources, later)).made == 0
        resumed = (await api.post(f"{BASE}/{made['id']}/resume", headers=ALICE)).json()
        assert (resumed["status"], resumed["pausedReason"]) == ("active", None)
        assert len(resumed["nextFireTimes"]) == 5
        assert await schedule_topics(resources) == ["created", "paused", "resumed"]

    async def test_delete_keeps_the_tasks_it_made(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        made = await make(api)
        await tick(resources, instant(made["nextFireAt"]))
        answer = await api.delete(f"{BASE}/{made['id']}", headers=ALICE)
        assert answer.status_code == 204
        assert_problem(await api.get(f"{BASE}/{made['id']}", headers=ALICE), 404)
        assert_problem(await api.delete(f"{BASE}/{made['id']}", headers=ALICE), 404)
        assert len(await tasks_of(resources, made["id"])) == 1
        assert await count(resources, schedule_runs_table) == 0
        assert (await schedule_topics(resources))[-1] == "deleted"


class TestFiring:
    async def test_a_fire_time_makes_a_task_as_the_owner(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        made = await make(
            api, params={"seconds": 0}, priority="low", tags=["t1"], name="Every minute"
        )
        at = instant(made["nextFireAt"])
        assert (await tick(resources, at - timedelta(seconds=1))).made == 0
        assert (await tick(resources, at)).made == 1
        assert (await tick(resources, at)).made == 0  # the same fire time never twice
        [task] = await tasks_of(resources, made["id"])
        body = (await api.get(f"{TASKS}/{task.id}", headers=ALICE)).json()
        assert body["scheduleId"] == made["id"]
        assert instant(body["fireTime"]) == at
        assert (body["requestedBy"], body["priority"], body["tags"], body["name"]) == (
            "alice",
            "low",
            ["t1"],
            "Every minute",
        )
        assert body["params"] == {"seconds": 0}
        detail = await shown(api, made)
        assert detail["lastRuns"][0]["taskId"] == str(task.id)
        assert detail["lastRuns"][0]["taskStatus"] == "pending"
        assert detail["lastRuns"][0]["outcome"] == "created"
        assert instant(detail["nextFireAt"]) == at + timedelta(minutes=1)
        assert detail["lastTaskId"] == str(task.id)
        assert await schedule_topics(resources) == ["created", "fired"]

    async def test_overlap_skip_waits_for_the_last_task_to_finish(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        made = await make(api, overlapPolicy="skip")
        at = instant(made["nextFireAt"])
        await tick(resources, at)
        report = await tick(resources, at + timedelta(minutes=1))
        assert (report.made, report.skipped) == (0, 1)
        [task] = await tasks_of(resources, made["id"])
        await end(resources, task.id, at + timedelta(minutes=1), "completed")
        assert (await tick(resources, at + timedelta(minutes=2))).made == 1
        runs = (await shown(api, made))["lastRuns"]
        assert [r["outcome"] for r in runs] == ["created", "skipped", "created"]
        assert runs[2]["taskStatus"] == "completed"

    async def test_queue_one_keeps_one_fire_time_waiting(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        made = await make(api, overlapPolicy="queue-one")
        at = instant(made["nextFireAt"])
        await tick(resources, at)
        await tick(resources, at + timedelta(minutes=1))  # queued
        report = await tick(resources, at + timedelta(minutes=2))  # one waits already
        assert (report.made, report.skipped) == (0, 1)
        assert instant((await shown(api, made))["queuedFireAt"]) == at + timedelta(minutes=1)
        [first] = await tasks_of(resources, made["id"])
        await end(resources, first.id, at + timedelta(minutes=2), "failed")
        report = await tick(resources, at + timedelta(minutes=2, seconds=30))
        assert report.made == 1
        tasks = await tasks_of(resources, made["id"])
        assert [t.fire_time for t in tasks] == [at, at + timedelta(minutes=1)]
        assert (await shown(api, made))["queuedFireAt"] is None

    async def test_allow_makes_a_task_at_every_fire_time(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        made = await make(api, overlapPolicy="allow")
        at = instant(made["nextFireAt"])
        for minute in range(3):
            await tick(resources, at + timedelta(minutes=minute))
        assert len(await tasks_of(resources, made["id"])) == 3

    @pytest.mark.parametrize(
        ("catch_up", "made_after_downtime"), [("none", 1), ("latest", 2), ("all", 4)]
    )
    async def test_catch_up_after_downtime(
        self,
        api: httpx.AsyncClient,
        resources: Resources,
        catch_up: str,
        made_after_downtime: int,
    ) -> None:
        """Down for an hour: the fire time on time (within the grace) fires; of the missed
        ones none, the latest, or the latest catchUpLimit (3) fire."""
        made = await make(api, overlapPolicy="allow", catchUp=catch_up, catchUpLimit=3)
        at = instant(made["nextFireAt"])
        report = await tick(resources, at + timedelta(hours=1, seconds=1))
        assert report.made == made_after_downtime
        tasks = await tasks_of(resources, made["id"])
        assert tasks[-1].fire_time == at + timedelta(hours=1)
        detail = await shown(api, made)
        assert instant(detail["nextFireAt"]) == at + timedelta(hours=1, minutes=1)

    async def test_a_schedule_from_a_template_makes_its_tasks_and_pauses_when_it_is_gone(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        """The template's defaults with the schedule's overrides make each task, which records
        the template and its version; a deactivated template pauses the schedule."""
        template = {
            "name": "Short nap",
            "category": "diagnostics",
            "taskType": "sleep",
            "params": {"seconds": 0.5},
            "optionalFields": ["seconds"],
            "tags": ["nap"],
        }
        answer = await api.post(f"{API}/templates", json=template, headers=ADMIN)
        assert answer.status_code == 201, answer.text
        template_id = answer.json()["id"]
        body = {"name": "Naps", "cron": "* * * * *", "templateId": template_id}
        body["overlapPolicy"] = "allow"  # the first task need not end before the next fire
        made = await api.post(BASE, json={**body, "params": {"seconds": 0}}, headers=ALICE)
        assert made.status_code == 201, made.text
        schedule = made.json()
        at = instant(schedule["nextFireAt"])
        assert (await tick(resources, at)).made == 1
        [task] = await tasks_of(resources, schedule["id"])
        shown_task = (await api.get(f"{TASKS}/{task.id}", headers=ALICE)).json()
        assert (shown_task["templateId"], shown_task["templateVersion"]) == (template_id, 1)
        assert shown_task["params"] == {"seconds": 0}
        assert shown_task["taskType"] == "sleep"
        gone = await api.post(f"{API}/templates/{template_id}/deactivate", headers=ADMIN)
        assert gone.status_code in (200, 204), gone.text
        report = await tick(resources, at + timedelta(minutes=1))
        assert (report.made, report.paused) == (0, 1)
        assert (await shown(api, schedule))["status"] == "paused"

    async def test_a_schedule_whose_type_became_invalid_pauses_itself(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        """A new deploy's catalog no longer has the type: the schedule pauses with the reason,
        and resuming is refused while the reason holds."""
        made = await make(api)
        without_sleep = Catalog(
            [t for t in resources.catalog if t.name != "sleep"], resources.catalog.limits
        )
        report = await tick(resources, instant(made["nextFireAt"]), Makers(without_sleep))
        assert (report.made, report.paused) == (0, 1)
        detail = await shown(api, made)
        assert detail["status"] == "paused"
        assert detail["pausedReason"].startswith("taskType: unknown task type 'sleep'")
        assert await schedule_topics(resources) == ["created", "paused"]
        assert await tasks_of(resources, made["id"]) == []

    async def test_a_forbidden_type_pauses_it_too(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        made = await make(api, ADMIN, taskType="maintenance", entityType="outbox-sweep")
        async with resources.sessionmaker() as session:  # the owner lost the admin role
            await session.execute(
                schedules_table.update()
                .where(schedules_table.c.id == UUID(made["id"]))
                .values(owner_roles=[])
            )
            await session.commit()
        await tick(resources, instant(made["nextFireAt"]))
        detail = await shown(api, made, ADMIN)
        assert "needs the admin role" in detail["pausedReason"]
        # resumed by its owner, who holds the role: checked with their roles now
        resumed = await api.post(f"{BASE}/{made['id']}/resume", headers=ADMIN)
        assert resumed.json()["status"] == "active"


class TestFuzzFound:
    async def test_null_tags_in_a_change_are_a_422(self, api: httpx.AsyncClient) -> None:
        made = await make(api)
        answer = await api.patch(f"{BASE}/{made['id']}", json={"tags": None}, headers=ALICE)
        assert [e["field"] for e in assert_problem(answer, 422)["errors"]] == ["tags"]

    async def test_the_document_says_tags_are_unique(self, api: httpx.AsyncClient) -> None:
        document = (await api.get("/openapi.json")).json()["components"]["schemas"]
        assert document["ScheduleCreate"]["properties"]["tags"]["uniqueItems"] is True
        answer = await api.post(
            BASE,
            json={"name": "n", "cron": "* * * * *", "taskType": "noop", "tags": ["a", "a"]},
            headers=ALICE,
        )
        assert_problem(answer, 422)
