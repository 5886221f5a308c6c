"""`common-ops dev` serves gRPC beside HTTP: a real process, its embedded worker running what a
gRPC call created, and a graceful stop on SIGTERM."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from grpc import aio

from service.rpc.gen import operations_pb2 as pb, operations_pb2_grpc as pb_grpc
from tests.fixtures.app import wait_until
from tests.fixtures.processes import Spawner, clean_env, free_port, spawner
from tests.integration.grpc.support import ALICE

__all__ = ["spawner"]

#: `common-ops dev` from this checkout's code (the console script may belong to another one).
CLI = [sys.executable, "-c", "from service.cli import main; main()"]


async def test_dev_serves_grpc(spawner: Spawner, database_url: str, tmp_path: Path) -> None:
    port, grpc_port = free_port(), free_port()
    env = clean_env(
        OPS_GRPC_PORT=str(grpc_port),
        OPS_DATABASE_URL=database_url,
        OPS_MIGRATE_ON_START="false",
        OPS_LOG_LEVEL="info",  # uvicorn says when the lifespan has shut down
    )
    args = [*CLI, "dev", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path)]
    dev = spawner.start("dev", args, env=env, port=port)
    await dev.wait_live()
    async with aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = pb_grpc.OperationsServiceStub(channel)
        health = await stub.Health(pb.HealthRequest())
        assert health.status == "ok", health
        request = pb.CreateTaskRequest(task_type="sleep")
        made = await stub.CreateTask(request, metadata=ALICE)
        assert made.created
        assert made.task.status == pb.TASK_STATUS_PENDING

        async def completed() -> bool:
            task = await stub.GetTask(pb.GetTaskRequest(id=made.task.id), metadata=ALICE)
            return task.status == pb.TASK_STATUS_COMPLETED

        await wait_until(completed)  # the embedded worker ran it
    dev.stop(timeout=30)
    # uvicorn ends its lifespan (the gRPC server drains, then the worker) and then re-raises
    # the SIGTERM it caught, so a clean stop exits by that signal
    assert dev.popen.returncode in (0, -signal.SIGTERM), dev.output()
    assert "Application shutdown complete" in dev.output()
    assert "Traceback" not in dev.output()
