"""PATCH /tasks/{id} (with ETag and If-Match), POST /tasks/{id}/run, and finding tasks by
tag, name and description."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from service.bootstrap import Resources
from service.clock import utcnow
from tests.fixtures.app import ADMIN, user
from tests.integration.api.support import (
    BASE,
    assert_problem,
    counts,
    create,
    event_types,
    make_completed,
    make_failed,
    start,
    try_start,
)

ALICE = user("alice")
BOB = user("bob")
LATER = "2999-01-01T00:00:00Z"


async def patch(
    api: httpx.AsyncClient, task_id: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await api.patch(f"{BASE}/{task_id}", json=body, headers={**ALICE, **headers})


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class TestUpdating:
    async def test_every_field_of_a_pending_task(self, api: httpx.AsyncClient) -> None:
        task = await create(api, ALICE, name="Old", tags=["a"])
        body = {
            "name": "New name",
            "description": "Now described",
            "tags": ["b", "c"],
            "priority": "high",
            "params": {"seconds": 2},
            "maxRetries": 5,
            "notificationSettings": {"onFailure": True, "channels": ["event"]},
        }
        changed = ok(await patch(api, task["id"], body))
        assert (changed["name"], changed["description"]) == ("New name", "Now described")
        assert (changed["tags"], changed["priority"]) == (["b", "c"], "high")
        assert (changed["params"], changed["maxRetries"]) == ({"seconds": 2}, 5)
        assert changed["notificationSettings"]["channels"] == ["event"]
        assert changed["status"] == "pending"
        assert changed["version"] == task["version"] + 1
        shown = ok(await api.get(f"{BASE}/{task['id']}", headers=ALICE))
        assert shown == changed
        assert await event_types(api, task["id"]) == ["created", "updated"]

    async def test_get_and_patch_answer_the_etag(self, api: httpx.AsyncClient) -> None:
        task = await create(api, ALICE)
        got = await api.get(f"{BASE}/{task['id']}", headers=ALICE)
        assert got.headers["ETag"] == f'W/"{task["version"]}"'
        changed = await patch(api, task["id"], {"name": "x"}, **{"If-Match": got.headers["ETag"]})
        assert changed.status_code == 200, changed.text
        assert changed.headers["ETag"] == f'W/"{task["version"] + 1}"'

    async def test_a_stale_if_match_is_412_and_changes_nothing(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api, ALICE)
        etag = (await api.get(f"{BASE}/{task['id']}", headers=ALICE)).headers["ETag"]
        ok(await patch(api, task["id"], {"name": "first"}))
        before = await counts(resources)
        stale = await patch(api, task["id"], {"name": "second"}, **{"If-Match": etag})
        assert_problem(stale, 412)
        assert await counts(resources) == before
        assert ok(await api.get(f"{BASE}/{task['id']}", headers=ALICE))["name"] == "first"

    @pytest.mark.parametrize("value", ["*", '"2"', 'W/"1", W/"2"'])
    async def test_if_match_forms(self, api: httpx.AsyncClient, value: str) -> None:
        task = await create(api, ALICE)
        ok(await patch(api, task["id"], {"name": "one"}))  # now at version 2
        ok(await patch(api, task["id"], {"name": "two"}, **{"If-Match": value}))

    @pytest.mark.parametrize("value", ["1", 'W/"x"', "W/1", "null", '"1'])
    async def test_an_if_match_naming_no_version_never_matches(
        self, api: httpx.AsyncClient, value: str
    ) -> None:
        task = await create(api, ALICE)  # at version 1
        response = await patch(api, task["id"], {"name": "x"}, **{"If-Match": value})
        assert_problem(response, 412)
        assert ok(await api.get(f"{BASE}/{task['id']}", headers=ALICE))["name"] is None

    async def test_a_too_long_if_match_is_422(self, api: httpx.AsyncClient) -> None:
        task = await create(api, ALICE)
        response = await patch(api, task["id"], {"name": "x"}, **{"If-Match": '"1"' * 100})
        assert_problem(response, 422)

    async def test_a_future_scheduled_at_schedules_a_pending_task(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api, ALICE)
        changed = ok(await patch(api, task["id"], {"scheduledAt": LATER}))
        assert changed["status"] == "scheduled"
        assert changed["availableAt"].startswith("2999-01-01")
        assert await try_start(resources, task["id"]) is None
        assert await event_types(api, task["id"]) == ["created", "updated", "scheduled"]

    @pytest.mark.parametrize("when", ["past", "null"])
    async def test_a_past_or_no_scheduled_at_makes_a_scheduled_task_due(
        self, api: httpx.AsyncClient, resources: Resources, when: str
    ) -> None:
        task = await create(api, ALICE, scheduledAt=LATER)
        past = (utcnow() - timedelta(minutes=5)).isoformat()
        changed = ok(
            await patch(api, task["id"], {"scheduledAt": past if when == "past" else None})
        )
        assert changed["status"] == "pending"
        assert datetime.fromisoformat(changed["availableAt"]) > utcnow() - timedelta(minutes=1)
        assert await event_types(api, task["id"]) == ["scheduled", "updated", "created"]
        assert await try_start(resources, task["id"]) is not None

    async def test_a_later_scheduled_at_moves_a_scheduled_task(
        self, api: httpx.AsyncClient
    ) -> None:
        task = await create(api, ALICE, scheduledAt=LATER)
        changed = ok(await patch(api, task["id"], {"scheduledAt": "3000-06-01T00:00:00Z"}))
        assert (changed["status"], changed["availableAt"][:10]) == ("scheduled", "3000-06-01")
        assert await event_types(api, task["id"]) == ["scheduled", "updated"]

    async def test_a_waiting_task_can_be_changed(self, api: httpx.AsyncClient) -> None:
        task = await create(api, ALICE, taskType="import", entityType="product", fileName="p.csv")
        changed = ok(await patch(api, task["id"], {"name": "Import", "params": {"mode": "upsert"}}))
        assert (changed["status"], changed["params"]) == ("waiting", {"mode": "upsert"})

    async def test_params_are_checked_by_the_catalog(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api, ALICE)
        before = await counts(resources)
        for params, field in (({"seconds": -1}, "params.seconds"), ({"nap": 1}, "params.nap")):
            response = await patch(api, task["id"], {"params": params})
            assert [e["field"] for e in assert_problem(response, 422)["errors"]] == [field]
        assert await counts(resources) == before

    async def test_null_resets_to_the_defaults(self, api: httpx.AsyncClient) -> None:
        task = await create(api, ALICE, tags=["x"], priority="high", maxRetries=7, name="n")
        body = {"tags": None, "priority": None, "maxRetries": None, "name": None}
        changed = ok(await patch(api, task["id"], body))
        assert (changed["tags"], changed["priority"], changed["name"]) == ([], "normal", None)
        assert changed["maxRetries"] == 3

    async def test_urgent_moves_it_to_the_urgent_queue(self, api: httpx.AsyncClient) -> None:
        task = await create(api, ALICE)
        changed = ok(await patch(api, task["id"], {"priority": "urgent"}))
        assert (changed["priority"], changed["queue"]) == ("urgent", "urgent")

    async def test_an_empty_patch_changes_nothing(self, api: httpx.AsyncClient) -> None:
        task = await create(api, ALICE)
        assert ok(await patch(api, task["id"], {}))["version"] == task["version"]
        assert await event_types(api, task["id"]) == ["created"]

    async def test_unknown_fields_are_refused(self, api: httpx.AsyncClient) -> None:
        task = await create(api, ALICE)
        for body, field in (
            ({"status": "completed"}, "status"),
            ({"taskType": "noop"}, "taskType"),
        ):
            response = await patch(api, task["id"], body)
            assert [e["field"] for e in assert_problem(response, 422)["errors"]] == [field]

    @pytest.mark.parametrize("state", ["processing", "completed", "failed", "cancelled"])
    async def test_other_states_are_409_naming_the_state(
        self, api: httpx.AsyncClient, resources: Resources, state: str
    ) -> None:
        if state == "processing":
            task = await create(api, ALICE)
            await start(resources, task["id"])
        elif state == "completed":
            task = await make_completed(resources, api)
        elif state == "failed":
            task = await make_failed(resources, api)
        else:
            task = await create(api, ALICE)
            await api.post(f"{BASE}/{task['id']}/cancel", headers=ALICE)
        before = await counts(resources)
        problem = assert_problem(await patch(api, task["id"], {"name": "late"}), 409)
        assert state in problem["detail"]
        assert problem["current"] == state
        assert await counts(resources) == before

    async def test_owner_or_admin_only(self, api: httpx.AsyncClient) -> None:
        task = await create(api, ALICE)
        response = await api.patch(f"{BASE}/{task['id']}", json={"name": "b"}, headers=BOB)
        assert_problem(response, 404)
        response = await api.patch(f"{BASE}/{task['id']}", json={"name": "r"}, headers=ADMIN)
        assert ok(response)["name"] == "r"
        events = (await api.get(f"{BASE}/{task['id']}/events", headers=ALICE)).json()
        assert events[-1]["actor"] == "root"

    async def test_the_event_is_published_through_the_outbox(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api, ALICE)
        ok(await patch(api, task["id"], {"tags": ["t"]}))
        # the autouse check of conftest holds: one outbox row per event, same order
        assert await counts(resources) == {"tasks": 1, "events": 2, "outbox": 2}


class TestRunNow:
    async def test_a_scheduled_task_becomes_due_now(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api, ALICE, scheduledAt=LATER)
        response = await api.post(f"{BASE}/{task['id']}/run", headers=ALICE)
        ran = ok(response)
        assert ran["status"] == "pending"
        assert response.headers["ETag"] == f'W/"{ran["version"]}"'
        assert datetime.fromisoformat(ran["availableAt"]) <= utcnow()
        assert ran["scheduledAt"].startswith("2999")
        assert await event_types(api, task["id"]) == ["scheduled", "created"]
        assert await try_start(resources, task["id"]) is not None

    async def test_other_states_are_409(self, api: httpx.AsyncClient, resources: Resources) -> None:
        pending = await create(api, ALICE)
        problem = assert_problem(await api.post(f"{BASE}/{pending['id']}/run", headers=ALICE), 409)
        assert problem["current"] == "pending"
        done = await make_completed(resources, api)
        assert_problem(await api.post(f"{BASE}/{done['id']}/run", headers=ALICE), 409)

    async def test_owner_or_admin_only(self, api: httpx.AsyncClient) -> None:
        task = await create(api, ALICE, scheduledAt=LATER)
        assert_problem(await api.post(f"{BASE}/{task['id']}/run", headers=BOB), 404)
        ok(await api.post(f"{BASE}/{task['id']}/run", headers=ADMIN))


class TestFinding:
    async def test_tag_filter_takes_every_tag_given(self, api: httpx.AsyncClient) -> None:
        both = await create(api, ALICE, tags=["nightly", "feed"])
        one = await create(api, ALICE, tags=["nightly"])
        await create(api, ALICE, tags=["feeds"])
        await create(api, ALICE)

        async def ids(**query: Any) -> set[str]:
            response = await api.get(BASE, params=query, headers=ALICE)
            return {t["id"] for t in ok(response)["items"]}

        assert await ids(tag="nightly") == {both["id"], one["id"]}
        assert await ids(tag=["nightly", "feed"]) == {both["id"]}
        assert await ids(tag="feed") == {both["id"]}
        assert await ids(tag="nothing") == set()
        assert_problem(await api.get(BASE, params={"tag": "has space"}, headers=ALICE), 422)

    async def test_search_covers_name_and_description(self, api: httpx.AsyncClient) -> None:
        named = await create(api, ALICE, name="Marketplace feed")
        described = await create(api, ALICE, description="for the MARKETPLACE team")
        await create(api, ALICE, name="Other")

        async def ids(text: str) -> set[str]:
            response = await api.get(BASE, params={"search": text}, headers=ALICE)
            return {t["id"] for t in ok(response)["items"]}

        assert await ids("marketplace") == {named["id"], described["id"]}
        assert await ids("feed") == {named["id"]}
        assert len(await ids("sleep")) == 3  # the task type still matches

    async def test_a_user_finds_only_their_own(self, api: httpx.AsyncClient) -> None:
        await create(api, BOB, tags=["shared"])
        mine = await create(api, ALICE, tags=["shared"])
        response = await api.get(BASE, params={"tag": "shared"}, headers=ALICE)
        assert [t["id"] for t in ok(response)["items"]] == [mine["id"]]
        everyone = await api.get(BASE, params={"tag": "shared"}, headers=ADMIN)
        assert ok(everyone)["total"] == 2
