"""What the catalog declares bounds every run: execution timeout, heartbeat, non-retryable errors,
and no type exists without its handler."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from service.catalog.builtin import NoParams
from service.catalog.model import TaskType
from service.clock import utcnow
from tests.fixtures.app import user, wait_until
from tests.fixtures.catalog import with_types
from tests.integration.worker.support import load_task, make_task, open_resources
from worker.context import HandlerContext
from worker.handlers import register_all
from worker.registry import HandlerRegistry
from worker.runner import Runner

BASE = "/api/v1/operations/tasks"


async def attempts(client: httpx.AsyncClient, task_id: str) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = (
        await client.get(f"{BASE}/{task_id}/attempts", headers=user())
    ).json()
    return body


class TestExecutionTimeout:
    @pytest.mark.parametrize(
        "settings_overrides",
        [{"task_types": {"sleep": {"executionTimeoutSeconds": 0.3, "maxRetries": 1}}}],
    )
    async def test_a_run_past_its_timeout_is_stopped_retried_then_failed(
        self, embedded: httpx.AsyncClient, settings_overrides: dict[str, Any]
    ) -> None:
        created = await embedded.post(
            BASE, json={"taskType": "sleep", "params": {"seconds": 30}}, headers=user()
        )
        task_id = created.json()["id"]

        async def failed() -> dict[str, Any] | None:
            body: dict[str, Any] = (await embedded.get(f"{BASE}/{task_id}", headers=user())).json()
            return body if body["status"] == "failed" else None

        task = await wait_until(failed, timeout=15)
        assert "execution timeout after 0.3 s" in task["errorMessage"]
        runs = await attempts(embedded, task_id)
        assert [(a["attempt"], a["outcome"]) for a in runs] == [(1, "retried"), (2, "failed")]
        assert all(a["error"] == "execution timeout after 0.3 s" for a in runs)
        assert all(a["durationMs"] < 10_000 for a in runs)  # stopped, not slept for 30 s


class Picky(Exception):
    """An error its type says no retry will cure."""


class TestNonRetryableErrors:
    async def test_an_error_the_type_declares_fails_at_once(
        self, database_url: str, tmp_path: Path
    ) -> None:
        picky = TaskType("picky", "fails for good on Picky", NoParams, non_retryable=(Picky,))
        flaky = TaskType("flaky", "retries on anything", NoParams)
        async with open_resources(database_url, tmp_path) as resources:
            with_types(resources, picky, flaky)
            registry = HandlerRegistry(resources.catalog)

            async def raise_picky(ctx: HandlerContext) -> None:
                raise Picky("the input is unreadable")

            registry.add("picky", None, raise_picky)
            registry.add("flaky", None, raise_picky)
            one = await make_task(resources, "picky", max_retries=3)
            two = await make_task(resources, "flaky", max_retries=1)
            await asyncio.wait_for(Runner(resources, registry).run(until_idle=True), 30)
            first = await load_task(resources, one.id)
            second = await load_task(resources, two.id)
        assert (first.status, first.attempts, first.retry_count) == ("failed", 1, 0)
        assert "Picky: the input is unreadable" in first.error_message
        # another type: retried (and, if its backoff ended before the burst did, failed after)
        assert second.retry_count == 1
        assert (second.status, second.attempts) in {("pending", 1), ("failed", 2)}


class TestHeartbeatTimeout:
    @pytest.mark.parametrize(
        "settings_overrides", [{"task_types": {"sleep": {"heartbeatTimeoutSeconds": 300}}}]
    )
    async def test_a_type_with_its_own_heartbeat_timeout_holds_a_lease_that_long(
        self, embedded: httpx.AsyncClient, settings_overrides: dict[str, Any]
    ) -> None:
        resources = embedded.app.state.resources  # type: ignore[attr-defined]
        sleep = await embedded.post(
            BASE, json={"taskType": "sleep", "params": {"seconds": 3}}, headers=user()
        )

        async def processing() -> Any:
            row = await load_task(resources, UUID(sleep.json()["id"]))
            return row if row.status == "processing" else None

        row = await wait_until(processing, timeout=10)
        assert row.lease_until - utcnow() > timedelta(seconds=200)  # not the default 30 s


class TestEveryTypeHasItsHandler:
    async def test_the_worker_runs_every_type_of_the_catalog(
        self, database_url: str, tmp_path: Path
    ) -> None:
        async with open_resources(database_url, tmp_path) as resources:
            registry = register_all(HandlerRegistry(resources.catalog))
            assert registry.missing() == []
            handled = {k.task_type for k in registry.registered()}
            assert handled == {t.name for t in resources.catalog}

    async def test_a_type_without_a_handler_stops_the_worker_at_start(
        self, database_url: str, tmp_path: Path
    ) -> None:
        async with open_resources(database_url, tmp_path) as resources:
            with_types(resources, TaskType("orphan", "nobody runs it", NoParams))
            with pytest.raises(RuntimeError, match="orphan"):
                register_all(HandlerRegistry(resources.catalog))

    async def test_a_handler_for_a_type_not_in_the_catalog_is_refused(
        self, database_url: str, tmp_path: Path
    ) -> None:
        async with open_resources(database_url, tmp_path) as resources:
            registry = HandlerRegistry(resources.catalog)

            async def nothing(ctx: HandlerContext) -> None:
                return None

            with pytest.raises(ValueError, match="not in the catalog"):
                registry.add("teleport", None, nothing)
            with pytest.raises(ValueError, match="entity type"):
                registry.add("export", "planet", nothing)
