"""ops_task_events_total counts every committed lifecycle row, once per row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY

from service.telemetry import metrics


@dataclass
class Row:
    topic: str
    payload: Any


def counted(event: str, task_type: str, queue: str) -> float:
    labels = {"event": event, "task_type": task_type, "queue": queue}
    return REGISTRY.get_sample_value("ops_task_events_total", labels) or 0.0


def test_rows_of_one_kind_add_up_and_progress_notices_are_not_counted() -> None:
    keys = [("started", "count-a", "default"), ("completed", "count-b", "bulk")]
    before = [counted(*key) for key in keys]
    unknown_before = counted("failed", "unknown", "unknown")
    rows = [Row("operations.task.started", {"taskType": "count-a", "queue": "default"})] * 3
    rows += [Row("operations.task.completed", {"taskType": "count-b", "queue": "bulk"})]
    rows += [Row("operations.task.progress", {"taskType": "count-a", "queue": "default"})]
    rows += [Row("operations.task.failed", None)]  # a payload that is no object: "unknown"

    metrics.count_task_events(rows)

    assert [counted(*key) - b for key, b in zip(keys, before, strict=True)] == [3, 1]
    assert counted("progress", "count-a", "default") == 0
    assert counted("failed", "unknown", "unknown") - unknown_before == 1
