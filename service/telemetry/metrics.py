"""The Prometheus metrics both apps expose on /metrics, declared once.

Labels are bounded: routes by their template (never the raw path), task types and queues
from the catalog, events from the fixed lifecycle topics, jobs from service/domain/jobs.py.
Counters and histograms are fed where the facts are already known (a committed unit of
work's outbox rows, a runner's claim or finish batch, the relay's marked rows); the gauges
of the database (queue depth, outbox backlog) are sampled at scrape time, at most every
few seconds (see service/web/metrics.py).

With several uvicorn workers (`common-ops api --workers N`) prometheus-client's multiprocess
mode is used: PROMETHEUS_MULTIPROC_DIR must be set before this module is imported (the CLI
does it), and each gauge says how the processes' values are combined.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from service.domain.events import EventType

#: buckets of durations in seconds: an HTTP request, a task's run, a wait in the queue
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
RUN_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600)
RATE_BUCKETS = (10, 100, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000)

REQUESTS = Counter(
    "ops_http_requests_total",
    "HTTP requests answered, by method, route template and status code",
    ["app", "method", "route", "status"],
)
REQUEST_ERRORS = Counter(
    "ops_http_request_errors_total",
    "HTTP requests answered with a 5xx (or that raised), by method and route template",
    ["app", "method", "route"],
)
REQUEST_SECONDS = Histogram(
    "ops_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["app", "method", "route"],
    buckets=REQUEST_BUCKETS,
)

TASK_EVENTS = Counter(
    "ops_task_events_total",
    "Task lifecycle events committed (created, started, completed, failed, retried, "
    "cancelled, deleted, ...), by task type and queue",
    ["event", "task_type", "queue"],
)
TASKS_CLAIMED = Counter(
    "ops_tasks_claimed_total",
    "Tasks claimed by this worker, by dispatch path (push: a delivered event; poll: the "
    "fallback poller)",
    ["dispatch"],
)
CLAIM_BATCH = Histogram(
    "ops_claim_batch_size",
    "Tasks taken by one claim",
    buckets=(0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
RUN_SECONDS = Histogram(
    "ops_task_run_seconds",
    "A run's handler time, by task type and how it ended",
    ["task_type", "ending"],
    buckets=RUN_BUCKETS,
)
QUEUE_WAIT_SECONDS = Histogram(
    "ops_task_queue_wait_seconds",
    "Time from a task being due to its claim, by task type",
    ["task_type"],
    buckets=WAIT_BUCKETS,
)
IMPORT_ROWS_PER_SECOND = Histogram(
    "ops_import_rows_per_second",
    "Rows per second of each finished import run, by entity type",
    ["entity_type"],
    buckets=RATE_BUCKETS,
)
JOB_RUNS = Counter(
    "ops_job_runs_total", "Maintenance job runs, by job and result (ok, failed)", ["job", "result"]
)
JOB_SECONDS = Histogram(
    "ops_job_duration_seconds", "Maintenance job run time", ["job"], buckets=RUN_BUCKETS
)

OUTBOX_PUBLISHED = Counter("ops_outbox_published_total", "Outbox rows the relay published")
OUTBOX_PUBLISH_FAILURES = Counter(
    "ops_outbox_publish_failures_total", "Outbox publish attempts the publisher refused"
)
OUTBOX_LAG_SECONDS = Histogram(
    "ops_outbox_publish_lag_seconds",
    "Time from an outbox row's commit to its publication",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300),
)

# Sampled gauges: the last sample of whichever process answered a scrape wins.
QUEUE_DEPTH = Gauge(
    "ops_queue_depth",
    "Pending tasks due now per queue (counted up to OPS_METRICS_DEPTH_CAP; beyond, the cap)",
    ["queue"],
    multiprocess_mode="mostrecent",
)
QUEUE_OLDEST_SECONDS = Gauge(
    "ops_queue_oldest_pending_seconds",
    "Age of the oldest pending task due now per queue (0 when none)",
    ["queue"],
    multiprocess_mode="mostrecent",
)
OUTBOX_BACKLOG = Gauge(
    "ops_outbox_backlog",
    "Unpublished outbox rows (counted up to OPS_METRICS_DEPTH_CAP)",
    multiprocess_mode="mostrecent",
)
OUTBOX_OLDEST_SECONDS = Gauge(
    "ops_outbox_oldest_unpublished_seconds",
    "Age of the oldest unpublished outbox row (0 when none)",
    multiprocess_mode="mostrecent",
)
SAMPLED_AT = Gauge(
    "ops_metrics_sampled_timestamp_seconds",
    "When the database gauges above were last sampled (Unix time)",
    multiprocess_mode="mostrecent",
)
POLLER_FAST = Gauge(
    "ops_worker_poller_fast",
    "1 while the fallback poller polls fast (doorbells unreliable), 0 while slow",
    multiprocess_mode="max",
)
DOORBELLS_HEALTHY = Gauge(
    "ops_worker_doorbells_healthy",
    "1 while pub/sub deliveries are trusted to ring the worker",
    multiprocess_mode="min",
)
RUNNING = Gauge(
    "ops_worker_running_tasks",
    "Tasks this worker runs now, by queue",
    ["queue"],
    multiprocess_mode="sum",
)
CAPACITY = Gauge(
    "ops_worker_capacity",
    "Tasks this worker may run at once, by queue",
    ["queue"],
    multiprocess_mode="sum",
)

#: the topics counted as task lifecycle events (progress notices are not)
LIFECYCLE = frozenset(e.value for e in EventType) - {EventType.PROGRESS.value}


def count_task_events(rows: Iterable[Any]) -> None:
    """Count committed outbox rows of task lifecycle events (rows carry topic and payload).

    Counted per label set, then added once per set: a worker's commit carries hundreds of rows
    of a few kinds, and each `labels()` call takes the metric's lock."""
    counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for row in rows:
        if row.topic not in LIFECYCLE:
            continue
        data: Mapping[str, Any] = row.payload if isinstance(row.payload, dict) else {}
        counts[
            row.topic.removeprefix("operations.task."),
            str(data.get("taskType", "unknown")),
            str(data.get("queue", "unknown")),
        ] += 1
    for labels, count in counts.items():
        TASK_EVENTS.labels(*labels).inc(count)
