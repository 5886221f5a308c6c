"""/metrics after real traffic: the names the dashboard queries, route templates as labels,
task lifecycle counts by type and queue, the worker's claims and runs, the database gauges."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from service.config import Settings
from tests.fixtures.app import user, wait_until

BASE = "/api/v1/operations/tasks"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def labels_of(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(ls)[label] for (n, ls), _ in samples.items() if n == name and label in dict(ls)}


async def run_a_task(client: httpx.AsyncClient) -> str:
    created = await client.post(
        BASE, json={"taskType": "sleep", "params": {"seconds": 0.05}}, headers=user()
    )
    assert created.status_code == 201, created.text
    task_id: str = created.json()["id"]

    async def completed() -> bool:
        body = (await client.get(f"{BASE}/{task_id}", headers=user())).json()
        return bool(body["status"] == "completed")

    await wait_until(completed)
    return task_id


class TestMetrics:
    async def test_traffic_shows_in_the_metrics_by_route_template(
        self, embedded: httpx.AsyncClient
    ) -> None:
        before = await scrape(embedded)
        task_id = await run_a_task(embedded)
        assert (await embedded.get(f"{BASE}/{task_id}x", headers=user())).status_code == 422
        after = await scrape(embedded)

        def grew(name: str, by: float = 1, **labels: str) -> None:
            assert value(after, name, **labels) - value(before, name, **labels) >= by, (
                name,
                labels,
            )

        route = f"{BASE}/{{task_id}}"
        grew("ops_http_requests_total", app="api", method="GET", route=route, status="200")
        grew("ops_http_requests_total", route=route, status="422")
        grew("ops_http_request_duration_seconds_count", method="POST", route=BASE)
        routes = labels_of(after, "ops_http_requests_total", "route")
        assert not any(task_id in r for r in routes), routes  # never the raw path
        for event in ("created", "started", "completed"):
            grew("ops_task_events_total", event=event, task_type="sleep", queue="default")
        grew("ops_tasks_claimed_total")
        grew("ops_task_run_seconds_count", task_type="sleep", ending="completed")
        grew("ops_task_queue_wait_seconds_count", task_type="sleep")
        grew("ops_outbox_published_total", by=3)
        grew("ops_outbox_publish_lag_seconds_count", by=3)
        assert labels_of(after, "ops_queue_depth", "queue") == {"urgent", "default", "bulk"}
        assert value(after, "ops_outbox_backlog") >= 0
        assert value(after, "ops_metrics_sampled_timestamp_seconds") > 0
        assert labels_of(after, "ops_worker_capacity", "queue") == {"urgent", "default", "bulk"}
        assert ("ops_worker_poller_fast", ()) in after

    async def test_queue_depth_and_oldest_age_count_due_pending_tasks(
        self, api: httpx.AsyncClient
    ) -> None:
        """No worker: the tasks wait, and a scrape sees them (sampled, capped at the cap)."""
        for _ in range(3):
            response = await api.post(BASE, json={"taskType": "sleep"}, headers=user())
            assert response.status_code == 201
        samples = await scrape(api)
        assert value(samples, "ops_queue_depth", queue="default") == 3
        assert value(samples, "ops_queue_oldest_pending_seconds", queue="default") >= 0
        assert value(samples, "ops_queue_depth", queue="bulk") == 0


async def test_the_database_gauges_are_sampled_at_most_every_interval(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    first = value(await scrape(api), "ops_metrics_sampled_timestamp_seconds")
    await api.post(BASE, json={"taskType": "sleep"}, headers=user())
    second = await scrape(api)
    assert settings.metrics_sample_seconds == 15
    assert value(second, "ops_metrics_sampled_timestamp_seconds") == first  # cached
