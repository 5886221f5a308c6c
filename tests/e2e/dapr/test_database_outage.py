"""PostgreSQL stopped for 15 s under load, on the Dapr shape: API and worker, each with its daprd.

The same contract as tests/e2e/test_database_outage.py (issue 9), here across processes: the
API's relay and the worker's publish through their sidecars and Redis Streams, the worker's
maintenance jobs are fired by Dapr cron bindings, and its lease is shorter than the outage.
"""

from __future__ import annotations

import pytest

from tests.e2e.dapr.conftest import Stack
from tests.fixtures.outage import (
    Load,
    PostgresCluster,
    assert_contract,
    audit,
    recoveries,
    run_outage,
    settled,
)

SLEEP = {"taskType": "sleep", "params": {"seconds": 0.1}}


@pytest.fixture
def database_url(own_postgres: PostgresCluster) -> str:
    """The stack runs on the test's own cluster, which it stops and starts."""
    return own_postgres.url


class TestDatabaseOutage:
    async def test_nothing_answered_201_is_lost_and_every_task_runs_once(
        self, stack: Stack, own_postgres: PostgresCluster
    ) -> None:
        worker = stack.add_worker(OPS_LEASE_SECONDS="5")
        assert stack.api is not None
        load = Load(
            stack.api.url, SLEEP, clients=20, ready={"api": stack.api.url, "worker": worker.url}
        )

        seen = await run_outage(load, own_postgres, before=3, outage=15, after=3)
        settle_seconds = await settled(own_postgres.url)
        result = await audit(own_postgres.url, seen.created)
        logs = {
            app: proc.app.log_path.read_text()
            for app, proc in [("api", stack.api), ("worker", worker)]
        }
        recovered = {
            f"{app}: {what}": after
            for app, log in logs.items()
            for what, after in recoveries(log, seen).items()
        }
        tracebacks = {app: log.count("Traceback") for app, log in logs.items()}
        print(  # noqa: T201 - the measurements, shown with -s or on failure
            "dapr outage:",
            seen.summary(),
            f"settled in {settle_seconds:.1f}s,",
            f"{result.tasks} tasks, {result.retried} needed a second attempt, the last finished",
            f"{result.last_finished - seen.clock['load_stopped']:.1f}s after the load stopped,",
            f"tracebacks {tracebacks}; back after restart (s): {recovered}",
        )
        assert_contract(seen, result, recovered)
        assert set(tracebacks.values()) == {0}, tracebacks
        assert stack.api.app.alive
        assert worker.app.alive
