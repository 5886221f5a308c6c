"""Queries on the outbox: append in the task's transaction, drain in id order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import arrays, dialects, driver
from service.db.tables import outbox_table as O

# Built once: every state change appends a row, and the relay drains after nearly every commit.
#: RETURNING keeps the rows' order on both dialects (SQLAlchemy's "insertmanyvalues" sorts the
#: returned rows to match the parameters), so each new row learns its id.
_ADD = O.insert().returning(O.c.id, sort_by_parameter_order=True)
#: columns a new row leaves to the database (its id) or to its publication
OUTBOX_SET_LATER = ("id", "last_error", "published_at")
_ADD_FROM_ARRAYS_PG = text(arrays.insert_from_arrays(O, skip=OUTBOX_SET_LATER) + " RETURNING id")
_NEXT_BATCH = (
    select(O)
    .where(
        O.c.published_at.is_(None),
        O.c.id > bindparam("batch_after", type_=O.c.id.type),
        O.c.id <= bindparam("batch_up_to", type_=O.c.id.type),
    )
    .order_by(O.c.id)
    .limit(bindparam("batch_limit", type_=Integer()))
)
_LAST_ID = select(func.max(O.c.id))
_MARK_PUBLISHED = (
    update(O)
    .where(dialects.OneOf(O.c.id, "published_ids"))
    .values(
        published_at=bindparam("published_now", type_=O.c.published_at.type),
        attempts=O.c.attempts + 1,
    )
)

_MARK_WAITING = (
    update(O)
    .where(dialects.OneOf(O.c.id, "waiting_ids"), O.c.published_at.is_(None))
    .values(
        published_at=bindparam("published_now", type_=O.c.published_at.type),
        attempts=O.c.attempts + 1,
    )
    .returning(O.c.id)
)
_UNMARK = update(O).where(dialects.OneOf(O.c.id, "unmarked_ids")).values(published_at=None)


def _earlier_unpublished(tasks: bool, subjects: bool) -> Select[tuple[int]]:
    """A row still waiting, older than the given rows and not among them, of their tasks
    (`tasks`) or of their subjects among rows without a task (`subjects`)."""
    same_key: list[ColumnElement[bool]] = []
    if tasks:
        same_key.append(dialects.OneOf(O.c.task_id, "rows_tasks"))
    if subjects:
        same_key.append(and_(O.c.task_id.is_(None), dialects.OneOf(O.c.subject, "rows_subjects")))
    return (
        select(O.c.id)
        .where(
            O.c.published_at.is_(None),
            O.c.id < bindparam("rows_last", type_=O.c.id.type),
            ~dialects.OneOf(O.c.id, "rows_ids"),
            or_(*same_key),
        )
        .limit(1)
    )


_EARLIER_UNPUBLISHED = {
    (tasks, subjects): _earlier_unpublished(tasks, subjects)
    for tasks in (True, False)
    for subjects in (True, False)
    if tasks or subjects
}


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One event waiting to go out (or gone out): its id is the CloudEvent's id."""

    id: int
    topic: str
    task_id: UUID | None
    payload: dict[str, Any]
    traceparent: str | None
    created_at: datetime
    #: the first event of a new task: no earlier row of its task can wait to go out
    opens: bool = False
    #: subject of a row without a task (e.g. "payment" for settings): its ordering key
    subject: str | None = None
    #: until when the process that wrote it publishes it itself (see service/events/relay.py):
    #: no other relay takes it, or a later row of its key, before then
    claimed_until: datetime | None = None

    @property
    def ordering_key(self) -> UUID | str | None:
        """Rows of one key go out in id order: a task's (its id), or a subject's when it has no
        task. The id itself, not its text: the relay groups every row it publishes by this."""
        return self.task_id if self.task_id is not None else self.subject


@dataclass(frozen=True, slots=True)
class NewOutboxRow:
    """An event to append; the database numbers it."""

    topic: str
    task_id: UUID | None
    payload: dict[str, Any]
    created_at: datetime
    traceparent: str | None = None
    opens: bool = False
    subject: str | None = None
    claimed_until: datetime | None = None

    def record(self, id: int) -> OutboxRecord:
        """The row as written, once the database numbered it."""
        return OutboxRecord(
            id,
            self.topic,
            self.task_id,
            self.payload,
            self.traceparent,
            self.created_at,
            self.opens,
            self.subject,
            self.claimed_until,
        )


def outbox_row(row: NewOutboxRow) -> dict[str, Any]:
    """The outbox table's values of a new row (its id and publishing state come from the
    database)."""
    return {
        "topic": row.topic,
        "task_id": row.task_id,
        "payload": row.payload,
        "traceparent": row.traceparent,
        "created_at": row.created_at,
        "subject": row.subject,
        "claimed_until": row.claimed_until,
    }


