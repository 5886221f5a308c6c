"""Real daprd sidecars, Redis and PostgreSQL for the end-to-end tests (scripts/daprlocal.py).

The API and the worker are the apps of dapr.yaml, started as `daprlocal.py up -f dapr.yaml`
would (command, folder, env, config file, resources), on free ports with this test's Redis,
database and topic prefix: the run file people use is the one tested."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.database import ROOT, daprlocal

APP_TOKEN = "e2e-app-token"
SERVICE_TOKEN = "e2e-service-token"
LIFECYCLE = ["created", "started", "progress", "completed", "failed", "cancelled", "retried"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "e2e/dapr" in str(item.fspath):
            item.add_marker(pytest.mark.dapr)


@pytest.fixture
def dialect() -> str:
    return "postgresql"  # the Dapr shape runs on PostgreSQL


@pytest.fixture(scope="session")
def daprd() -> str:
    return str(daprlocal.daprd_path())


@dataclass
class Stack:
    """Redis, the API and its sidecar, worker replicas with theirs, and optional subscribers."""

    workdir: Path
    daprd: str
    database_url: str
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}.")
    redis: Any = None
    resources: Path | None = None
    api: Any = None
    workers: list[Any] = field(default_factory=list)
    subscribers: list[Any] = field(default_factory=list)
    client: httpx.AsyncClient | None = None
    #: settings of every app of the stack (a test module's `stack_env`)
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        env: dict[str, str] = daprlocal.dapr_env(
            self.database_url,
            self.prefix,
            self.workdir / "data",
            OPS_SERVICE_TOKEN=SERVICE_TOKEN,
            OPS_DAPR_APP_TOKEN=APP_TOKEN,
            OPS_POLL_FAST_SECONDS="1",
            **{**self.extra_env, **extra},
        )
        return env

    def topic(self, short: str) -> str:
        return f"{self.prefix}operations.task.{short}"

    def start(
        self, *, subscriber_scopes: tuple[str, ...] = ("e2e-subscriber",), **api_env: str
    ) -> None:
        self.redis = daprlocal.Redis(daprlocal.free_port(), self.workdir).start()
        (api,) = [a for a in daprlocal.resolve_run_file(daprlocal.RUN_FILE) if "api" in a.app_id]
        self.resources = daprlocal.render_resources(
            self.workdir / "resources",
            redis_port=self.redis.port,
            extra_scopes=subscriber_scopes,
            sources=api.resources_paths,
        )
        self.api = daprlocal.DaprApp.from_run_file(
            "operations-api",
            self.workdir,
            self.resources,
            self.daprd,
            self.env(**api_env),
            app_token=APP_TOKEN,
        ).start()
        self.client = httpx.AsyncClient(base_url=self.api.url, timeout=10)

    def add_worker(self, **env: str) -> Any:
        index = len(self.workers)
        worker = daprlocal.DaprApp.from_run_file(
            "operations-worker",
            self.workdir,
            self.resources,
            self.daprd,
            self.env(OPS_WORKER_ID=f"e2e-worker-{index}", **env),
            app_token=APP_TOKEN,
        )
        worker.workdir = self.workdir / f"worker-{index}"
        worker.start()
        self.workers.append(worker)
        return worker

    def add_subscriber(self, topics: list[str], **env: str) -> Any:
        sub = daprlocal.DaprApp(
            "e2e-subscriber",
            [
                str(ROOT / ".venv/bin/python"),
                "-m",
                "uvicorn",
                "tests.e2e.subscriber_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--log-level",
                "warning",
            ],
            self.workdir / f"subscriber-{len(self.subscribers)}",
            self.resources,
            self.daprd,
            {
                "SUB_TOPICS": ",".join(topics),
                "SUB_DEAD_LETTER_TOPIC": f"{self.prefix}operations.deadletter",
                **env,
            },
        ).start()
        self.subscribers.append(sub)
        return sub

    def stop(self) -> None:
        for app in [*self.subscribers, *self.workers, self.api]:
            if app is not None:
                app.stop()
        if self.redis is not None:
            self.redis.stop()

    def logs(self) -> str:
        procs = [self.redis.proc] if self.redis else []
        for app in [self.api, *self.workers, *self.subscribers]:
            if app is not None:
                procs += [app.app, app.sidecar]
        return "\n".join(f"--- {p.name}\n{p.tail(25)}" for p in procs if p is not None)


@pytest.fixture
def stack_env() -> dict[str, str]:
    """Environment every app of the stack gets: a module overrides it to change settings."""
    return {}


@pytest.fixture
async def stack(
    daprd: str,
    database_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    stack_env: dict[str, str],
) -> AsyncIterator[Stack]:
    """API + sidecar on a fresh PostgreSQL database and a fresh Redis; tests add workers."""
    s = Stack(tmp_path, daprd, database_url, extra_env=stack_env)
    try:
        s.start()
        yield s
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            print(s.logs())  # noqa: T201 - shown by pytest only for a failing test
        if s.client is not None:
            await s.client.aclose()
        s.stop()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


async def get_json(url: str, **kwargs: Any) -> Any:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url, **kwargs)
        response.raise_for_status()
        return response.json()


def worker_health(worker: Any) -> Callable[[], Any]:
    async def read() -> Any:
        body = await get_json(
            worker.url + "/health/detailed", headers={"X-Service-Token": SERVICE_TOKEN}
        )
        return body["checks"]["worker"]

    return read
