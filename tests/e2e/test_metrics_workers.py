"""`common-ops api --workers 2`: each process writes its samples to the multiprocess
directory, and a scrape of whichever process answers counts every process's requests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.app import wait_until
from tests.fixtures.processes import CLI, Process, Spawner, clean_env, free_port

REQUESTS = 40


def _api_processes(
    spawner: Spawner, database_url: str, tmp_path: Path, metrics: Path, **settings: str
) -> Process:
    """`common-ops api --workers 2` on a free port (not yet live)."""
    port = free_port()
    env = clean_env(
        OPS_DATABASE_URL=database_url,
        OPS_ENVIRONMENT="test",
        OPS_MIGRATE_ON_START="false",
        OPS_DATA_DIR=str(tmp_path / "data"),
        PROMETHEUS_MULTIPROC_DIR=str(metrics),
        **{"OPS_LOG_LEVEL": "warning", **settings},
    )
    args = [str(CLI), "api", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    return spawner.start("api", args, env=env, port=port)


def health_requests(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "ops_http_requests_total" and sample.labels.get("route") == "/health"
    )


async def test_metrics_add_up_across_api_worker_processes(
    database_url: str, spawner: Spawner, tmp_path: Path
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    api = _api_processes(spawner, database_url, tmp_path, directory)
    try:
        await api.wait_live()
        for _ in range(REQUESTS):  # a new connection each: either process may answer
            async with httpx.AsyncClient(base_url=api.url) as client:
                assert (await client.get("/health")).status_code == 200
        writers = {p.name.rsplit("_", 1)[1] for p in directory.glob("counter_*.db")}
        assert len(writers) == 2, writers  # both processes hold metrics of their own
        for _ in range(5):
            async with httpx.AsyncClient(base_url=api.url) as client:
                scraped = await client.get("/metrics")
            assert health_requests(scraped.text) == REQUESTS
    finally:
        api.stop()
        with contextlib.suppress(ProcessLookupError):  # the workers it started, if it left any
            os.killpg(api.popen.pid, signal.SIGKILL)


async def test_every_api_worker_process_serves_grpc_on_the_one_port(
    database_url: str, spawner: Spawner, tmp_path: Path
) -> None:
    """Each process of `api --workers 2` binds the gRPC port too (SO_REUSEPORT): none of them
    fails to start on a port its sibling holds, and the port answers health checks."""
    grpc_port = free_port()
    # info: uvicorn says when each process has started
    api = _api_processes(
        spawner,
        database_url,
        tmp_path,
        tmp_path,
        OPS_LOG_LEVEL="info",
        OPS_GRPC_PORT=str(grpc_port),
    )
    try:
        await api.wait_live()
        for _ in range(6):  # a new channel each: the kernel hands connections to either process
            async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                answer = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=10
                )
            assert answer.status == health_pb2.HealthCheckResponse.SERVING

        # both processes start: one that could not bind the port would fail its start
        async def both_started() -> bool:
            return api.output().count("Application startup complete") == 2

        await wait_until(both_started, timeout=30)
        await asyncio.sleep(1)  # a failed start would show by now
        assert "Address already in use" not in api.output()
    finally:
        api.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(api.popen.pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:  # the field after the state: the parent's pid
                found.append(int(stat.parent.name))
    return found


def _established_on(port: int) -> dict[int, str]:
    """inode -> remote address of every established TCP connection accepted on `port`."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                found[int(inode)] = remote
    return found


def _held_by(pid: int, inodes: dict[int, str]) -> int:
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                held += 1
    return held


async def test_connections_that_arrive_together_are_spread_over_the_api_processes(
    database_url: str, spawner: Spawner, tmp_path: Path
) -> None:
    """Sixteen keep-alive clients that connect at once are served by both processes of
    `api --workers 2` (each accepts on a socket of its own): with one shared socket, the
    process idle when they arrived took all sixteen and the other served none."""
    api = _api_processes(spawner, database_url, tmp_path, tmp_path, OPS_LOG_LEVEL="info")
    port = api.port
    clients: list[httpx.AsyncClient] = []
    try:
        await api.wait_live()

        async def both_started() -> bool:
            return api.output().count("Application startup complete") == 2

        await wait_until(both_started, timeout=30)
        clients = [httpx.AsyncClient(base_url=api.url) for _ in range(16)]
        answers = await asyncio.gather(*(client.get("/health") for client in clients))
        assert [a.status_code for a in answers] == [200] * 16
        connections = _established_on(port)
        held = {pid: _held_by(pid, connections) for pid in _children(api.popen.pid)}
        serving = {pid: count for pid, count in held.items() if count}
        assert sum(serving.values()) == 16, held  # every client's connection is still open
        assert len(serving) == 2, held
        assert min(serving.values()) >= 2, held
    finally:
        for client in clients:
            await client.aclose()
        api.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(api.popen.pid, signal.SIGKILL)
