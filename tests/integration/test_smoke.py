from __future__ import annotations

import httpx

from tests.fixtures.app import user, wait_until

BASE = "/api/v1/operations/tasks"


async def test_embedded_runs_a_sleep_task_to_completion(embedded: httpx.AsyncClient) -> None:
    created = await embedded.post(
        BASE, json={"taskType": "sleep", "params": {"seconds": 0.2}}, headers=user()
    )
    assert created.status_code == 201
    task_id = created.json()["id"]

    async def completed() -> bool:
        body = (await embedded.get(f"{BASE}/{task_id}", headers=user())).json()
        return bool(body["status"] == "completed")

    await wait_until(completed)
    events = (await embedded.get(f"{BASE}/{task_id}/events", headers=user())).json()
    assert [e["eventType"].rsplit(".", 1)[1] for e in events] == ["created", "started", "completed"]
