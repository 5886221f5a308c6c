"""Recurring schedules: the values, and when a cron expression fires in a time zone.

Fire times are local wall-clock times: croniter walks naive local times, and each is turned
into an instant with zoneinfo. A local time the clock skips (the spring-forward hour) does not
exist, so it does not fire; one the clock repeats (the fall-back hour) fires once, at its first
occurrence. Pure: time comes in as arguments.
"""

from __future__ import annotations

import enum
import functools
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from service.domain.errors import InvalidInput

#: How many fire times GET /schedules/{id} shows.
UPCOMING = 5
#: The most missed fire times catchUp=all makes after downtime.
MAX_CATCH_UP = 100
#: A cron whose fire times lie further apart than this is refused (it would never fire).
MAX_YEARS_BETWEEN = 10


class ScheduleStatus(enum.StrEnum):
    ACTIVE = "active"  #: fires at its fire times
    PAUSED = "paused"  #: by its owner, or by itself (pausedReason says why)


class OverlapPolicy(enum.StrEnum):
    """What a fire time does while the schedule's last task has not finished."""

    SKIP = "skip"  #: nothing (the fire time is recorded as skipped)
    QUEUE_ONE = "queue-one"  #: one fire time waits and runs once the last task finished
    ALLOW = "allow"  #: a task is made anyway


class CatchUp(enum.StrEnum):
    """What fire times missed while no tick ran (downtime) do."""

    NONE = "none"  #: nothing: the schedule goes on from now
    LATEST = "latest"  #: the latest missed one makes a task
    ALL = "all"  #: each makes a task, the latest catchUpLimit of them


class RunOutcome(enum.StrEnum):
    CREATED = "created"  #: made its task
    SKIPPED = "skipped"  #: the last task had not finished (overlap skip, or queue-one full)
    QUEUED = "queued"  #: waits for the last task to finish (queue-one)


def zone_of(name: str, *, field: str = "timeZone") -> zoneinfo.ZoneInfo:
    """The IANA zone of that name, or a 422 naming the field."""
    if name not in _zone_names():
        raise InvalidInput(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin", field=field
        )
    return zoneinfo.ZoneInfo(name)


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


_FIELD = re.compile(r"^[0-9A-Za-z*/,?#-]{1,100}$")


def cron_of(expression: str, *, field: str = "cron") -> str:
    """The expression with single spaces, if it is 5 fields or 6 with seconds first (as Dapr's
    and Quartz's cron); a 422 naming the field otherwise."""
    parts = expression.split()
    if len(parts) not in (5, 6) or not all(_FIELD.match(p) for p in parts):
        raise InvalidInput(
            "cron must have 5 fields (minute hour day month weekday) or 6 with seconds first",
            field=field,
        )
    normal = " ".join(parts)
    from croniter import croniter  # with the first schedule: a worker on Dapr cron never needs it

    if not croniter.is_valid(normal, second_at_beginning=True):
        raise InvalidInput(f"{normal!r} is not a valid cron expression", field=field)
    return normal


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A cron expression in a zone, between optional start and end instants."""

    cron: str
    zone: zoneinfo.ZoneInfo
    start_at: datetime | None = None
    end_at: datetime | None = None

    def _walk(self, after: datetime, *, backwards: bool = False) -> Iterator[datetime]:
        """Instants of the cron strictly after (or before) `after`, nearest first."""
        local = after.astimezone(self.zone)
        start = local.replace(tzinfo=None)
        if backwards:
            # In a repeated hour's second pass, the naive times up to the hour's end fired
            # (at their first pass) before `after`: walk back from where first passes reach it.
            first_offset = start.replace(tzinfo=self.zone, fold=0).utcoffset()
            assert first_offset is not None
            start = after.astimezone(UTC).replace(tzinfo=None) + first_offset
        from croniter import croniter  # see cron_of

        steps = croniter(
            self.cron,
            start,
            second_at_beginning=True,
            max_years_between_matches=MAX_YEARS_BETWEEN,
        )
        while True:
            naive = steps.get_prev(datetime) if backwards else steps.get_next(datetime)
            instant = _instant(naive, self.zone)
            if instant is None:
                continue
            if (instant < after) if backwards else (instant > after):
                yield instant

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time after `after` (and at or after startAt, at or before endAt)."""
        if self.start_at is not None and after < self.start_at:
            after = self.start_at - timedelta(microseconds=1)
        try:
            found = next(self._walk(after))
        except ValueError:  # croniter: no match within MAX_YEARS_BETWEEN
            return None
        if self.end_at is not None and found > self.end_at:
            return None
        return found

    def upcoming(self, after: datetime, count: int = UPCOMING) -> list[datetime]:
        times: list[datetime] = []
        moment = after
        while len(times) < count and (found := self.next_after(moment)) is not None:
            times.append(found)
            moment = found
        return times

    def latest_before(self, before: datetime, since: datetime, count: int) -> list[datetime]:
        """Up to `count` fire times in [since, before), the latest ones, in time order."""
        found: list[datetime] = []
        if count <= 0:
            return found
        try:
            for instant in self._walk(before, backwards=True):
                if instant < since or len(found) == count:
                    break
                if self.end_at is None or instant <= self.end_at:
                    found.append(instant)
        except ValueError:
            pass
        return sorted(found)

    def between(self, since: datetime, until: datetime, limit: int) -> list[datetime]:
        """Fire times in [since, until], earliest first, at most `limit`."""
        found: list[datetime] = []
        moment = since - timedelta(microseconds=1)
        while len(found) < limit and (instant := self.next_after(moment)) is not None:
            if instant > until:
                break
            found.append(instant)
            moment = instant
        return found


