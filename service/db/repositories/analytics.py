"""Every analytics query: the rollup job's steps and the answer's aggregates.

A task's *contribution* is what it adds to the rollup: its owner, UTC hour of creation, type,
entity type, queue, status, whether it was retried, its attempts, its run-time and queue-wait
buckets, and a failed task's message. The rollup tables sum contributions per owner and for
everyone (owner ""); `analytics_tasks` keeps each task's contribution as the rollup counted
it, so a task that changes later is taken back out before its new contribution goes in.

An answer adds up the rollup's rows and, live, the change since the watermark: the current
contribution of every task updated since (+1) minus what the rollup counted for it (-1).
Its statements share one snapshot (PostgreSQL: REPEATABLE READ; SQLite's read transaction
is one), so the watermark they use and the rollup they read agree while the job commits.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    Subquery,
    bindparam,
    case,
    delete,
    func,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import dialects
from service.db.tables import (
    analytics_daily_table as D,
    analytics_durations_table as H,
    analytics_durations_weekly_table as HW,
    analytics_failures_table as F,
    analytics_hourly_table as HR,
    analytics_staging_table as S,
    analytics_tasks_table as A,
    analytics_watermark_table as W,
    tasks_table as T,
)
from service.db.types import UTCDateTime
from service.domain import analytics as rules
from service.domain.tasks import TaskStatus

WATERMARK = "tasks"
_CONTRIBUTION = [c.name for c in S.c]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ALL_STATUSES = [s.value for s in TaskStatus]


def _int(value: int) -> ColumnElement[int]:
    """An integer written into the SQL (PostgreSQL must see equal GROUP BY expressions)."""
    return literal_column(str(value), Integer)


def _text(value: str) -> ColumnElement[str]:
    assert "'" not in value
    return literal_column(f"'{value}'", String)


def contributions(dialect: str, *where: Any) -> Select[Any]:
    """The current contribution of each task matching `where` (columns as analytics_staging)."""
    started_from = func.coalesce(T.c.scheduled_at, T.c.created_at)
    inner = (
        select(
            T.c.id.label("task_id"),
            T.c.requested_by.label("owner"),
            dialects.epoch_hours(T.c.created_at, dialect).label("hour"),
            T.c.task_type,
            func.coalesce(T.c.entity_type, _text("")).label("entity_type"),
            T.c.queue,
            T.c.status,
            case((T.c.retry_count > 0, _int(1)), else_=_int(0)).label("retried"),
            T.c.attempts,
            dialects.millis_between(T.c.completed_at, T.c.started_at, dialect).label("run_ms"),
            dialects.millis_between(T.c.started_at, started_from, dialect).label("wait_ms"),
            case(
                (
                    T.c.status == TaskStatus.FAILED.value,
                    func.coalesce(func.substr(T.c.error_message, 1, rules.MESSAGE_LENGTH), ""),
                ),
                else_=_text(""),
            ).label("message"),
        )
        .where(*where)
        .subquery("current")
    )
    c = inner.c
    return select(
        c.task_id,
        c.owner,
        c.hour,
        c.task_type,
        c.entity_type,
        c.queue,
        c.status,
        c.retried,
        c.attempts,
        func.coalesce(dialects.duration_bucket(c.run_ms, dialect), _int(-1)).label("run_bucket"),
        func.coalesce(dialects.duration_bucket(c.wait_ms, dialect), _int(-1)).label("wait_bucket"),
        c.message,
    )


@dataclass(frozen=True, slots=True)
class Scope:
    """Which tasks an answer covers: one owner's or everyone's (None), from a UTC day on."""

    owner: str | None
    first_day: int
    task_type: str | None = None
    entity_type: str | None = None
    queue: str | None = None


@dataclass(frozen=True, slots=True)
class TypeRow:
    """Tasks of one type in one status: how many, how many were retried, their attempts."""

    task_type: str
    status: str
    tasks: int
    retried: int
    attempts: int


@dataclass(frozen=True, slots=True)
class Answer:
    """The aggregates of one answer, summed in the database."""

    types: list[TypeRow]
    #: (UTC day number, status) → tasks
    days: dict[tuple[int, str], int]
    #: (hour of the day, ISO day of the week) → tasks
    hours: dict[tuple[int, int], int]
    #: (task type, "run" | "wait") → {bucket: tasks}
    durations: dict[tuple[str, str], dict[int, int]]
    failures: list[tuple[str, int]]
    watermark: datetime | None


class AnalyticsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = dialects.name(session)

    # --- the rollup job -------------------------------------------------------------------

    async def watermark(self) -> datetime | None:
        stmt = select(W.c.watermark).where(W.c.name == WATERMARK)
        moment: datetime | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return moment

    async def lock(self) -> bool:
        """One rollup at a time across replicas (PostgreSQL: an advisory lock)."""
        return await dialects.try_exclusive(self.session, 0x616E616C)  # "anal"

    async def stage(self, since: datetime | None, until: datetime) -> int:
        """Copy the contributions of tasks changed in [since, until) into the staging table:
        one statement, so one snapshot of the tasks for every later step."""
        await dialects.without_jit(self.session)
        await self.session.execute(delete(S))
        where = [T.c.status.in_(_ALL_STATUSES), T.c.updated_at < until]
        if since is not None:
            where.append(T.c.updated_at >= since)
        source = contributions(self.dialect, *where)
        result = await self.session.execute(S.insert().from_select(_CONTRIBUTION, source))
        return int(getattr(result, "rowcount", 0) or 0)

    async def apply_staged(self, until: datetime, now: datetime) -> None:
        """Add the staged contributions to the rollup and take out what the rollup counted for
        the same tasks before; then the staged ones become the counted ones."""
        staged_ids = select(S.c.task_id)
        columns = [S.c[name] for name in _CONTRIBUTION if name != "task_id"]
        changes = union_all(
            select(*columns, _int(1).label("sign")),
            select(*[A.c[c.name] for c in columns], _int(-1).label("sign")).where(
                A.c.task_id.in_(staged_ids)
            ),
        ).subquery("changes")
        for everyone in (False, True):
            for statement in _rollup_statements(self.dialect, changes, everyone):
                await self.session.execute(statement)
        await self.session.execute(delete(A).where(A.c.task_id.in_(staged_ids)))
        await self.session.execute(A.insert().from_select(_CONTRIBUTION, select(S)))
        await self.session.execute(delete(S))
        await self.session.execute(
            dialects.insert_or_update(
                W,
                self.dialect,
                {"name": WATERMARK, "watermark": until, "updated_at": now},
                keys=["name"],
                set_=["watermark", "updated_at"],
                where=lambda new: W.c.name == new.name,
            )
        )

    async def prune(self, before_day: int) -> None:
        """Drop what no window reaches any more."""
        await self.session.execute(delete(A).where(A.c.hour < before_day * 24))
        await self.session.execute(delete(HR).where(HR.c.hour < before_day * 24))
        for table in (D, H, F):
            await self.session.execute(delete(table).where(table.c.day < before_day))
        await self.session.execute(delete(HW).where(HW.c.week < rules.week_of(before_day)))

    # --- the answer ---------------------------------------------------------------------------

    async def answer(self, scope: Scope, *, direct: bool = False) -> Answer:
        """Sum the rollup and the live change since its watermark; `direct`: sum the tasks
        table alone (what the rollup must equal; slow on a large table)."""
        await dialects.one_snapshot(self.session)
        parts = _parts(self.dialect, _Shape.of(scope, direct))
        params = _params(scope)
        mark = None if direct else await self.watermark()
        params["since"] = mark or _EPOCH
        sums = _Sums()
        for r in await self.session.execute(parts.tail, params):
            sums.add_tail(r)
        if not direct:
            for r in await self.session.execute(parts.types, params):
                sums.add_type(r.task_type, r.status, r.tasks, r.retried, r.attempts)
            for r in await self.session.execute(parts.days, params):
                sums.days[(int(r.day), r.status)] += int(r.tasks)
            for r in await self.session.execute(parts.hours, params):
                sums.hours[(int(r.hod), int(r.dow))] += int(r.tasks)
            for r in await self.session.execute(parts.durations, params):
                sums.add_duration(r.task_type, r.measure, int(r.bucket), int(r.tasks))
            await self._failures(parts, params, sums)
        return sums.answer(mark)

    async def _failures(self, parts: _Statements, params: dict[str, Any], sums: _Sums) -> None:
        """The rollup's counts of every message that can make the top list once the tail's
        changes are added: its top (TOP_FAILURES + messages in the tail), and those messages.
        A message below that can only be passed by tail messages; the others still beat it."""
        changed = sorted(sums.failures)
        limit = rules.TOP_FAILURES + len(changed)
        rows = list(await self.session.execute(parts.failures, params | {"limit": limit}))
        if len(rows) == limit:  # and every message as frequent as the last (ties)
            floor = {"floor": int(rows[-1].tasks)}
            rows += await self.session.execute(parts.failures_from, params | floor)
        if changed:
            rows += await self.session.execute(parts.failures_of, params | {"messages": changed})
        counted: set[str] = set()
        for r in rows:
            if r.message not in counted:
                counted.add(r.message)
                sums.failures[r.message] += int(r.tasks)


class _Sums:
    """The answer's aggregates, the rollup's rows and the tail's added up."""

    def __init__(self) -> None:
        self.types: Counter[tuple[str, str]] = Counter()
        self.retried: Counter[tuple[str, str]] = Counter()
        self.attempts: Counter[tuple[str, str]] = Counter()
        self.days: Counter[tuple[int, str]] = Counter()
        self.hours: Counter[tuple[int, int]] = Counter()
        self.durations: dict[tuple[str, str], Counter[int]] = {}
        self.failures: Counter[str] = Counter()

    def add_tail(self, r: Any) -> None:
        tasks, hour = int(r.tasks), int(r.hour)
        self.add_type(r.task_type, r.status, tasks, tasks * r.retried, r.attempts)
        self.days[(hour // 24, r.status)] += tasks
        self.hours[(hour % 24, rules.weekday(hour // 24))] += tasks
        for measure, bucket in (("run", r.run_bucket), ("wait", r.wait_bucket)):
            if bucket >= 0:
                self.add_duration(r.task_type, measure, int(bucket), tasks)
        if r.message:
            self.failures[r.message] += tasks

    def add_type(
        self, task_type: str, status: str, tasks: int, retried: int, attempts: int
    ) -> None:
        key = (task_type, status)
        self.types[key] += int(tasks)
        self.retried[key] += int(retried)
        self.attempts[key] += int(attempts)

    def add_duration(self, task_type: str, measure: str, bucket: int, tasks: int) -> None:
        self.durations.setdefault((task_type, measure), Counter())[bucket] += tasks

    def answer(self, mark: datetime | None) -> Answer:
        types = [
            TypeRow(*key, tasks, self.retried[key], self.attempts[key])
            for key, tasks in self.types.items()
            if tasks or self.retried[key] or self.attempts[key]
        ]
        durations = {
            k: {b: n for b, n in counts.items() if n} for k, counts in self.durations.items()
        }
        found = [(m, n) for m, n in self.failures.items() if n > 0]
        top = sorted(found, key=lambda pair: (-pair[1], pair[0]))
        return Answer(
            types,
            {k: n for k, n in self.days.items() if n},
            {k: n for k, n in self.hours.items() if n},
            {k: v for k, v in durations.items() if v},
            top[: rules.TOP_FAILURES],
            mark,
        )


def _rollup_statements(dialect: str, changes: Subquery, everyone: bool) -> list[Any]:
    """One INSERT … ON CONFLICT adding the changes' sums per rollup table, per owner or for
    everyone."""
    c = changes.c
    owner: Any = _text(rules.EVERYONE) if everyone else c.owner
    by_owner = [] if everyone else [c.owner]
    day = (c.hour // _int(24)).label("day")
    where_dims = [c.task_type, c.entity_type, c.queue]
    tasks = func.sum(c.sign).label("tasks")
    daily = select(
        owner.label("owner"),
        day,
        *where_dims,
        c.status,
        tasks,
        func.sum(c.sign * c.retried).label("retried"),
        func.sum(c.sign * c.attempts).label("attempts"),
    ).group_by(*by_owner, day, *where_dims, c.status)
    hourly = select(owner.label("owner"), c.hour, *where_dims, tasks).group_by(
        *by_owner, c.hour, *where_dims
    )
    # and per hour of every kind together (type, entity and queue ""): what an answer without
    # filters reads, a fraction of the rows (no task type is "")
    every_kind = [_text(rules.ALL_KINDS).label(n) for n in ("task_type", "entity_type", "queue")]
    hourly_all = select(owner.label("owner"), c.hour, *every_kind, tasks).group_by(
        *by_owner, c.hour
    )
    measured = union_all(
        *[
            select(
                c.owner, c.hour, *where_dims, _text(m).label("measure"), b.label("bucket"), c.sign
            ).where(b >= 0)
            for m, b in (("run", c.run_bucket), ("wait", c.wait_bucket))
        ]
    ).subquery("measured")
    m = measured.c
    m_owner: Any = _text(rules.EVERYONE) if everyone else m.owner
    m_day = (m.hour // _int(24)).label("day")
    m_dims = [m.task_type, m.entity_type, m.queue, m.measure, m.bucket]
    durations = select(m_owner.label("owner"), m_day, *m_dims, func.sum(m.sign)).group_by(
        *([] if everyone else [m.owner]), m_day, *m_dims
    )
    m_week = ((m.hour // _int(24) + _int(3)) // _int(7)).label("week")  # weeks start on Monday
    weekly = select(m_owner.label("owner"), m_week, *m_dims, func.sum(m.sign)).group_by(
        *([] if everyone else [m.owner]), m_week, *m_dims
    )
    failures = (
        select(owner.label("owner"), day, *where_dims, c.message, tasks)
        .where(c.message != "")
        .group_by(*by_owner, day, *where_dims, c.message)
    )
    dims = ["task_type", "entity_type", "queue"]
    return [
        dialects.upsert_adding(
            D,
            dialect,
            daily,
            keys=["owner", "day", *dims, "status"],
            add=["tasks", "retried", "attempts"],
        ),
        dialects.upsert_adding(HR, dialect, hourly, keys=["owner", "hour", *dims], add=["tasks"]),
        dialects.upsert_adding(
            HR, dialect, hourly_all, keys=["owner", "hour", *dims], add=["tasks"]
        ),
        dialects.upsert_adding(
            H, dialect, durations, keys=["owner", "day", *dims, "measure", "bucket"], add=["tasks"]
        ),
        dialects.upsert_adding(
            HW, dialect, weekly, keys=["owner", "week", *dims, "measure", "bucket"], add=["tasks"]
        ),
        dialects.upsert_adding(
            F, dialect, failures, keys=["owner", "day", *dims, "message"], add=["tasks"]
        ),
    ]


@dataclass(frozen=True, slots=True)
class _Shape:
    """What an answer's statements depend on besides their parameters (one set per shape)."""

    owner: bool
    task_type: bool
    entity_type: bool
    queue: bool
    direct: bool

    @classmethod
    def of(cls, scope: Scope, direct: bool) -> _Shape:
        return cls(
            owner=scope.owner is not None,
            task_type=scope.task_type is not None,
            entity_type=scope.entity_type is not None,
            queue=scope.queue is not None,
            direct=direct,
        )


def _params(scope: Scope) -> dict[str, Any]:
    first_week = rules.week_of(scope.first_day + 6)  # the week of the window's first Monday
    values = {
        "owner": scope.owner if scope.owner is not None else rules.EVERYONE,
        "first_day": scope.first_day,
        "first_hour": scope.first_day * 24,
        "first_week": first_week,
        "first_monday": rules.monday_of(first_week),
        "task_type": scope.task_type,
        "entity_type": scope.entity_type,
        "queue": scope.queue,
    }
    return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True, slots=True)
class _Statements:
    tail: Select[Any]
    types: Select[Any]
    days: Select[Any]
    hours: Select[Any]
    durations: Select[Any]
    failures: Select[Any]
    failures_from: Select[Any]
    failures_of: Select[Any]


@functools.cache
def _parts(dialect: str, shape: _Shape) -> _Statements:
    """Built once per shape: building them costs more than running a small answer."""
    parts = _Parts(dialect, shape)
    return _Statements(
        parts.tail(),
        parts.types(),
        parts.days(),
        parts.hours(),
        parts.durations(),
        parts.failures(),
        parts.failures_from(),
        parts.failures_of(),
    )


def _param(name: str, type_: Any = None) -> Any:
    return bindparam(name, type_=type_ or String())


class _Parts:
    """The answer's statements: the rollup's rows in scope, and the live change (the tail),
    grouped by everything the answer needs so it is read once."""

    def __init__(self, dialect: str, shape: _Shape) -> None:
        self.shape = shape
        self.direct = shape.direct
        self.dialect = dialect

    def tail(self) -> Select[Any]:
        """Signed contributions in scope: +1 the current state of tasks changed since the
        watermark, -1 what the rollup counted for them (direct: +1 every task), summed."""
        where: list[Any] = []
        if self.shape.owner:
            where.append(T.c.requested_by == _param("owner"))
        if not self.direct:
            # a parameter, not a subquery: PostgreSQL then plans for the few rows past it
            since = _param("since", UTCDateTime())
            where += [T.c.status.in_(_ALL_STATUSES), T.c.updated_at >= since]
        current = contributions(self.dialect, *where).subquery("live")
        parts = [select(*current.c, _int(1).label("sign"))]
        if not self.direct:
            # only tasks created before the watermark can have been counted
            counted = select(*A.c, _int(-1).label("sign")).select_from(
                A.join(T, A.c.task_id == T.c.id)
            )
            parts.append(counted.where(*where, T.c.created_at < _param("since", UTCDateTime())))
        signed = union_all(*parts).subquery("signed")
        s = signed.c
        keys = [s.hour, s.task_type, s.status, s.retried, s.run_bucket, s.wait_bucket, s.message]
        return (
            select(
                *keys,
                func.sum(s.sign).label("tasks"),
                func.sum(s.sign * s.attempts).label("attempts"),
            )
            .where(*self._filters(s.task_type, s.entity_type, s.queue))
            .where(s.hour >= _param("first_hour", Integer()))
            .group_by(*keys)
        )

    def _filters(self, task_type: Any, entity_type: Any, queue: Any) -> list[Any]:
        shape = self.shape
        found = []
        if shape.task_type:
            found.append(task_type == _param("task_type"))
        if shape.entity_type:
            found.append(entity_type == _param("entity_type"))
        if shape.queue:
            found.append(queue == _param("queue"))
        return found

    def _rollup(self, table: Any, *columns: Any) -> Select[Any]:
        time = (
            table.c.hour >= _param("first_hour", Integer())
            if "hour" in table.c
            else table.c.day >= _param("first_day", Integer())
        )
        return select(*columns).where(
            table.c.owner == _param("owner"),
            time,
            *self._filters(table.c.task_type, table.c.entity_type, table.c.queue),
        )

    def types(self) -> Select[Any]:
        return self._rollup(
            D,
            D.c.task_type,
            D.c.status,
            func.sum(D.c.tasks).label("tasks"),
            func.sum(D.c.retried).label("retried"),
            func.sum(D.c.attempts).label("attempts"),
        ).group_by(D.c.task_type, D.c.status)

    def days(self) -> Select[Any]:
        return self._rollup(D, D.c.day, D.c.status, func.sum(D.c.tasks).label("tasks")).group_by(
            D.c.day, D.c.status
        )

    def hours(self) -> Select[Any]:
        """Tasks per UTC hour of the day and ISO day of the week (1970-01-01 was a Thursday).
        Without filters, the rows of every kind together; with one, those rows never match."""
        hourly = self._rollup(
            HR,
            (HR.c.hour % _int(24)).label("hod"),
            ((HR.c.hour // _int(24) + _int(3)) % _int(7) + _int(1)).label("dow"),
            HR.c.tasks,
        )
        shape = self.shape
        if not (shape.task_type or shape.entity_type or shape.queue):
            hourly = hourly.where(HR.c.task_type == rules.ALL_KINDS)
        else:
            hourly = hourly.where(HR.c.task_type != rules.ALL_KINDS)
        rows = hourly.subquery("by_hour")
        return select(rows.c.hod, rows.c.dow, func.sum(rows.c.tasks).label("tasks")).group_by(
            rows.c.hod, rows.c.dow
        )

    def durations(self) -> Select[Any]:
        """Whole weeks from the first Monday of the window on (the current week included: no
        task is created after today), and the days before that Monday one by one."""
        weeks = select(HW.c.task_type, HW.c.measure, HW.c.bucket, HW.c.tasks).where(
            HW.c.owner == _param("owner"),
            HW.c.week >= _param("first_week", Integer()),
            *self._filters(HW.c.task_type, HW.c.entity_type, HW.c.queue),
        )
        days = self._rollup(H, H.c.task_type, H.c.measure, H.c.bucket, H.c.tasks).where(
            H.c.day < _param("first_monday", Integer())
        )
        rows = union_all(weeks, days).subquery("rows")
        r = rows.c
        return select(r.task_type, r.measure, r.bucket, func.sum(r.tasks).label("tasks")).group_by(
            r.task_type, r.measure, r.bucket
        )

    def failures(self) -> Select[Any]:
        """The most frequent messages (as many as the parameter `limit` asks)."""
        total = func.sum(F.c.tasks)
        return (
            self._rollup(F, F.c.message, total.label("tasks"))
            .group_by(F.c.message)
            .having(total > 0)
            .order_by(total.desc())
            .limit(_param("limit", Integer()))
        )

    def failures_from(self) -> Select[Any]:
        """Every message at least as frequent as the parameter `floor`."""
        total = func.sum(F.c.tasks)
        return (
            self._rollup(F, F.c.message, total.label("tasks"))
            .group_by(F.c.message)
            .having(total >= _param("floor", Integer()))
        )

    def failures_of(self) -> Select[Any]:
        """The counts of the messages in the parameter `messages` (a list)."""
        return (
            self._rollup(F, F.c.message, func.sum(F.c.tasks).label("tasks"))
            .where(F.c.message.in_(bindparam("messages", expanding=True)))
            .group_by(F.c.message)
        )
