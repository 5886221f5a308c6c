"""Analytics of tasks over 7, 30 or 90 UTC days, and the job that keeps its rollup.

The answer sums a rollup (service/db/repositories/analytics.py) up to its watermark and adds
the change since, computed live, so it is exact and current. Tasks count by the UTC day of
their creation; deleting a task (softly, or by retention) does not take it out: the work
happened. Run time is completedAt - startedAt (first start to the end, retries included);
queue wait is startedAt - (scheduledAt or createdAt). Their percentiles come from histogram
buckets (four per doubling), each read as its bucket's geometric middle: within ±9.1 %.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime

from pydantic import Field

from service.db.repositories.analytics import AnalyticsRepository, Answer, Scope
from service.db.unit_of_work import UnitOfWork
from service.domain import analytics as rules
from service.domain.callers import Caller
from service.domain.tasks import TaskStatus
from service.usecases.views import CamelModel


class Percentiles(CamelModel):
    """Milliseconds, from histogram buckets (±9.1 %); null when nothing was measured."""

    count: int = Field(description="tasks measured")
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


class Rates(CamelModel):
    """Shares 0..1: success and failure among finished tasks (completed, failed, cancelled),
    retry among all tasks (retried at least once); null when there is nothing to divide by."""

    success_rate: float | None
    failure_rate: float | None
    retry_rate: float | None


class Totals(Rates):
    tasks: int
    attempts: int
    by_status: dict[str, int]
    run_time_ms: Percentiles
    queue_wait_ms: Percentiles


class TypeStats(Totals):
    task_type: str


class DayStats(CamelModel):
    date: date
    created: int = Field(description="tasks created that UTC day")
    completed: int = Field(description="of those, completed by now")
    failed: int
    cancelled: int


class HourStats(CamelModel):
    hour: int = Field(description="UTC hour of the day, 0-23")
    tasks: int


class WeekdayStats(CamelModel):
    weekday: int = Field(description="ISO day of the week in UTC: 1 Monday … 7 Sunday")
    tasks: int


class FailureStats(CamelModel):
    message: str = Field(description="the error message, cut at 200 characters")
    tasks: int


class AnalyticsReport(CamelModel):
    """Tasks created in the window (whole UTC days up to now), in the caller's scope."""

    days: int
    since: datetime = Field(description="start of the window: midnight UTC")
    until: datetime = Field(description="the moment of the answer")
    scope: str = Field(description="`all` (admins) or `own` (the caller's tasks)")
    task_type: str | None
    entity_type: str | None
    queue: str | None
    rolled_up_to: datetime | None = Field(
        description="the rollup's watermark; changes after it were computed live"
    )
    totals: Totals
    by_type: list[TypeStats]
    throughput: list[DayStats] = Field(description="one per UTC day of the window, oldest first")
    by_hour: list[HourStats] = Field(description="24 UTC hours of the day, busiest first")
    by_weekday: list[WeekdayStats] = Field(description="7 UTC days of the week, busiest first")
    top_failures: list[FailureStats] = Field(description=f"up to {rules.TOP_FAILURES}, most first")


async def report(
    uow: UnitOfWork,
    caller: Caller,
    *,
    days: int,
    now: datetime,
    task_type: str | None = None,
    entity_type: str | None = None,
    queue: str | None = None,
    direct: bool = False,
) -> AnalyticsReport:
    """Admins (and services) see every task; a user sees the tasks they requested.
    `direct`: computed from the tasks table alone (what the rollup must agree with)."""
    scope = Scope(
        owner=None if caller.sees_all else caller.user_id,
        first_day=rules.first_day(days, now),
        task_type=task_type,
        entity_type=entity_type,
        queue=queue,
    )
    answer = await AnalyticsRepository(uow.session).answer(scope, direct=direct)
    return AnalyticsReport(
        days=days,
        since=rules.day_start(scope.first_day),
        until=now,
        scope="all" if scope.owner is None else "own",
        task_type=task_type,
        entity_type=entity_type,
        queue=queue,
        rolled_up_to=answer.watermark,
        totals=_totals(answer, None),
        by_type=[
            TypeStats(task_type=t, **_totals(answer, t).model_dump())
            for t in sorted({row.task_type for row in answer.types if row.tasks})
        ],
        throughput=_throughput(answer, scope.first_day, days),
        by_hour=_by_hour(answer),
        by_weekday=_by_weekday(answer),
        top_failures=[FailureStats(message=m, tasks=n) for m, n in answer.failures],
    )


