"""Every analytics query: the rollup job's steps and the answer's aggregates.

A task's *contribution* is what it adds to the rollup: its owner, UTC hour of creation, type,
entity type, queue, status, whether it was retried, its attempts, its run-time and queue-wait
buckets, and a failed task's message. The rollup tables sum contributions per owner and for
everyone (owner ""); `analytics_tasks` keeps each task's contribution as the rollup counted
it, so a task that changes later is taken back out before its new contribution goes in.

An answer adds up the rollup's rows and, live, the change since the watermark: the current
contribution of every task updated since (+1) minus what the rollup counted for it (-1).
Every statement reads the watermark itself, so each is exact even while the job commits.
"""

from __future__ import annotations

import functools
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
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import dialects
from service.db.tables import (
    analytics_daily_table as D,
    analytics_durations_table as H,
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


def _bucket(ms: Any, low: int = 0, high: int = rules.BUCKET_COUNT - 1) -> Any:
    """The duration bucket of `ms` (service.domain.analytics): a binary search of CASEs, so a
    row takes seven comparisons, the same on both databases."""
    if low == high:
        return _int(low)
    middle = (low + high + 1) // 2  # bucket >= middle exactly when ms >= the edge before it
    edge: Any = literal_column(repr(rules.EDGES_MS[middle - 1]))
    return case((ms < edge, _bucket(ms, low, middle - 1)), else_=_bucket(ms, middle, high))


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
        case((c.run_ms.is_(None), _int(-1)), else_=_bucket(c.run_ms)).label("run_bucket"),
        case((c.wait_ms.is_(None), _int(-1)), else_=_bucket(c.wait_ms)).label("wait_bucket"),
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
class DayRow:
    day: int
    task_type: str
    status: str
    tasks: int
    retried: int
    attempts: int


@dataclass(frozen=True, slots=True)
class Answer:
    """The aggregates of one answer, summed in the database."""

    days: list[DayRow]
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

    # --- the answer ---------------------------------------------------------------------------

    async def answer(self, scope: Scope, *, direct: bool = False) -> Answer:
        """Sum the rollup and the live change since its watermark; `direct`: sum the tasks
        table alone (what the rollup must equal; slow on a large table)."""
        parts = _parts(self.dialect, _Shape.of(scope, direct))
        params = _params(scope)
        days = [
            DayRow(int(r.day), r.task_type, r.status, int(r.tasks), int(r.retried), int(r.attempts))
            for r in await self.session.execute(parts.days, params)
        ]
        hours = {
            (int(r.hod), int(r.dow)): int(r.tasks)
            for r in await self.session.execute(parts.hours, params)
        }
        durations: dict[tuple[str, str], dict[int, int]] = {}
        for r in await self.session.execute(parts.durations, params):
            durations.setdefault((r.task_type, r.measure), {})[int(r.bucket)] = int(r.tasks)
        rows = await self.session.execute(parts.failures, params)
        failures = [(r.message, int(r.tasks)) for r in rows]
        return Answer(days, hours, durations, failures, None if direct else await self.watermark())


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
            H, dialect, durations, keys=["owner", "day", *dims, "measure", "bucket"], add=["tasks"]
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
    values = {
        "owner": scope.owner if scope.owner is not None else rules.EVERYONE,
        "first_day": scope.first_day,
        "first_hour": scope.first_day * 24,
        "task_type": scope.task_type,
        "entity_type": scope.entity_type,
        "queue": scope.queue,
    }
    return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True, slots=True)
class _Statements:
    days: Select[Any]
    hours: Select[Any]
    durations: Select[Any]
    failures: Select[Any]


@functools.cache
def _parts(dialect: str, shape: _Shape) -> _Statements:
    """Built once per shape: building the bucket CASEs costs more than running a small answer."""
    parts = _Parts(dialect, shape)
    return _Statements(parts.days(), parts.hours(), parts.durations(), parts.failures())


def _param(name: str, type_: Any = None) -> Any:
    return bindparam(name, type_=type_ or String())


