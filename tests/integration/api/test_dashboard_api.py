"""The JSON routes the dashboard uses: list filters (queue, tag, search inside params and
result), bulk actions with their preview, run now, and queues with pause and resume."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import select

from service.bootstrap import Resources
from service.db.repositories.tasks import TaskRepository
from service.db.tables import outbox_table, queue_audit_table
from service.domain.tasks import TaskStatus
from service.usecases.bulk_actions import MAX_TASKS
from tests.fixtures.app import ADMIN, user, wait_until
from tests.integration.api.support import (
    BASE,
    assert_problem,
    create,
    event_types,
    finish,
    make_failed,
    start,
)

BULK = f"{BASE}:bulk"
QUEUES = "/api/v1/operations/queues"


async def _ids(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None, **q: Any
) -> set[str]:
    response = await client.get(BASE, params={"pageSize": 100, **q}, headers=headers or user())
    assert response.status_code == 200, response.text
    return {t["id"] for t in response.json()["items"]}


async def test_search_looks_inside_params_and_result(
    api: httpx.AsyncClient, resources: Resources
) -> None:
    needle = await create(api, taskType="fail", params={"message": "needle 50% off_now"})
    other = await create(api, taskType="fail", params={"message": "haystack"})
    unicode = await create(api, taskType="fail", params={"message": "élodie's order"})
    assert await _ids(api, search="needle") == {needle["id"]}
    # LIKE wildcards in the search are taken literally
    assert await _ids(api, search="50% off_") == {needle["id"]}
    assert await _ids(api, search="0%_") == set()
    assert await _ids(api, search="élodie") == {unicode["id"]}
    done = await start(resources, other["id"])
    async with resources.unit() as uow:  # a result, as a handler leaves one
        await TaskRepository(uow.session).update_where(
            done.id, [TaskStatus.PROCESSING], {"result": {"orderRef": "ZX-4411"}}
        )
    assert await _ids(api, search="zx-4411") == {other["id"]}


async def test_queue_and_tag_filters(api: httpx.AsyncClient) -> None:
    tagged = await create(api, params={"seconds": 1}, tags=["nightly", "eu"])
    await create(api, params={"seconds": 1}, tags=["nightly-extra"])
    urgent = await create(api, params={"seconds": 1}, queue="urgent")
    assert await _ids(api, tag="nightly") == {tagged["id"]}
    assert await _ids(api, tag="eu") == {tagged["id"]}
    assert await _ids(api, queue="urgent") == {urgent["id"]}
    assert_problem(await api.get(BASE, params={"queue": "nope"}, headers=user()), 422)


async def test_bulk_retry_by_filter_previews_then_acts_as_single_retries(
    api: httpx.AsyncClient, resources: Resources
) -> None:
    failed = [await make_failed(resources, api, tags=["batch"]) for _ in range(3)]
    await create(api, tags=["batch"])  # pending: matched, not retryable
    bobs = await make_failed(resources, api, headers=user("bob"), tags=["batch"])
    body = {"action": "retry", "filter": {"tag": ["batch"], "status": "failed"}}
    preview = await api.post(BULK, json={**body, "preview": True}, headers=user())
    assert preview.status_code == 200, preview.text
    assert preview.json() == {
        "action": "retry",
        "matched": 3,
        "eligible": 3,
        "applied": False,
        "changed": 0,
        "skipped": 0,
        "limit": MAX_TASKS,
    }
    assert (await api.post(BULK, json={**body, "preview": True}, headers=ADMIN)).json()[
        "matched"
    ] == 4  # admins reach everyone's tasks
    assert (
        await api.post(
            BULK,
            json={"action": "retry", "filter": {"tag": ["batch"]}, "preview": True},
            headers=user(),
        )
    ).json()["matched"] == 4
    done = await api.post(BULK, json=body, headers=user())
    assert done.json()["changed"] == 3
    for task in failed:
        got = (await api.get(f"{BASE}/{task['id']}", headers=user())).json()
        assert got["status"] == "pending"
        assert (await event_types(api, task["id"]))[-1] == "retried"
        events = (await api.get(f"{BASE}/{task['id']}/events", headers=user())).json()
        assert events[-1]["actor"] == "alice"
        assert events[-1]["message"] == "retried by request"
    bob = (await api.get(f"{BASE}/{bobs['id']}", headers=user("bob"))).json()
    assert bob["status"] == "failed"


async def test_bulk_on_ids_cancel_and_run_now(api: httpx.AsyncClient) -> None:
    pending = await create(api)
    later = await create(api, scheduledAt="2099-01-01T00:00:00Z")
    answer = await api.post(
        BULK, json={"action": "run", "ids": [pending["id"], later["id"]]}, headers=user()
    )
    assert answer.json()["matched"] == 2
    assert answer.json()["eligible"] == 1
    assert answer.json()["changed"] == 1
    moved = (await api.get(f"{BASE}/{later['id']}", headers=user())).json()
    assert moved["status"] == "pending"
    assert (await event_types(api, later["id"])) == ["scheduled", "created"]
    cancel = await api.post(BULK, json={"action": "cancel", "ids": [pending["id"]]}, headers=user())
    assert cancel.json()["changed"] == 1
    # another user's task is not reached
    other = await api.post(
        BULK, json={"action": "cancel", "ids": [later["id"]]}, headers=user("bob")
    )
    assert other.json()["matched"] == 0


async def test_bulk_refuses_bad_requests(api: httpx.AsyncClient) -> None:
    task = await create(api)
    both = {"action": "cancel", "ids": [task["id"]], "filter": {}}
    assert_problem(await api.post(BULK, json=both, headers=user()), 422)
    assert_problem(await api.post(BULK, json={"action": "cancel"}, headers=user()), 422)
    assert_problem(
        await api.post(BULK, json={"action": "explode", "ids": [task["id"]]}, headers=user()), 422
    )
    assert_problem(await api.post(BULK, json={"action": "cancel", "ids": []}, headers=user()), 422)
    assert_problem(
        await api.post(
            BULK, json={"action": "cancel", "filter": {"status": "nope"}}, headers=user()
        ),
        422,
    )
    bad: dict[str, Any]
    for bad in (
        {"action": "cancel", "ids": [task["id"]], "preview": 0},
        {"action": "cancel", "ids": None, "filter": {}},
        {"action": "cancel", "filter": None},
    ):
        assert_problem(await api.post(BULK, json=bad, headers=user()), 422)
    assert (await api.get(f"{BASE}/{task['id']}", headers=user())).json()["status"] == "pending"


async def test_a_bad_filter_names_its_field_as_the_client_wrote_it(api: httpx.AsyncClient) -> None:
    """Nothing of pydantic's own (its validators' steps, the null branch of an optional
    field) leaks into the field a problem names."""
    body = {"action": "cancel", "filter": {"tag": "not-a-list"}}
    problem = assert_problem(await api.post(BULK, json=body, headers=user()), 422)
    assert [e["field"] for e in problem["errors"]] == ["filter.tag"]


async def test_bulk_over_the_bound_is_refused_whole(api: httpx.AsyncClient) -> None:
    for _ in range(MAX_TASKS // 1000 + 1):
        batch = {"tasks": [{"taskType": "noop", "tags": ["many"]} for _ in range(1000)]}
        assert (await api.post(f"{BASE}:batch", json=batch, headers=user())).status_code == 200
    body = {"action": "cancel", "filter": {"tag": ["many"]}}
    preview = (await api.post(BULK, json={**body, "preview": True}, headers=user())).json()
    assert preview["eligible"] > MAX_TASKS
    assert_problem(await api.post(BULK, json=body, headers=user()), 422)
    assert await _ids(api, status="cancelled") == set()


async def test_queues_pause_and_resume_are_admin_only_with_event_and_audit(
    api: httpx.AsyncClient, resources: Resources
) -> None:
    await create(api)
    listed = await api.get(QUEUES, headers=ADMIN)
    assert listed.status_code == 200, listed.text
    default = next(q for q in listed.json() if q["queue"] == "default")
    assert default["depth"] == 1
    assert default["paused"] is False
    assert default["oldestWaitingSeconds"] >= 0
    assert_problem(await api.get(QUEUES, headers=user()), 403)
    assert_problem(await api.post(f"{QUEUES}/default/pause", headers=user()), 403)
    assert_problem(await api.post(f"{QUEUES}/nope/pause", headers=ADMIN), 422)
    paused = await api.post(f"{QUEUES}/default/pause", headers=ADMIN)
    assert paused.json()["paused"] is True
    assert paused.json()["pausedBy"] == "root"
    await api.post(f"{QUEUES}/default/pause", headers=ADMIN)  # again: nothing more recorded
    resumed = await api.post(f"{QUEUES}/default/resume", headers=ADMIN)
    assert resumed.json()["paused"] is False
    async with resources.sessionmaker() as session:
        audit = (
            await session.execute(
                select(
                    queue_audit_table.c.queue, queue_audit_table.c.action, queue_audit_table.c.actor
                ).order_by(queue_audit_table.c.id)
            )
        ).all()
        topics = (
            await session.execute(
                select(outbox_table.c.topic, outbox_table.c.payload)
                .where(outbox_table.c.task_id.is_(None))
                .order_by(outbox_table.c.id)
            )
        ).all()
    assert [tuple(a) for a in audit] == [
        ("default", "paused", "root"),
        ("default", "resumed", "root"),
    ]
    assert [t.topic for t in topics] == ["operations.queue.paused", "operations.queue.resumed"]
    assert topics[0].payload["actor"] == "root"


#: a worker reads the paused queues at most once a second: a pause reaches it within this
PAUSE_REACHES_WORKERS = 1.2


async def test_a_paused_queue_is_not_claimed_until_resumed(embedded: httpx.AsyncClient) -> None:
    assert (await embedded.post(f"{QUEUES}/default/pause", headers=ADMIN)).status_code == 200
    await asyncio.sleep(PAUSE_REACHES_WORKERS)
    waiting = await create(embedded, taskType="noop")
    urgent = await create(embedded, taskType="noop", queue="urgent")

    async def status(task: dict[str, Any]) -> str:
        answer = await embedded.get(f"{BASE}/{task['id']}", headers=user())
        return str(answer.json()["status"])

    async def completed(task: dict[str, Any]) -> bool:
        return await status(task) == "completed"

    await wait_until(lambda: completed(urgent))  # other queues run on
    await asyncio.sleep(PAUSE_REACHES_WORKERS)  # claims went on meanwhile
    assert await status(waiting) == "pending"
    assert (await embedded.post(f"{QUEUES}/default/resume", headers=ADMIN)).status_code == 200
    await wait_until(lambda: completed(waiting))


async def test_run_now_and_finish_leave_counts(
    api: httpx.AsyncClient, resources: Resources
) -> None:
    task = await create(api)
    await finish(resources, await start(resources, task["id"]), "completed")
    listed = (await api.get(QUEUES, headers=ADMIN)).json()
    default = next(q for q in listed if q["queue"] == "default")
    assert default["finishedLast5Minutes"] == 1
    assert default["depth"] == 0
