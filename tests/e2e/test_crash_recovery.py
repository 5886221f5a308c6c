"""A worker process killed mid-task: its lease expires and another worker finishes the task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.app import user, wait_until
from tests.fixtures.processes import Spawner, clean_env

BASE = "/api/v1/operations/tasks"


def worker_env(database_url: str, worker_id: str) -> dict[str, str]:
    return clean_env(
        OPS_DATABASE_URL=database_url,
        OPS_LEASE_SECONDS="2",
        OPS_ENVIRONMENT="test",
        OPS_MIGRATE_ON_START="false",
        OPS_WORKER_ID=worker_id,
        OPS_LOG_LEVEL="warning",
    )


class TestCrashRecovery:
    async def test_a_killed_workers_task_is_retried_by_the_next_worker(
        self, api: httpx.AsyncClient, database_url: str, spawner: Spawner, tmp_path: Path
    ) -> None:
        first = spawner.worker(
            "worker-a", data_dir=tmp_path / "a", env=worker_env(database_url, "worker-a")
        )
        await first.wait_live()
        created = await api.post(
            BASE, json={"taskType": "sleep", "params": {"seconds": 4}}, headers=user()
        )
        assert created.status_code == 201, created.text
        url = f"{BASE}/{created.json()['id']}"

        async def task() -> dict[str, Any]:
            response = await api.get(url, headers=user())
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        async def running_on_first() -> bool:
            body = await task()
            return bool(body["status"] == "processing" and body["workerId"] == "worker-a")

        await wait_until(running_on_first, timeout=20)
        first.kill()

        second = spawner.worker(
            "worker-b", data_dir=tmp_path / "b", env=worker_env(database_url, "worker-b")
        )
        await second.wait_live()

        async def finished() -> dict[str, Any] | None:
            body = await task()
            return body if body["status"] in ("completed", "failed", "cancelled") else None

        # lease 2 s + detect-timeouts every 5 s + backoff ~1 s + the 4 s run, with room to spare
        done = await wait_until(finished, timeout=40, interval=0.2)
        assert done["status"] == "completed", (done, second.output())
        assert done["retryCount"] == 1
        assert done["workerId"] == "worker-b"
        assert done["processedItems"] == 4

        attempts = (await api.get(f"{url}/attempts", headers=user())).json()
        assert [(a["attempt"], a["workerId"], a["outcome"]) for a in attempts] == [
            (1, "worker-a", "lease_expired"),
            (2, "worker-b", "completed"),
        ]
        assert "worker-a stopped heartbeating" in attempts[0]["error"]

        events = (await api.get(f"{url}/events", headers=user())).json()
        assert [(e["eventType"].rsplit(".", 1)[1], e["actor"]) for e in events] == [
            ("created", "alice"),
            ("started", "worker-a"),
            ("retried", "detect-timeouts"),
            ("started", "worker-b"),
            ("completed", "worker-b"),
        ]
        assert second.alive