def _record(row: Row[Any]) -> OutboxRecord:
    return OutboxRecord(
        row.id,
        row.topic,
        row.task_id,
        row.payload,
        row.traceparent,
        row.created_at,
        subject=row.subject,
        claimed_until=row.claimed_until,
    )


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, rows: Sequence[NewOutboxRow]) -> list[OutboxRecord]:
        """Append rows (one statement) and return them with their ids, in the order given."""
        if not rows:
            return []
        if len(rows) > 1 and dialects.name(self.session) == "postgresql":
            ids = await self._add_from_arrays(rows)
        else:
            result = await self.session.execute(_ADD, [outbox_row(r) for r in rows])
            ids = [int(i) for i in result.scalars().all()]
        return [r.record(i) for i, r in zip(ids, rows, strict=True)]

    async def _add_from_arrays(self, rows: Sequence[NewOutboxRow]) -> list[int]:
        """PostgreSQL: the rows as one array per column, so a batch of any size is the same
        statement (prepared once; SQLAlchemy's multi-row VALUES is a new text per size).
        Rows go in in the given order and the sequence numbers them as they go in, so the
        ids sorted are the rows' ids in that order."""
        new = [{**outbox_row(r), "attempts": 0} for r in rows]
        params = arrays.arrays_of(O, new, skip=OUTBOX_SET_LATER)
        ids = (await self.session.execute(_ADD_FROM_ARRAYS_PG, params)).scalars().all()
        return sorted(int(i) for i in ids)

    async def earlier_unpublished(self, rows: Sequence[OutboxRecord]) -> bool:
        """Whether a row of these rows' tasks (or subjects, for rows without a task), older than
        them and not among them, still waits to go out (then publishing these first would let
        them overtake it)."""
        if not rows:
            return False
        ids = [r.id for r in rows]
        tasks = list({r.task_id for r in rows if r.task_id is not None})
        subjects = list({r.subject for r in rows if r.task_id is None and r.subject is not None})
        if not tasks and not subjects:
            return False
        stmt = _EARLIER_UNPUBLISHED[(bool(tasks), bool(subjects))]
        # a statement without tasks (or without subjects) leaves that list unused
        params = {
            "rows_ids": ids,
            "rows_last": max(ids),
            "rows_tasks": tasks,
            "rows_subjects": subjects,
        }
        return (await self.session.execute(stmt, params)).first() is not None

    async def mark_waiting(self, ids: Sequence[int], now: datetime) -> set[int]:
        """Mark those of these rows still waiting as published; which they were. For a relay
        that holds the relay lock and publishes them before it commits (see unmark)."""
        if not ids:
            return set()
        params = {"waiting_ids": list(ids), "published_now": now}
        return {int(i) for i in (await self.session.execute(_MARK_WAITING, params)).scalars()}

    async def unmark(self, ids: Sequence[int]) -> None:
        """Rows marked by mark_waiting that the publisher refused: waiting again."""
        if ids:
            await self.session.execute(_UNMARK, {"unmarked_ids": list(ids)})

    async def last_id(self) -> int:
        """The newest row's id (0 for an empty table)."""
        return int((await self.session.execute(_LAST_ID)).scalar() or 0)

    async def next_batch(self, limit: int, up_to: int, after: int = 0) -> list[OutboxRecord]:
        """The oldest `limit` rows still waiting, of those numbered above `after` and up to
        `up_to`."""
        params = {"batch_limit": limit, "batch_after": after, "batch_up_to": up_to}
        rows = (await self.session.execute(_NEXT_BATCH, params)).all()
        return [_record(r) for r in rows]

    async def mark_published(self, ids: Sequence[int], now: datetime) -> None:
        if ids:
            params = {"published_ids": list(ids), "published_now": now}
            await self.session.execute(_MARK_PUBLISHED, params)

    async def mark_failed(self, row_id: int, error: str) -> None:
        await self.session.execute(
            update(O)
            .where(O.c.id == row_id)
            .values(attempts=O.c.attempts + 1, last_error=error[:2000])
        )

    async def pending_count(self) -> int:
        stmt = select(func.count()).select_from(O).where(O.c.published_at.is_(None))
        return int((await self.session.execute(stmt)).scalar_one())

    async def delete_published_before(self, before: datetime) -> int:
        result = await self.session.execute(
            O.delete().where(O.c.published_at.is_not(None), O.c.published_at < before)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


# -- PostgreSQL: a relay publishing rows from memory, on the driver (service/db/driver.py) -----

#: Sent as one message to begin a relay's transaction: it commits without waiting for its WAL
#: flush (a lost mark only sends rows again, which at-least-once delivery allows) and reads by
#: index only (with statistics older than the table the planner scanned the whole outbox to
#: mark five rows: 0.45 ms a drain, 38 % of PostgreSQL's time under 16 creating clients).
RELAY_BEGIN = "BEGIN; SET LOCAL synchronous_commit = off; SET LOCAL enable_seqscan = off"

#: In one statement: take the relay lock if it is free; holding it, tell whether a row older
#: than the given later rows (and not among the given rows) of their tasks (or, for rows without
#: a task, their subjects) still waits; and if none does, mark the given rows that still wait.
#: A row marked by another drain after this statement's snapshot is skipped by the UPDATE all
#: the same (it re-reads a row changed since); an older row seen as waiting when it was just
#: published sends these rows to the table drain, which is only slower.
_LOCK_AND_MARK = driver.Compiled.of(
    text(
        "WITH relay_lock AS MATERIALIZED (SELECT pg_try_advisory_xact_lock(:lock_key) AS got),"
        " older AS MATERIALIZED (SELECT (SELECT got FROM relay_lock) AND EXISTS ("
        "  SELECT 1 FROM outbox WHERE published_at IS NULL AND id < :later_last"
        "   AND id <> ALL(CAST(:row_ids AS bigint[]))"
        "   AND (task_id = ANY(CAST(:later_tasks AS uuid[]))"
        "    OR (task_id IS NULL AND subject = ANY(CAST(:later_subjects AS varchar[]))))"
        " ) AS waits),"
        " marked AS (UPDATE outbox SET published_at = :now, attempts = attempts + 1"
        "  WHERE id = ANY(CAST(:row_ids AS bigint[])) AND published_at IS NULL"
        "   AND (SELECT got FROM relay_lock) AND NOT (SELECT waits FROM older)"
        "  RETURNING id)"
        " SELECT (SELECT got FROM relay_lock), (SELECT waits FROM older),"
        " ARRAY(SELECT id FROM marked)"
    )
)
_WAIT_FOR_LOCK = driver.Compiled.of(text("SELECT pg_advisory_xact_lock(:lock_key)"))
_UNMARK_ALONE = driver.Compiled.of(
    text("UPDATE outbox SET published_at = NULL WHERE id = ANY(CAST(:ids AS bigint[]))")
)


@dataclass(frozen=True, slots=True)
class Marked:
    """What lock_and_mark did: whether it holds the lock; if so, whether an older row of the
    later rows' tasks still waits (then nothing is marked), and the rows it marked."""

    locked: bool
    older_waits: bool
    ids: frozenset[int]


async def lock_and_mark(
    connection: asyncpg.Connection,
    lock_key: int,
    rows: Sequence[OutboxRecord],
    now: datetime,
) -> Marked:
    """In a transaction begun with RELAY_BEGIN: the relay lock, the order check and the marks in
    one statement (see _LOCK_AND_MARK). Rows that open their task need no order check."""
    later = [r for r in rows if not r.opens]
    params = {
        "lock_key": lock_key,
        "row_ids": [r.id for r in rows],
        "later_last": max((r.id for r in later), default=0),
        "later_tasks": list({r.task_id for r in later if r.task_id is not None}),
        "later_subjects": list(
            {r.subject for r in later if r.task_id is None and r.subject is not None}
        ),
        "now": now,
    }
    got, waits, ids = await connection.fetchrow(_LOCK_AND_MARK.sql, *_LOCK_AND_MARK.args(params))
    return Marked(bool(got), bool(waits), frozenset(ids or ()))


async def wait_for_lock(connection: asyncpg.Connection, lock_key: int, timeout: str) -> None:
    """Queue for the relay lock for up to `timeout` (a PostgreSQL interval such as '2s'); raises
    asyncpg's LockNotAvailableError when it was not had by then."""
    await connection.execute(f"SET LOCAL lock_timeout = '{timeout}'")
    await connection.execute(_WAIT_FOR_LOCK.sql, lock_key)


async def unmark_alone(connection: asyncpg.Connection, ids: Sequence[int]) -> None:
    """Rows marked by lock_and_mark that the publisher refused: waiting again."""
    if ids:
        await connection.execute(_UNMARK_ALONE.sql, list(ids))


#: How long the process that wrote claimed rows has to publish them and settle their claims;
#: past that, other relays publish them (the process is taken for dead).
CLAIM_SECONDS = 15.0


def _id_array(ids: Sequence[int]) -> str:
    """An array literal of row ids, built from ints only (so nothing else can get in)."""
    return "'{" + ",".join(str(int(i)) for i in ids) + "}'::bigint[]"


async def settle_claims(
    connection: asyncpg.Connection,
    published: Sequence[int],
    released: Sequence[int],
    now: datetime,
) -> None:
    """Claimed rows this process published (marked published) and those the publisher refused
    (claim released: the table drain takes them, in order, with its retries).

    One message in one round trip, without parameters: a transaction that commits without
    waiting for its WAL flush (a lost mark sends the rows again, which at-least-once delivery
    allows) and finds the rows by id only (see RELAY_BEGIN). No relay lock: no other relay
    takes a claimed row, and a later row of its task waits for this mark like any other.
    """
    if not published and not released:
        return
    statements = [RELAY_BEGIN]
    if published:
        stamp = now.isoformat()
        statements.append(
            f"UPDATE outbox SET published_at = '{stamp}'::timestamptz, attempts = attempts + 1,"
            f" claimed_until = NULL WHERE id = ANY({_id_array(published)})"
        )
    if released:
        statements.append(
            f"UPDATE outbox SET claimed_until = NULL WHERE id = ANY({_id_array(released)})"
        )
    statements.append("COMMIT")
    await connection.execute("; ".join(statements))
