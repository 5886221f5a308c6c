"""The maintenance jobs: one list, read by the settings, the worker and the task-type catalog."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class JobSchedule:
    """A maintenance job, how often the embedded scheduler runs it, and its Dapr tick."""

    name: str
    #: croniter syntax for the in-process scheduler; a sixth field counts seconds (croniter puts
    #: it last, unlike Dapr's cron)
    cron: str
    #: seconds between the job's Dapr cron ticks (components/cron-*.yaml): ticks of several
    #: replicas within one such slot are one tick (worker/bindings.py)
    slot_seconds: int


JOBS = (
    JobSchedule("process-scheduled", "* * * * * *", 2),
    JobSchedule("detect-timeouts", "* * * * * */5", 5),
    JobSchedule("outbox-sweep", "* * * * * */10", 10),
    JobSchedule("cleanup-old-tasks", "17 3 * * *", 3600),
    JobSchedule("check-uploads", "* * * * * */10", 10),
    JobSchedule("cleanup-old-files", "37 3 * * *", 3600),
    JobSchedule("fire-schedules", "* * * * * *", 5),
    JobSchedule("analytics-rollup", "* * * * * */30", 30),
)
JOB_NAMES = tuple(job.name for job in JOBS)
