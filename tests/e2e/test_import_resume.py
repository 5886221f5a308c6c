"""An import whose worker is killed mid-file resumes after its last checkpoint, no row twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from service.db.tables import store_records_table
from tests.e2e.test_crash_recovery import worker_env
from tests.fixtures.app import user, wait_until
from tests.fixtures.processes import Spawner

TASKS = "/api/v1/operations/tasks"
ROWS = 100_000


def products_csv(rows: int) -> bytes:
    lines = ["sku,name,price,currency,stock"]
    lines += [f"P{i:07d},Product {i},{i % 1000}.{i % 100:02d},EUR,{i % 50}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


class TestImportResume:
    async def test_a_killed_import_resumes_after_its_checkpoint_without_duplicates(
        self, api: httpx.AsyncClient, database_url: str, spawner: Spawner, tmp_path: Path
    ) -> None:
        files = str(tmp_path / "files")  # the API's local store root (data dir = tmp_path)
        env = {**worker_env(database_url, "worker-a"), "OPS_FILES_DIR": files}
        first = spawner.worker("worker-a", data_dir=tmp_path / "a", env=env)
        await first.wait_live()
        body = {
            "taskType": "import",
            "entityType": "product",
            "fileName": "products.csv",
            "params": {"batchSize": 1000},
        }
        created = (await api.post(TASKS, json=body, headers=user())).json()
        put = await api.put(created["uploadUrl"], content=products_csv(ROWS))
        assert put.status_code == 200, put.text
        url = f"{TASKS}/{created['id']}"

        async def task() -> dict[str, Any]:
            response: dict[str, Any] = (await api.get(url, headers=user())).json()
            return response

        async def part_done() -> bool:
            t = await task()
            return bool(t["status"] == "processing" and 0 < t["processedItems"] < ROWS)

        await wait_until(part_done, timeout=60, interval=0.05)
        first.kill()
        stopped_at = (await task())["processedItems"]

        env = {**worker_env(database_url, "worker-b"), "OPS_FILES_DIR": files}
        second = spawner.worker("worker-b", data_dir=tmp_path / "b", env=env)
        await second.wait_live()

        async def finished() -> dict[str, Any] | None:
            t = await task()
            return t if t["status"] in ("completed", "failed") else None

        done = await wait_until(finished, timeout=120, interval=0.2)
        assert done["status"] == "completed", (done, second.output())
        assert (done["processedItems"], done["succeededItems"], done["failedItems"]) == (
            ROWS,
            ROWS,
            0,
        )
        assert done["result"]["created"] == ROWS
        assert stopped_at < ROWS
        attempts = (await api.get(f"{url}/attempts", headers=user())).json()
        assert [(a["workerId"], a["outcome"]) for a in attempts] == [
            ("worker-a", "lease_expired"),
            ("worker-b", "completed"),
        ]
        resources = api.app.state.resources  # type: ignore[attr-defined]
        async with resources.sessionmaker() as session:
            count = (
                await session.execute(
                    select(func.count())
                    .select_from(store_records_table)
                    .where(store_records_table.c.entity == "product")
                )
            ).scalar_one()
        assert count == ROWS
