"""PostgreSQL stopped for 15 s under load, `common-ops dev` on it: nothing answered 201 is lost.

Issue 9: tasks answered 201 did not exist afterwards, and requests answered a plain 500 while
the database was away. Here 20 clients create short tasks before, during and after the outage;
afterwards every 201 is a task that completed exactly once, every outbox row went out, and the
clients saw nothing but 201 and 503 (problem+json, Retry-After).
"""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.outage import (
    Load,
    PostgresCluster,
    assert_contract,
    audit,
    recoveries,
    run_outage,
    settled,
)
from tests.fixtures.processes import CLI, Spawner, clean_env, free_port

SLEEP = {"taskType": "sleep", "params": {"seconds": 0.1}}


class TestDatabaseOutage:
    async def test_nothing_answered_201_is_lost_and_every_task_runs_once(
        self, own_postgres: PostgresCluster, spawner: Spawner, tmp_path: Path
    ) -> None:
        port = free_port()
        env = clean_env(
            OPS_DATABASE_URL=own_postgres.url,
            OPS_ENVIRONMENT="test",
            OPS_MIGRATE_ON_START="false",
            OPS_LEASE_SECONDS="5",  # shorter than the outage: leases expire while it lasts
            OPS_WORKER_ID="embedded",
            OPS_LOG_LEVEL="warning",
        )
        args = [str(CLI), "dev", "--host", "127.0.0.1", "--port", str(port)]
        args += ["--data-dir", str(tmp_path / "data")]
        dev = spawner.start("dev", args, env=env, port=port)
        await dev.wait_live()

        seen = await run_outage(
            Load(dev.url, SLEEP, clients=20), own_postgres, before=3, outage=15, after=3
        )
        settle_seconds = await settled(own_postgres.url)
        result = await audit(own_postgres.url, seen.created)
        log = dev.output()
        recovered = recoveries(log, seen)
        print(  # noqa: T201 - the measurements, shown with -s or on failure
            "embedded outage:",
            seen.summary(),
            f"settled in {settle_seconds:.1f}s,",
            f"{result.tasks} tasks, {result.retried} needed a second attempt, the last finished",
            f"{result.last_finished - seen.clock['load_stopped']:.1f}s after the load stopped,",
            f"{log.count('Traceback')} tracebacks in the log; back after restart (s): {recovered}",
        )
        assert_contract(seen, result, recovered)
        assert log.count("Traceback") == 0, log[-3000:]
        assert dev.alive, log[-3000:]