def _totals(answer: Answer, task_type: str | None) -> Totals:
    rows = [r for r in answer.types if task_type is None or r.task_type == task_type]
    by_status: Counter[str] = Counter()
    for row in rows:
        by_status[row.status] += row.tasks
    tasks = sum(by_status.values())
    shares = rules.rates(
        tasks=tasks,
        completed=by_status[TaskStatus.COMPLETED],
        failed=by_status[TaskStatus.FAILED],
        cancelled=by_status[TaskStatus.CANCELLED],
        retried=sum(r.retried for r in rows),
    )
    return Totals(
        tasks=tasks,
        attempts=sum(r.attempts for r in rows),
        by_status={s.value: by_status[s.value] for s in TaskStatus},
        success_rate=shares.success,
        failure_rate=shares.failure,
        retry_rate=shares.retry,
        run_time_ms=_percentiles(answer, task_type, "run"),
        queue_wait_ms=_percentiles(answer, task_type, "wait"),
    )


def _percentiles(answer: Answer, task_type: str | None, measure: str) -> Percentiles:
    merged: Counter[int] = Counter()
    for (kind, which), counts in answer.durations.items():
        if which == measure and (task_type is None or kind == task_type):
            merged.update(counts)
    found = rules.percentiles(merged)
    return Percentiles(
        count=sum(merged.values()),
        p50=found.get(50),
        p95=found.get(95),
        p99=found.get(99),
    )


def _throughput(answer: Answer, first_day: int, days: int) -> list[DayStats]:
    per_day: dict[int, Counter[str]] = {first_day + i: Counter() for i in range(days)}
    for (day, status), tasks in answer.days.items():
        if day in per_day:
            per_day[day][status] += tasks
    return [
        DayStats(
            date=rules.day_start(day).date(),
            created=sum(counts.values()),
            completed=counts[TaskStatus.COMPLETED],
            failed=counts[TaskStatus.FAILED],
            cancelled=counts[TaskStatus.CANCELLED],
        )
        for day, counts in per_day.items()
    ]


def _by_hour(answer: Answer) -> list[HourStats]:
    counts: Counter[int] = Counter()
    for (hour, _), tasks in answer.hours.items():
        counts[hour] += tasks
    return [
        HourStats(hour=h, tasks=counts[h]) for h in sorted(range(24), key=lambda h: (-counts[h], h))
    ]


def _by_weekday(answer: Answer) -> list[WeekdayStats]:
    counts: Counter[int] = Counter()
    for (_, weekday), tasks in answer.hours.items():
        counts[weekday] += tasks
    days = sorted(range(1, 8), key=lambda d: (-counts[d], d))
    return [WeekdayStats(weekday=d, tasks=counts[d]) for d in days]


async def roll_up(uow: UnitOfWork, *, now: datetime) -> str:
    """Bring the rollup up to `now` minus a margin for transactions still committing: the
    tasks changed since the last watermark replace what the rollup counted for them."""
    repo = AnalyticsRepository(uow.session)
    if not await repo.lock():
        return "another replica is rolling up"
    since = await repo.watermark()
    until = now - rules.LAG
    if since is not None and until <= since:
        return "nothing to roll up"
    staged = await repo.stage(since, until)
    await repo.apply_staged(until, now)
    await repo.prune(rules.first_day(rules.KEEP_DAYS, now))
    return f"{staged} changed tasks rolled up to {until.isoformat()}"