class _Parts:
    """The answer's four statements: the rollup's rows in scope plus the live change."""

    def __init__(self, dialect: str, shape: _Shape) -> None:
        self.shape = shape
        self.direct = shape.direct
        self.live = self._live(dialect)

    def _live(self, dialect: str) -> Subquery:
        """Signed contributions in scope: +1 the current state of tasks changed since the
        watermark, -1 what the rollup counted for them (direct: +1 every task)."""
        where: list[Any] = []
        if self.shape.owner:
            where.append(T.c.requested_by == _param("owner"))
        if not self.direct:
            mark = select(W.c.watermark).where(W.c.name == WATERMARK).scalar_subquery()
            since = func.coalesce(mark, literal(_EPOCH, UTCDateTime()))
            where += [T.c.status.in_(_ALL_STATUSES), T.c.updated_at >= since]
        current = contributions(dialect, *where).subquery("live")
        parts = [select(*current.c, _int(1).label("sign"))]
        if not self.direct:
            changed = select(T.c.id).where(*where)
            parts.append(select(*A.c, _int(-1).label("sign")).where(A.c.task_id.in_(changed)))
        signed = union_all(*parts).subquery("signed")
        s = signed.c
        return (
            select(signed)
            .where(*self._filters(s.owner, s.task_type, s.entity_type, s.queue))
            .where(s.hour >= _param("first_hour", Integer()))
            .subquery("tail")
        )

    def _filters(self, owner: Any, task_type: Any, entity_type: Any, queue: Any) -> list[Any]:
        shape = self.shape
        found = []
        if shape.task_type:
            found.append(task_type == _param("task_type"))
        if shape.entity_type:
            found.append(entity_type == _param("entity_type"))
        if shape.queue:
            found.append(queue == _param("queue"))
        return found

    def _rollup(self, table: Any, *columns: Any) -> Select[Any] | None:
        if self.direct:
            return None
        time = (
            table.c.hour >= _param("first_hour", Integer())
            if "hour" in table.c
            else table.c.day >= _param("first_day", Integer())
        )
        return select(*columns).where(
            table.c.owner == _param("owner"),
            time,
            *self._filters(None, table.c.task_type, table.c.entity_type, table.c.queue),
        )

    def _sum(self, rollup: Select[Any] | None, live: Select[Any]) -> Subquery:
        return (union_all(rollup, live) if rollup is not None else live).subquery("rows")

    def days(self) -> Select[Any]:
        t = self.live.c
        live = select(
            (t.hour // _int(24)).label("day"),
            t.task_type,
            t.status,
            t.sign.label("tasks"),
            (t.sign * t.retried).label("retried"),
            (t.sign * t.attempts).label("attempts"),
        )
        rollup = self._rollup(
            D, D.c.day, D.c.task_type, D.c.status, D.c.tasks, D.c.retried, D.c.attempts
        )
        r = self._sum(rollup, live).c
        return select(
            r.day,
            r.task_type,
            r.status,
            func.sum(r.tasks).label("tasks"),
            func.sum(r.retried).label("retried"),
            func.sum(r.attempts).label("attempts"),
        ).group_by(r.day, r.task_type, r.status)

    def hours(self) -> Select[Any]:
        t = self.live.c
        live = select(t.hour, t.sign.label("tasks"))
        rollup = self._rollup(HR, HR.c.hour, HR.c.tasks)
        r = self._sum(rollup, live).c
        hod = (r.hour % _int(24)).label("hod")
        dow = ((r.hour // _int(24) + _int(3)) % _int(7) + _int(1)).label("dow")
        inner = select(hod, dow, r.tasks).subquery("by_hour")
        return select(inner.c.hod, inner.c.dow, func.sum(inner.c.tasks).label("tasks")).group_by(
            inner.c.hod, inner.c.dow
        )

    def durations(self) -> Select[Any]:
        t = self.live.c
        live = union_all(
            *[
                select(
                    t.task_type, _text(m).label("measure"), b.label("bucket"), t.sign.label("tasks")
                ).where(b >= 0)
                for m, b in (("run", t.run_bucket), ("wait", t.wait_bucket))
            ]
        )
        rollup = self._rollup(H, H.c.task_type, H.c.measure, H.c.bucket, H.c.tasks)
        rows = (union_all(rollup, *live.selects) if rollup is not None else live).subquery("rows")
        r = rows.c
        return select(r.task_type, r.measure, r.bucket, func.sum(r.tasks).label("tasks")).group_by(
            r.task_type, r.measure, r.bucket
        )

    def failures(self) -> Select[Any]:
        t = self.live.c
        live = select(t.message, t.sign.label("tasks")).where(t.message != "")
        rollup = self._rollup(F, F.c.message, F.c.tasks)
        r = self._sum(rollup, live).c
        total = func.sum(r.tasks)
        return (
            select(r.message, total.label("tasks"))
            .group_by(r.message)
            .having(total > 0)
            .order_by(total.desc(), r.message)
            .limit(rules.TOP_FAILURES)
        )
