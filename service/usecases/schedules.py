"""Recurring schedules: create, read, list, update, pause, resume, delete.

A schedule makes its tasks as its owner (with the owner's roles when it was last saved by
them), so it is checked as a POST /tasks by the owner would be: at create, at every update,
and again at every fire (a type that became invalid pauses the schedule; see firing.py).
"""

from __future__ import annotations

import dataclasses
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID, uuid4

from service.catalog.catalog import Catalog
from service.db.repositories.outbox import NewOutboxRow
from service.db.repositories.schedules import RunRecord, ScheduleFilters, ScheduleRepository
from service.db.unit_of_work import UnitOfWork
from service.domain import schedules as rules
from service.domain.callers import Caller
from service.domain.errors import InvalidInput, NotFound
from service.domain.events import ScheduleEventType
from service.domain.schedules import (
    CatchUp,
    OverlapPolicy,
    ScheduleRecord,
    ScheduleStatus,
)
from service.domain.tasks import Priority, Queue
from service.usecases import history, tasks as task_usecases
from service.usecases.schedule_views import (
    FireTime,
    RunView,
    ScheduleDetail,
    SchedulePublic,
    snapshot,
)
from service.usecases.tasks import NewTask

#: How many of its last runs GET /schedules/{id} shows.
LAST_RUNS = 10
TEMPLATES_UNAVAILABLE = "templates are not available"


