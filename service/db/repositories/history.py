"""Queries on what a task leaves behind: events, logs, attempts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import arrays, dialects
from service.db.tables import (
    attempts_table as A,
    events_table as E,
    logs_table as L,
)

LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One recorded state change of a task."""

    id: int
    task_id: UUID
    event_type: str
    from_status: str | None
    to_status: str | None
    actor: str | None
    message: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One line a handler logged."""

    id: int
    task_id: UUID
    level: str
    message: str
    attempt: int | None
    data: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One execution attempt of a task."""

    id: int
    task_id: UUID
    attempt: int
    worker_id: str
    dispatch: str
    outcome: str
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None


# Built once: every state change and every batch the worker claims or finishes runs these.
_ADD_EVENTS = E.insert()
_START_ATTEMPTS = A.insert()
_FINISH_ATTEMPT = (
    update(A)
    .where(A.c.task_id == bindparam("b_task_id"), A.c.attempt == bindparam("b_attempt"))
    .values(
        outcome=bindparam("b_outcome"),
        error=bindparam("b_error"),
        finished_at=bindparam("b_finished_at"),
        duration_ms=bindparam("b_duration_ms"),
    )
)


# PostgreSQL: a batch as one array per column, one statement whatever its size (see
# service/db/arrays.py); ids (and a task's events) follow the rows' order.
_ADD_EVENTS_PG = text(arrays.insert_from_arrays(E, skip=("id",)))
_START_ATTEMPTS_PG = text(arrays.insert_from_arrays(A, skip=("id",)))
_FINISH_ATTEMPTS_PG = text(
    "UPDATE task_attempts AS a SET outcome = v.outcome, error = v.error,"
    " finished_at = v.finished_at, duration_ms = v.duration_ms"
    " FROM unnest(CAST(:task_ids AS uuid[]), CAST(:attempts AS integer[]),"
    " CAST(:outcomes AS varchar[]), CAST(:errors AS text[]),"
    " CAST(:finished AS timestamptz[]), CAST(:durations AS integer[]))"
    " AS v(task_id, attempt, outcome, error, finished_at, duration_ms)"
    " WHERE a.task_id = v.task_id AND a.attempt = v.attempt"
)


#: array parameter -> row key, for each statement over arrays
_FINISH_ARRAYS = {
    "task_ids": "task_id",
    "attempts": "attempt",
    "outcomes": "outcome",
    "errors": "error",
    "finished": "finished_at",
    "durations": "duration_ms",
}


def _arrays(rows: Sequence[Mapping[str, Any]], keys: Mapping[str, str]) -> dict[str, list[Any]]:
    """The rows as one array per column, for a statement that reads them with unnest()."""
    return {param: [row[key] for row in rows] for param, key in keys.items()}


class HistoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_events(self, rows: list[dict[str, Any]]) -> None:
        """rows: task_id, event_type, from_status, to_status, actor, message, created_at; their
        ids follow their order (a task's events are read back by id)."""
        if not rows:
            return
        if dialects.name(self.session) == "postgresql":
            await self.session.execute(_ADD_EVENTS_PG, arrays.arrays_of(E, rows, skip=("id",)))
        else:
            await self.session.execute(_ADD_EVENTS, rows)

    async def events(self, task_id: UUID) -> list[EventRecord]:
        stmt = select(E).where(E.c.task_id == task_id).order_by(E.c.id)
        return [EventRecord(**r._asdict()) for r in (await self.session.execute(stmt)).all()]

    async def add_logs(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(L.insert(), rows)

    async def logs(
        self, task_id: UUID, *, min_level: str | None, limit: int, offset: int
    ) -> tuple[list[LogRecord], int]:
        conditions: list[Any] = [L.c.task_id == task_id]
        if min_level is not None:
            conditions.append(L.c.level.in_(LEVELS[LEVELS.index(min_level) :]))
        total = (
            await self.session.execute(select(func.count()).select_from(L).where(*conditions))
        ).scalar_one()
        stmt = select(L).where(*conditions).order_by(L.c.id).offset(offset).limit(limit)
        rows = (await self.session.execute(stmt)).all()
        return [LogRecord(**r._asdict()) for r in rows], int(total)

    async def start_attempts(self, rows: list[dict[str, Any]]) -> None:
        """rows: task_id, attempt, worker_id, dispatch, outcome, started_at."""
        if not rows:
            return
        if dialects.name(self.session) == "postgresql":
            await self.session.execute(_START_ATTEMPTS_PG, arrays.arrays_of(A, rows, skip=("id",)))
        else:
            await self.session.execute(_START_ATTEMPTS, rows)

    async def finish_attempts(self, rows: list[dict[str, Any]]) -> None:
        """rows: task_id, attempt, outcome, error, finished_at, duration_ms.

        PostgreSQL: one UPDATE over arrays of them (an executemany would run one statement per
        attempt in the server); SQLite runs its executemany in the process, cheaply.
        """
        if not rows:
            return
        if dialects.name(self.session) == "postgresql":
            await self.session.execute(_FINISH_ATTEMPTS_PG, _arrays(rows, _FINISH_ARRAYS))
            return
        params = [{f"b_{k}": v for k, v in row.items()} for row in rows]
        await self.session.execute(_FINISH_ATTEMPT, params)

    async def attempt_started_at(self, task_id: UUID, attempt: int) -> datetime | None:
        stmt = select(A.c.started_at).where(A.c.task_id == task_id, A.c.attempt == attempt)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def attempts(self, task_id: UUID) -> list[AttemptRecord]:
        stmt = select(A).where(A.c.task_id == task_id).order_by(A.c.attempt)
        return [AttemptRecord(**r._asdict()) for r in (await self.session.execute(stmt)).all()]

    async def delete_for_tasks(self, ids: Sequence[UUID]) -> None:
        for table in (E, L, A):
            await self.session.execute(table.delete().where(table.c.task_id.in_(ids)))
