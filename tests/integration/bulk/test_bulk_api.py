"""The /bulk convenience endpoints create the same tasks as /tasks."""

from __future__ import annotations

import httpx

from tests.fixtures.app import user, wait_until

BULK = "/api/v1/operations/bulk"
ALICE = user("alice")


class TestBulkEndpoints:
    async def test_import_then_export_through_bulk_paths(self, embedded: httpx.AsyncClient) -> None:
        created = await embedded.post(
            f"{BULK}/import", json={"entityType": "product", "fileName": "p.csv"}, headers=ALICE
        )
        assert created.status_code == 201, created.text
        task = created.json()
        assert (task["taskType"], task["status"]) == ("import", "waiting")
        put = await embedded.put(
            task["uploadUrl"], content=b"sku,name,price,currency\nA,B,1.00,EUR\n"
        )
        assert put.status_code == 200

        async def counted() -> dict[str, object] | None:
            body = (await embedded.get(f"{BULK}/operations/{task['id']}", headers=ALICE)).json()
            return body if body["status"] == "completed" else None

        done = await wait_until(counted, timeout=20)
        assert (done["processedItems"], done["succeededItems"], done["failedItems"]) == (1, 1, 0)
        assert done["result"]["lastRow"] == 1
        assert [key for key in done["result"] if "_" in key] == [], "result keys are camelCase"

        export = await embedded.post(
            f"{BULK}/export",
            json={"entityType": "product", "params": {"format": "jsonl"}},
            headers=ALICE,
        )
        assert export.status_code == 201
        assert export.json()["taskType"] == "export"

    async def test_unknown_entity_is_a_422_problem(self, embedded: httpx.AsyncClient) -> None:
        response = await embedded.post(
            f"{BULK}/export", json={"entityType": "planet"}, headers=ALICE
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["field"] == "entityType"

    async def test_another_users_operation_is_not_found(self, embedded: httpx.AsyncClient) -> None:
        created = await embedded.post(f"{BULK}/export", json={"entityType": "order"}, headers=ALICE)
        other = await embedded.get(f"{BULK}/operations/{created.json()['id']}", headers=user("bob"))
        assert other.status_code == 404

    async def test_a_task_that_is_not_an_import_or_export_is_not_an_operation(
        self, embedded: httpx.AsyncClient
    ) -> None:
        created = await embedded.post(
            "/api/v1/operations/tasks", json={"taskType": "noop"}, headers=ALICE
        )
        response = await embedded.get(f"{BULK}/operations/{created.json()['id']}", headers=ALICE)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["taskId"] == created.json()["id"]
