"""Maintenance jobs, one module each; JOBS maps a job name to its run function."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from service.bootstrap import Resources
from worker.jobs import (
    analytics_rollup,
    check_uploads,
    cleanup_old_files,
    cleanup_old_tasks,
    detect_timeouts,
    fire_schedules,
    outbox_sweep,
    process_scheduled,
)

Job = Callable[[Resources], Awaitable[str]]

JOBS: dict[str, Job] = {
    "process-scheduled": process_scheduled.run,
    "detect-timeouts": detect_timeouts.run,
    "outbox-sweep": outbox_sweep.run,
    "cleanup-old-tasks": cleanup_old_tasks.run,
    "check-uploads": check_uploads.run,
    "cleanup-old-files": cleanup_old_files.run,
    "fire-schedules": fire_schedules.run,
    "analytics-rollup": analytics_rollup.run,
}
