"""POST /tasks:batch — many tasks in one request and one transaction, a result per item."""

from __future__ import annotations

from typing import Any

import httpx

from service.bootstrap import Resources
from tests.fixtures.app import ADMIN, user
from tests.integration.api.support import BASE, assert_problem, counts

ALICE = user("alice")
BATCH = BASE + ":batch"


async def batch(api: httpx.AsyncClient, tasks: list[dict[str, Any]], headers: Any = None) -> Any:
    response = await api.post(BATCH, json={"tasks": tasks}, headers=headers or ALICE)
    assert response.status_code == 200, response.text
    return response.json()


class TestBatchCreate:
    async def test_every_task_is_created_in_one_go(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        tasks = [{"taskType": "noop"}] * 250 + [{"taskType": "sleep", "params": {"seconds": 1}}]
        answer = await batch(api, tasks)
        assert (answer["created"], answer["refused"]) == (251, 0)
        assert [i["index"] for i in answer["items"]] == list(range(251))
        assert {i["status"] for i in answer["items"]} == {201}
        assert await counts(resources) == {"tasks": 251, "events": 251, "outbox": 251}
        last = answer["items"][-1]
        got = (await api.get(f"{BASE}/{last['id']}", headers=ALICE)).json()
        assert (got["taskType"], got["params"], got["status"]) == (
            "sleep",
            {"seconds": 1},
            "pending",
        )
        assert last["taskStatus"] == "pending"

    async def test_refused_items_are_reported_and_only_they_are_left_out(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        answer = await batch(
            api,
            [
                {"taskType": "noop"},
                {"taskType": "sleep", "params": {"seconds": -1}},
                {"taskType": "maintenance", "entityType": "outbox-sweep"},
                {"taskType": "import", "entityType": "product"},
                {"taskType": "teleport"},
                {"taskType": "noop", "scheduledAt": "2099-01-01T00:00:00Z"},
            ],
        )
        statuses = [(i["index"], i["status"]) for i in answer["items"]]
        assert statuses == [(0, 201), (1, 422), (2, 403), (3, 422), (4, 422), (5, 201)]
        assert (answer["created"], answer["refused"]) == (2, 4)
        fields = {
            i["index"]: i["problem"]["errors"][0]["field"]
            for i in answer["items"]
            if i["status"] == 422
        }
        assert fields == {1: "tasks.1.params.seconds", 3: "tasks.3.fileName", 4: "tasks.4.taskType"}
        assert answer["items"][5]["taskStatus"] == "scheduled"
        assert await counts(resources) == {"tasks": 2, "events": 2, "outbox": 2}

    async def test_an_admin_may_batch_maintenance(self, api: httpx.AsyncClient) -> None:
        answer = await batch(
            api, [{"taskType": "maintenance", "entityType": "outbox-sweep"}], headers=ADMIN
        )
        assert answer["items"][0]["status"] == 201

    async def test_the_batch_itself_is_bounded(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        empty = await api.post(BATCH, json={"tasks": []}, headers=ALICE)
        assert_problem(empty, 422)
        too_many = await api.post(
            BATCH, json={"tasks": [{"taskType": "noop"}] * 1001}, headers=ALICE
        )
        assert_problem(too_many, 422)
        assert await counts(resources) == {"tasks": 0, "events": 0, "outbox": 0}
