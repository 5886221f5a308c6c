"""A recurring schedule in the Dapr shape: the cron binding fires fire-schedules on two worker
replicas (real daprd sidecars); each fire time makes exactly one task, and the tasks run."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from service.db.tables import schedule_runs_table, tasks_table
from tests.e2e.dapr.conftest import Stack, worker_health
from tests.e2e.dapr.test_delivery import ALICE
from tests.e2e.dapr.test_faults import assert_each_ran_once, rows
from tests.fixtures.app import wait_until

SCHEDULES = "/api/v1/operations/schedules"


class TestTwoReplicas:
    async def test_each_fire_time_makes_one_task_that_runs(self, stack: Stack) -> None:
        workers = [stack.add_worker(), stack.add_worker()]
        assert stack.client is not None
        answer = await stack.client.post(
            SCHEDULES,
            json={
                "name": "every second",
                "cron": "* * * * * *",
                "taskType": "noop",
                "overlapPolicy": "allow",
            },
            headers=ALICE,
        )
        assert answer.status_code == 201, answer.text
        schedule_id = answer.json()["id"]
        mine = tasks_table.c.schedule_id == schedule_id

        async def twelve_completed() -> list[Any] | None:
            made = await rows(stack, select(tasks_table.c.id, tasks_table.c.status).where(mine))
            done = [t for t in made if t.status == "completed"]
            return made if len(done) >= 12 else None

        await wait_until(twelve_completed, timeout=60, interval=0.5)
        pause = await stack.client.post(f"{SCHEDULES}/{schedule_id}/pause", headers=ALICE)
        assert pause.status_code == 200, pause.text

        tasks = await rows(stack, select(tasks_table.c.id, tasks_table.c.fire_time).where(mine))
        per_fire_time = Counter(t.fire_time for t in tasks)
        assert set(per_fire_time.values()) == {1}, per_fire_time.most_common(3)
        runs = await rows(
            stack,
            select(schedule_runs_table.c.fire_time, schedule_runs_table.c.task_id).where(
                schedule_runs_table.c.schedule_id == schedule_id
            ),
        )
        assert {(r.fire_time, r.task_id) for r in runs} == {(t.fire_time, t.id) for t in tasks}
        times: list[datetime] = sorted(per_fire_time)
        assert times == [times[0] + timedelta(seconds=i) for i in range(len(times))]  # no gap

        async def all_done() -> bool:
            made = await rows(stack, select(tasks_table.c.status).where(mine))
            return all(t.status == "completed" for t in made)

        await wait_until(all_done, timeout=60, interval=0.5)
        await assert_each_ran_once(stack, [str(t.id) for t in tasks])
        histories = [(await worker_health(w)())["jobHistory"] for w in workers]
        fired = [[r for r in h if r["job"] == "fire-schedules"] for h in histories]
        assert all(fired), "both replicas' sidecars fire the binding"
