"""The in-process scheduler (embedded mode): scheduled tasks run once their time comes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from service.clock import utcnow
from tests.fixtures.app import user, wait_until

BASE = "/api/v1/operations/tasks"


class TestScheduledTasks:
    async def test_a_scheduled_task_waits_for_its_time_then_runs(
        self, embedded: httpx.AsyncClient
    ) -> None:
        at = utcnow() + timedelta(seconds=1.5)
        created = await embedded.post(
            BASE, json={"taskType": "noop", "scheduledAt": at.isoformat()}, headers=user()
        )
        assert created.status_code == 201, created.text
        assert created.json()["status"] == "scheduled"
        url = f"{BASE}/{created.json()['id']}"

        async def task() -> dict[str, Any]:
            body: dict[str, Any] = (await embedded.get(url, headers=user())).json()
            return body

        seen: set[str] = set()

        async def completed() -> dict[str, Any] | None:
            body = await task()
            seen.add(body["status"])
            if body["status"] == "scheduled":
                assert utcnow() < at + timedelta(seconds=3), "still scheduled long after its time"
            return body if body["status"] == "completed" else None

        done = await wait_until(completed, timeout=8, interval=0.05)
        assert "scheduled" in seen
        assert datetime.fromisoformat(done["startedAt"]) >= at
        events = (await embedded.get(f"{url}/events", headers=user())).json()
        assert [(e["eventType"].rsplit(".", 1)[1], e["actor"]) for e in events] == [
            ("scheduled", "alice"),
            ("created", "process-scheduled"),
            ("started", events[2]["actor"]),
            ("completed", events[2]["actor"]),
        ]