def _instant(naive: datetime, zone: zoneinfo.ZoneInfo) -> datetime | None:
    """The instant of a local wall-clock time: its first occurrence; None if the clock skips
    it."""
    local = naive.replace(tzinfo=zone, fold=0)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != naive:
        return None  # in a gap: the clock jumps over it
    return instant


def checked_recurrence(
    cron: str, time_zone: str, start_at: datetime | None, end_at: datetime | None
) -> Recurrence:
    """A recurrence from a request's fields, each refused with a 422 naming it."""
    recurrence = Recurrence(cron_of(cron), zone_of(time_zone), start_at, end_at)
    if start_at is not None and end_at is not None and end_at <= start_at:
        raise InvalidInput("endAt must be after startAt", field="endAt")
    return recurrence


@dataclass(frozen=True, slots=True)
class FirePlan:
    """What a tick makes of a schedule's due fire times."""

    #: fire times that make (or try to make) a task, in order
    fire: list[datetime]
    #: the schedule's next fire time after this tick (None: it has none left)
    next_fire_at: datetime | None


def plan(
    recurrence: Recurrence,
    *,
    due_from: datetime,
    now: datetime,
    grace: timedelta,
    catch_up: CatchUp,
    catch_up_limit: int,
    per_tick: int,
) -> FirePlan:
    """The fire times of [due_from, now] a tick makes: those within `grace` of now are on time
    and all fire (up to `per_tick`); older ones were missed, and `catch_up` says which fire."""
    on_time_from = max(due_from, now - grace)
    on_time = recurrence.between(on_time_from, now, per_tick)
    missed: list[datetime] = []
    if due_from < on_time_from:
        if catch_up is CatchUp.LATEST:
            missed = recurrence.latest_before(on_time_from, due_from, 1)
        elif catch_up is CatchUp.ALL:
            missed = recurrence.latest_before(on_time_from, due_from, catch_up_limit)
    fire = [*missed, *on_time]
    last = on_time[-1] if len(on_time) == per_tick else now
    return FirePlan(fire, recurrence.next_after(last))


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """A schedule as stored."""

    id: UUID
    name: str
    description: str | None
    owner: str
    #: the owner's roles when it was last saved: its tasks are made with them
    owner_roles: list[str]
    cron: str
    time_zone: str
    template_id: str | None
    template_version: int | None
    task_type: str | None
    entity_type: str | None
    params: dict[str, Any]
    priority: int | None
    queue: str | None
    max_retries: int | None
    tags: list[str]
    notification_settings: dict[str, Any] | None
    overlap_policy: OverlapPolicy
    catch_up: CatchUp
    catch_up_limit: int
    start_at: datetime | None
    end_at: datetime | None
    status: ScheduleStatus
    paused_reason: str | None
    next_fire_at: datetime | None
    queued_fire_at: datetime | None
    last_fire_at: datetime | None
    last_task_id: UUID | None
    version: int
    created_at: datetime
    updated_at: datetime

    def recurrence(self) -> Recurrence:
        return Recurrence(self.cron, zoneinfo.ZoneInfo(self.time_zone), self.start_at, self.end_at)