class TemplateResolver(Protocol):
    """Makes the task a template (at a version, with params overrides) stands for, checked
    as the caller; the templates use case provides it (chosen in the composition root)."""

    async def __call__(
        self,
        uow: UnitOfWork,
        caller: Caller,
        *,
        template_id: str,
        version: int | None,
        params: Mapping[str, Any],
        catalog: Catalog,
        now: datetime,
    ) -> NewTask: ...


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """What a caller asks a schedule to be; its shape is checked at the edge."""

    name: str
    cron: str
    time_zone: str = "UTC"
    description: str | None = None
    template_id: str | None = None
    template_version: int | None = None
    task_type: str | None = None
    entity_type: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    priority: Priority | None = None
    queue: Queue | None = None
    max_retries: int | None = None
    tags: tuple[str, ...] = ()
    notification_settings: dict[str, Any] | None = None
    overlap_policy: OverlapPolicy = OverlapPolicy.SKIP
    catch_up: CatchUp = CatchUp.NONE
    catch_up_limit: int = 10
    start_at: datetime | None = None
    end_at: datetime | None = None

    @classmethod
    def of(cls, schedule: ScheduleRecord) -> ScheduleSpec:
        return cls(
            name=schedule.name,
            cron=schedule.cron,
            time_zone=schedule.time_zone,
            description=schedule.description,
            template_id=schedule.template_id,
            template_version=schedule.template_version,
            task_type=schedule.task_type,
            entity_type=schedule.entity_type,
            params=schedule.params,
            priority=None if schedule.priority is None else Priority(schedule.priority),
            queue=None if schedule.queue is None else Queue(schedule.queue),
            max_retries=schedule.max_retries,
            tags=tuple(schedule.tags),
            notification_settings=schedule.notification_settings,
            overlap_policy=schedule.overlap_policy,
            catch_up=schedule.catch_up,
            catch_up_limit=schedule.catch_up_limit,
            start_at=schedule.start_at,
            end_at=schedule.end_at,
        )

    def columns(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["priority"] = None if self.priority is None else int(self.priority)
        values["queue"] = None if self.queue is None else self.queue.value
        values["tags"] = list(self.tags)
        values["overlap_policy"] = self.overlap_policy.value
        values["catch_up"] = self.catch_up.value
        return values


@dataclass(frozen=True, slots=True)
class Makers:
    """What turning a schedule into a task needs: the catalog and the template resolver
    (None: templates are not available in this build)."""

    catalog: Catalog
    templates: TemplateResolver | None = None


def owner_of(schedule: ScheduleRecord) -> Caller:
    return Caller(schedule.owner, frozenset(schedule.owner_roles))


async def new_task(
    uow: UnitOfWork,
    owner: Caller,
    spec: ScheduleSpec,
    makers: Makers,
    *,
    now: datetime,
    schedule_id: UUID | None = None,
    fire_time: datetime | None = None,
) -> NewTask:
    """The task a fire time of `spec` makes, checked as its owner would create it (422 naming
    the field, 403 for a type the owner may not create); nothing is written."""
    if spec.template_id is not None:
        if makers.templates is None:
            raise InvalidInput(TEMPLATES_UNAVAILABLE, field="templateId")
        try:
            base = await makers.templates(
                uow,
                owner,
                template_id=spec.template_id,
                version=spec.template_version,
                params=spec.params,
                catalog=makers.catalog,
                now=now,
            )
        except NotFound as error:  # the schedule is what is asked for: its template is a field
            raise InvalidInput(str(error), field="templateId") from error
    else:
        assert spec.task_type is not None
        base = NewTask(task_type=spec.task_type, entity_type=spec.entity_type, params=spec.params)
    new = dataclasses.replace(
        base,
        priority=spec.priority if spec.priority is not None else base.priority,
        queue=spec.queue or base.queue,
        max_retries=spec.max_retries if spec.max_retries is not None else base.max_retries,
        name=spec.name,
        description=spec.description,
        tags=spec.tags or base.tags,
        notification_settings=spec.notification_settings or base.notification_settings,
        schedule_id=None if schedule_id is None else str(schedule_id),
        fire_time=fire_time,
    )
    task_usecases.prepare(owner, new, catalog=makers.catalog, now=now)
    return new


async def _check(
    uow: UnitOfWork, owner: Caller, spec: ScheduleSpec, makers: Makers, *, now: datetime
) -> datetime:
    """Refuse a spec that could not fire (a 422 naming the field, or a 403); its first fire
    time after `now` otherwise."""
    recurrence = rules.checked_recurrence(spec.cron, spec.time_zone, spec.start_at, spec.end_at)
    if spec.template_id is not None and spec.task_type is not None:
        raise InvalidInput("give either a templateId or a taskType, not both", field="templateId")
    if spec.template_id is None and spec.task_type is None:
        raise InvalidInput("a schedule needs a taskType (or a templateId)", field="taskType")
    if spec.template_id is None and spec.template_version is not None:
        raise InvalidInput("templateVersion needs a templateId", field="templateVersion")
    first = recurrence.next_after(now)
    if first is None:
        where = "endAt" if spec.end_at is not None else "cron"
        raise InvalidInput(f"the schedule would never fire (check {where})", field=where)
    await new_task(uow, owner, spec, makers, now=now)
    return first


async def announce(
    uow: UnitOfWork,
    schedule: ScheduleRecord,
    event: ScheduleEventType,
    *,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    """The schedule's event through the outbox, in this transaction. The outbox's task_id
    column is the relay's ordering key and the CloudEvent's subject: here the schedule's id
    (UUIDs do not collide), so one schedule's events go out in the order they happened."""
    payload = snapshot(schedule) if data is None else {"scheduleId": str(schedule.id), **data}
    await history.publish(uow, [NewOutboxRow(event.value, schedule.id, payload, now)])


async def create(
    uow: UnitOfWork, caller: Caller, spec: ScheduleSpec, makers: Makers, *, now: datetime
) -> ScheduleRecord:
    first = await _check(uow, caller, spec, makers, now=now)
    values = {
        **spec.columns(),
        "id": uuid4(),
        "owner": caller.user_id,
        "owner_roles": sorted(caller.roles),
        "status": ScheduleStatus.ACTIVE.value,
        "next_fire_at": first,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    schedule = await ScheduleRepository(uow.session).insert(values)
    await announce(uow, schedule, ScheduleEventType.CREATED, now=now)
    return schedule


async def get(uow: UnitOfWork, caller: Caller, schedule_id: UUID) -> ScheduleRecord:
    schedule = await ScheduleRepository(uow.session).get(schedule_id)
    if schedule is None or not caller.may_see(schedule.owner):
        raise NotFound(f"schedule {schedule_id} not found", schedule_id=str(schedule_id))
    return schedule


async def detail(uow: UnitOfWork, caller: Caller, schedule_id: UUID) -> ScheduleDetail:
    """The schedule, its next fire times (UTC and local) and its last runs with their tasks."""
    schedule = await get(uow, caller, schedule_id)
    runs = await ScheduleRepository(uow.session).recent_runs(schedule_id, LAST_RUNS)
    return _detail(schedule, runs)


async def details(uow: UnitOfWork, found: Sequence[ScheduleRecord]) -> list[ScheduleDetail]:
    """`detail` of schedules already read (a page of them): their runs in one query."""
    runs = await ScheduleRepository(uow.session).recent_runs_of([s.id for s in found], LAST_RUNS)
    return [_detail(s, runs.get(s.id, [])) for s in found]


def _detail(schedule: ScheduleRecord, runs: Sequence[RunRecord]) -> ScheduleDetail:
    upcoming: list[datetime] = []
    if schedule.status is ScheduleStatus.ACTIVE and schedule.next_fire_at is not None:
        following = schedule.recurrence().upcoming(schedule.next_fire_at, rules.UPCOMING - 1)
        upcoming = [schedule.next_fire_at, *following]
    zone = zoneinfo.ZoneInfo(schedule.time_zone)
    return ScheduleDetail.model_construct(
        **dict(SchedulePublic.of(schedule)),
        next_fire_times=[FireTime(utc=t, local=t.astimezone(zone)) for t in upcoming],
        last_runs=[RunView.of(r) for r in runs],
    )


async def page(
    uow: UnitOfWork,
    caller: Caller,
    filters: ScheduleFilters,
    *,
    page: int,
    page_size: int,
) -> tuple[list[ScheduleRecord], int]:
    """Own schedules; admins see everyone's (and may narrow to one owner)."""
    if not caller.sees_all:
        filters = dataclasses.replace(filters, owner=caller.user_id)
    return await ScheduleRepository(uow.session).page(filters, page=page, page_size=page_size)


def _saver(caller: Caller, schedule: ScheduleRecord) -> Caller:
    """Whom a save checks the schedule as: the owner with their roles now when they save it,
    else (an admin's save) the owner as last saved."""
    if caller.user_id == schedule.owner:
        return Caller(schedule.owner, caller.roles)
    return owner_of(schedule)


#: Fields whose change moves the next fire time.
_TIMING = ("cron", "time_zone", "start_at", "end_at")


async def update(
    uow: UnitOfWork,
    caller: Caller,
    schedule_id: UUID,
    changes: Mapping[str, Any],
    makers: Makers,
    *,
    now: datetime,
) -> ScheduleRecord:
    """Change the fields given; the result is checked as a create. The owner's save takes their
    roles now; an admin's keeps the owner's."""
    repo = ScheduleRepository(uow.session)
    current = await get(uow, caller, schedule_id)
    current = await repo.get(schedule_id, lock=True) or current
    spec = dataclasses.replace(ScheduleSpec.of(current), **changes)
    owner = _saver(caller, current)
    first = await _check(uow, owner, spec, makers, now=now)
    values: dict[str, Any] = {
        **spec.columns(),
        "owner_roles": sorted(owner.roles),
        "version": current.version + 1,
        "updated_at": now,
    }
    if any(getattr(spec, f) != getattr(current, f) for f in _TIMING):
        values["next_fire_at"] = first
    schedule = await repo.update(schedule_id, values)
    assert schedule is not None
    await announce(uow, schedule, ScheduleEventType.UPDATED, now=now)
    return schedule


async def pause(
    uow: UnitOfWork,
    schedule: ScheduleRecord,
    *,
    now: datetime,
    reason: str | None,
) -> ScheduleRecord:
    """Stop firing (a queued fire time is dropped); `reason` is shown as pausedReason."""
    repo = ScheduleRepository(uow.session)
    paused = await repo.update(
        schedule.id,
        {
            "status": ScheduleStatus.PAUSED.value,
            "paused_reason": reason,
            "queued_fire_at": None,
            "version": schedule.version + 1,
            "updated_at": now,
        },
    )
    assert paused is not None
    await announce(uow, paused, ScheduleEventType.PAUSED, now=now)
    return paused


async def pause_by_request(
    uow: UnitOfWork, caller: Caller, schedule_id: UUID, *, now: datetime
) -> ScheduleRecord:
    current = await get(uow, caller, schedule_id)
    if current.status is ScheduleStatus.PAUSED:
        return current
    return await pause(uow, current, now=now, reason=f"paused by {caller.user_id}")


async def resume(
    uow: UnitOfWork, caller: Caller, schedule_id: UUID, makers: Makers, *, now: datetime
) -> ScheduleRecord:
    """Fire again from now on (fire times while it was paused are not made up for). It is
    checked again first, as its owner (their roles now, when they resume it): still invalid,
    it stays paused (422 or 403)."""
    current = await get(uow, caller, schedule_id)
    if current.status is ScheduleStatus.ACTIVE:
        return current
    owner = _saver(caller, current)
    first = await _check(uow, owner, ScheduleSpec.of(current), makers, now=now)
    resumed = await ScheduleRepository(uow.session).update(
        schedule_id,
        {
            "status": ScheduleStatus.ACTIVE.value,
            "paused_reason": None,
            "next_fire_at": first,
            "owner_roles": sorted(owner.roles),
            "version": current.version + 1,
            "updated_at": now,
        },
    )
    assert resumed is not None
    await announce(uow, resumed, ScheduleEventType.RESUMED, now=now)
    return resumed


async def delete(uow: UnitOfWork, caller: Caller, schedule_id: UUID, *, now: datetime) -> None:
    """The schedule and its runs go; the tasks it made stay (with their scheduleId)."""
    current = await get(uow, caller, schedule_id)
    repo = ScheduleRepository(uow.session)
    await repo.get(schedule_id, lock=True)  # a tick firing it finishes first
    await repo.delete(schedule_id)
    await announce(uow, current, ScheduleEventType.DELETED, now=now)
