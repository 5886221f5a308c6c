"""Every query on the tasks table."""

from __future__ import annotations

import base64
import functools
import json
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, TypedDict
from uuid import UUID

import asyncpg
from sqlalchemy import (
    ColumnElement,
    Integer,
    Result,
    Row,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert, Update

from service.db import arrays, dialects, driver, json_rows
from service.db.repositories.history import HistoryRepository
from service.db.repositories.outbox import (
    OUTBOX_SET_LATER,
    NewOutboxRow,
    OutboxRecord,
    OutboxRepository,
    outbox_row,
)
from service.db.tables import events_table as E, outbox_table as O, tasks_table as T
from service.domain.tasks import STARTING, Priority, TaskRecord, TaskStatus

ACTIVE = T.c.deleted_at.is_(None)

_RECORD_FIELDS = tuple(f.name for f in fields(TaskRecord))


_STATUS_AT = _RECORD_FIELDS.index("status")
_PRIORITY_AT = _RECORD_FIELDS.index("priority")
_ID_AT = _RECORD_FIELDS.index("id")
#: value -> member: a dict lookup, where calling the enum goes through its metaclass
_STATUSES = {s.value: s for s in TaskStatus}
_PRIORITIES = {int(p): p for p in Priority}


def _entity(values: list[Any]) -> TaskRecord:
    """A row's values in the record's field order as the entity (status and priority as their
    enums, the id a uuid.UUID)."""
    values[_STATUS_AT] = _STATUSES[values[_STATUS_AT]]
    values[_PRIORITY_AT] = _PRIORITIES[values[_PRIORITY_AT]]
    if type(values[_ID_AT]) is not UUID:  # drivers may hand their own UUID type
        values[_ID_AT] = UUID(str(values[_ID_AT]))
    return TaskRecord(*values)


def to_record(row: Row[Any] | Mapping[str, Any]) -> TaskRecord:
    """A tasks row as the entity."""
    values = row._mapping if isinstance(row, Row) else row
    return _entity([values[name] for name in _RECORD_FIELDS])


def to_records(result: Result[Any]) -> list[TaskRecord]:
    """The rows of a result of whole tasks rows as entities, as `to_record` makes them.

    Each field's column is found once per result and taken by position (a C itemgetter): by
    name per row, a mapping lookup per field, was most of the cost of a claim's or a finish's
    few hundred records.
    """
    keys = list(result.keys())
    take = operator.itemgetter(*(keys.index(name) for name in _RECORD_FIELDS))
    return [_entity(list(take(row))) for row in result]


def to_row(task: TaskRecord) -> dict[str, Any]:
    """The entity as the row that stores it."""
    row = {name: getattr(task, name) for name in _RECORD_FIELDS}
    row["status"] = task.status.value
    row["priority"] = int(task.priority)
    return row


class TaskChanges(TypedDict, total=False):
    """The columns a state change or a report may set (conditional updates take these)."""

    status: TaskStatus
    available_at: datetime
    completed_at: datetime | None
    lease_until: datetime | None
    worker_id: str | None
    error_message: str | None
    retry_count: int
    auto_retries: int
    cancel_requested: bool
    progress: int
    total_items: int | None
    processed_items: int
    succeeded_items: int
    failed_items: int
    result: dict[str, Any] | None
    file_size: int | None
    input_file_id: str | None
    output_file_id: str | None
    report_file_id: str | None
    deleted_at: datetime | None
    updated_at: datetime
    # a person's edit of a task that has not started (PATCH)
    name: str | None
    description: str | None
    tags: list[str]
    priority: Priority
    queue: str
    scheduled_at: datetime | None
    params: dict[str, Any]
    max_retries: int
    notification_settings: dict[str, Any] | None


def _column_values(changes: TaskChanges) -> dict[str, Any]:
    values: dict[str, Any] = dict(changes)
    if "status" in changes:
        values["status"] = changes["status"].value
    if "priority" in changes:
        values["priority"] = int(changes["priority"])
    return values


# The hot statements are built once with bound parameters and reused: building a statement
# and its cache key costs more CPU than running it (SQLAlchemy memoises both per object).
_PLAIN_INSERT = T.insert()
_INSERT_EVENT = E.insert()


#: PostgreSQL: a group commit's new tasks, their `created` events and outbox rows in one
#: statement (one round trip), whatever their number, returning the outbox rows' ids. An
#: executemany ran the INSERT once per task in the server and SQLAlchemy prepared each task's
#: 46 parameters one by one; three statements cost two more executions (~0.12 ms of client CPU
#: each through SQLAlchemy, measured). Data-modifying CTEs always run, in the caller's
#: transaction: all of the rows, or none.
_INSERT_CREATED_MANY_PG = text(
    f"WITH new_tasks AS ({arrays.insert_from_arrays(T, 't_')}),"
    f" new_events AS ({arrays.insert_from_arrays(E, 'e_', skip=('id',))})"
    f" {arrays.insert_from_arrays(O, 'o_', skip=OUTBOX_SET_LATER)}"
    " RETURNING id"
)

#: The group commit's statement also marks published the claimed outbox rows its process's
#: relay sent meanwhile (service/events/relay.py): no round trip of their own. By primary key,
#: through the unpublished rows' index.
_SETTLE = (
    "settled AS (UPDATE outbox SET published_at = :s_now, attempts = attempts + 1,"
    " claimed_until = NULL"
    " WHERE id = ANY(CAST(:s_ids AS bigint[])) AND published_at IS NULL)"
)
#: insert_created_alone for any group: one array per column
_INSERT_CREATED_ANY = driver.Compiled.of(
    text(
        f"WITH {_SETTLE}, new_tasks AS ({arrays.insert_from_arrays(T, 't_')}),"
        f" new_events AS ({arrays.insert_from_arrays(E, 'e_', skip=('id',))})"
        f" {arrays.insert_from_arrays(O, 'o_', skip=OUTBOX_SET_LATER)}"
        " RETURNING id"
    )
)

#: What every row of a group of new tasks shares: a new task's starting values, its first
#: event's empty from_status, a new outbox row's attempts and subject (a task's rows have none)
#: and the claim of the group's outbox rows (the same for all).
_FRESH_TASK = {name: json_rows.literal(value) for name, value in STARTING.items()}
_FRESH_EVENT = {"from_status": "NULL"}
_FRESH_OUTBOX = {
    "attempts": "0",
    "subject": "NULL",
    "claimed_until": f"CAST(:o_claimed_until AS {arrays.array_type(O.c.claimed_until)})",
}
_NEW_TASKS = json_rows.JsonInsert(T, "t_rows", constants=_FRESH_TASK)
_NEW_EVENTS = json_rows.JsonInsert(E, "e_rows", skip=("id",), constants=_FRESH_EVENT)
_NEW_OUTBOX = json_rows.JsonInsert(O, "o_rows", skip=OUTBOX_SET_LATER, constants=_FRESH_OUTBOX)
#: The group commit's statement for new tasks: _INSERT_CREATED_MANY_PG with each table's rows
#: as one JSON document (service/db/json_rows.py) and what all rows share as constants (the
#: claim as one parameter). With an array per column, encoding 60 arrays was most of the
#: statement's client CPU (~0.18 ms a group plus ~0.065 ms a task, this machine, 2026-12-07).
_INSERT_CREATED_FRESH = driver.Compiled.of(
    text(
        f"WITH {_SETTLE}, new_tasks AS ({_NEW_TASKS.sql}), new_events AS ({_NEW_EVENTS.sql})"
        f" {_NEW_OUTBOX.sql} RETURNING id"
    )
)
_READ_FIELDS = _NEW_TASKS.read
_READ = operator.attrgetter(*_READ_FIELDS)
_STATUS_READ_AT = _READ_FIELDS.index("status")
_PRIORITY_READ_AT = _READ_FIELDS.index("priority")


def _created_arrays(
    tasks: Sequence[TaskRecord], events: list[dict[str, Any]], announced: Sequence[NewOutboxRow]
) -> dict[str, list[Any]]:
    """The parameters of _INSERT_CREATED_MANY_PG: one array per column of each table."""
    params = arrays.arrays_of(T, [to_row(t) for t in tasks], "t_")
    params |= arrays.arrays_of(E, events, "e_", skip=("id",))
    outbox = [{**outbox_row(row), "attempts": 0} for row in announced]
    params |= arrays.arrays_of(O, outbox, "o_", skip=OUTBOX_SET_LATER)
    return params


def _fresh(
    tasks: Sequence[TaskRecord], events: list[dict[str, Any]], announced: Sequence[NewOutboxRow]
) -> bool:
    """Whether every row shares what _INSERT_CREATED_FRESH writes as constants."""
    claim = announced[0].claimed_until
    return (
        all(getattr(t, name) == value for t in tasks for name, value in STARTING.items())
        and all(e["from_status"] is None for e in events)
        and all(r.subject is None and r.claimed_until == claim for r in announced)
    )


def _fresh_params(
    tasks: Sequence[TaskRecord], events: list[dict[str, Any]], announced: Sequence[NewOutboxRow]
) -> dict[str, Any]:
    """The parameters of _INSERT_CREATED_FRESH: each table's document, and the claim."""
    rows = []
    for task in tasks:
        values = list(_READ(task))
        values[_STATUS_READ_AT] = task.status.value
        values[_PRIORITY_READ_AT] = int(task.priority)
        rows.append(dict(zip(_READ_FIELDS, values, strict=True)))
    return {
        "t_rows": _NEW_TASKS.document(rows),
        "e_rows": _NEW_EVENTS.document(events),
        "o_rows": _NEW_OUTBOX.document([outbox_row(row) for row in announced]),
        "o_claimed_until": announced[0].claimed_until,
    }


def _numbered(announced: Sequence[NewOutboxRow], ids: Iterable[Any]) -> list[OutboxRecord]:
    """The outbox rows with their ids: numbered as they went in, in the arrays' order, so the
    ids sorted are the rows' ids in the order given."""
    ordered = sorted(int(i) for i in ids)
    return [row.record(i) for i, row in zip(ordered, announced, strict=True)]


async def insert_created_alone(
    connection: asyncpg.Connection,
    tasks: Sequence[TaskRecord],
    events: list[dict[str, Any]],
    announced: Sequence[NewOutboxRow],
    *,
    settled: Sequence[int] = (),
    now: datetime,
) -> list[OutboxRecord]:
    """PostgreSQL: insert_created_many's one statement on asyncpg, outside any transaction (it
    commits itself: a statement unit's, see service/db/unit_of_work.py); it also marks the
    outbox rows `settled` published at `now` (claimed rows the relay sent, still waiting)."""
    if _fresh(tasks, events, announced):
        statement, params = _INSERT_CREATED_FRESH, _fresh_params(tasks, events, announced)
    else:
        statement, params = _INSERT_CREATED_ANY, _created_arrays(tasks, events, announced)
    params |= {"s_ids": list(settled), "s_now": now}
    rows = await connection.fetch(statement.sql, *statement.args(params))
    return _numbered(announced, (r[0] for r in rows))


def _setters(keys: tuple[str, ...]) -> dict[str, Any]:
    """SET column = :set_<column> for each key, typed like its column."""
    return {k: bindparam(f"set_{k}", type_=T.c[k].type) for k in keys}


def _set_params(values: dict[str, Any]) -> dict[str, Any]:
    return {f"set_{k}": v for k, v in values.items()}


def _insert_values(table: Table, prefix: str) -> Insert:
    """INSERT INTO table (every column but a serial id) VALUES (:<prefix><column>, …)."""
    serial = table is not T  # events and outbox number their rows; a task brings its uuid
    return table.insert().values(
        {
            c.name: bindparam(f"{prefix}{c.name}", type_=c.type)
            for c in table.c
            if not (serial and c.name == "id")
        }
    )


@functools.cache
def _insert_created() -> Insert:
    """PostgreSQL: a new task, its event row and its outbox row in one statement (one round
    trip), returning the outbox row's id.

    Data-modifying CTEs always run, in the statement's snapshot, inside the caller's
    transaction: the same three rows as three INSERTs, or none.
    """
    return (
        _insert_values(O, "o_")
        .returning(O.c.id)
        .add_cte(_insert_values(T, "t_").cte("new_task"))
        .add_cte(_insert_values(E, "e_").cte("new_event"))
    )


@functools.cache
def _claim_statement(dialect: str, keys: tuple[str, ...], queues: tuple[str, ...]) -> Update:
    """One UPDATE that claims from every queue in `queues` at once.

    Each queue is its own candidate select (highest priority first, then oldest, then id;
    LIMIT :claim_limit_<queue>, and on PostgreSQL FOR UPDATE SKIP LOCKED) in a CTE; the UPDATE
    takes the union of their ids. One statement, so the claim stays one atomic step, and each
    queue's room and order are honoured exactly as with one UPDATE per queue.
    """
    now = bindparam("claim_now", type_=T.c.available_at.type)
    postgres = dialect == "postgresql"
    parts = []
    for queue in queues:
        # PostgreSQL: the locked rows' tuple ids, by which the UPDATE finds them
        taken = literal_column(f"{T.name}.ctid").label("tid") if postgres else T.c.id
        candidates = (
            select(taken)
            .where(dialects.is_value(T.c.status, TaskStatus.PENDING.value), T.c.queue == queue)
            .where(T.c.available_at <= now, ACTIVE)
            .order_by(T.c.priority.desc(), T.c.available_at, T.c.id)
            .limit(bindparam(f"claim_limit_{queue}", type_=Integer()))
        )
        cte = dialects.lock_skip_locked(candidates, dialect).cte(f"claim_{queue}")
        if postgres:
            # Evaluated exactly once. A plain `id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)`
            # may be re-run by the planner (e.g. per outer row of a nested loop), each run
            # skipping the rows the previous one locked: measured here, a LIMIT 16 claim on a
            # fresh, un-analysed table took all 1,200 pending tasks in one UPDATE.
            cte = cte.prefix_with("MATERIALIZED")
        parts.append(select(cte.c.tid if postgres else cte.c.id))
    chosen_rows = parts[0] if len(parts) == 1 else union_all(*parts)
    # The UPDATE must find the chosen tasks directly: a claim then costs what it takes,
    # whatever the backlog and whatever the statistics say. Left to themselves, both planners
    # went through the status index or the claim index, or (PostgreSQL, a table last analysed
    # while empty) scanned every task against the chosen ids: nested loops of millions of
    # comparisons, 0.3-0.9 s per claim of 300-500 from a 10,000-task backlog (bench/README).
    # PostgreSQL fetches the locked rows by their tuple ids (dialects.AmongLocked); SQLite takes
    # `id IN (chosen)`. `status || ''` is no indexed column, so the re-check that the task is
    # still pending cannot lead a planner to an index either.
    chosen: ColumnElement[bool] = (
        dialects.AmongLocked(T.name, chosen_rows) if postgres else T.c.id.in_(chosen_rows)
    )
    still_pending = T.c.status.concat("") == TaskStatus.PENDING.value
    return (
        update(T)
        .where(chosen, still_pending)
        .values(
            status=TaskStatus.PROCESSING.value,
            attempts=T.c.attempts + 1,
            version=T.c.version + 1,
            started_at=func.coalesce(T.c.started_at, now),
            **_setters(keys),
        )
        .returning(*T.c)
    )


#: For the rest of a claim's or a finish's transaction (their other statements insert, or find
#: rows by key): rows come off the index made for them, never from a sequential scan, which
#: the planner chose whenever its statistics were older than the backlog (a table last
#: analysed while empty, then 10,000 creates: 5-9 ms per claim, every pending task read each
#: time; a hash join over every attempt to finish 16 of them). Not a hint that can misfire:
#: every such statement has its index (ix_tasks_claim holds the claim's whole order, the
#: claim's UPDATE fetches by tuple id, a finish by primary key, attempts by (task, attempt)).
_INDEXES_ONLY = text("SET LOCAL enable_seqscan = off")


@functools.cache
def _by_partial_index(
    dialect: str, index: str, status: TaskStatus, column: str, *, inclusive: bool
) -> Select[tuple[Any, ...]]:
    """Tasks of `status` whose `column` is before :until (or at it, `inclusive`), in its order,
    read through the partial `index` made for exactly this (`column` WHERE status =
    '<status>'), :limit of them, locked for a job. The status is written into the statement
    (dialects.is_value), the order is the index's (it hands over the first rows, and the
    planner has no reason to prefer the status index, which it did with stale statistics:
    every running task read to find none expired), and SQLite is told the index by name."""
    tasks = dialects.through_index(T, index)
    until = bindparam("until", type_=tasks.c[column].type)
    stmt = (
        select(tasks)
        .where(
            dialects.is_value(tasks.c.status, status.value),
            tasks.c[column] <= until if inclusive else tasks.c[column] < until,
            tasks.c.deleted_at.is_(None),
        )
        .order_by(tasks.c[column])
        .limit(bindparam("limit", type_=Integer()))
    )
    return dialects.lock_skip_locked(stmt, dialect)


def _owned() -> list[Any]:
    """WHERE the task is one of :owned_ids and this worker still runs it."""
    return [
        dialects.OneOf(T.c.id, "owned_ids"),
        T.c.worker_id == bindparam("owned_by"),
        # no index holds `status || ''`: the primary key finds the tasks, whatever the
        # statistics say (the status index holds an entry for every version of every task
        # that ran since the last vacuum: 6,000 read to finish 16, measured)
        T.c.status.concat("") == TaskStatus.PROCESSING.value,
    ]


@functools.cache
def _finish_statement(keys: tuple[str, ...]) -> Update:
    return (
        update(T).where(*_owned()).values(version=T.c.version + 1, **_setters(keys)).returning(*T.c)
    )


_EXTEND_LEASES = (
    update(T)
    .where(*_owned())
    .values(lease_until=bindparam("set_lease_until", type_=T.c.lease_until.type))
    .returning(T.c.id, T.c.attempts, T.c.cancel_requested)
)


@dataclass(frozen=True, slots=True)
class TaskFilters:
    """List filters; owner None means every owner (admins)."""

    owner: str | None = None
    task_type: str | None = None
    entity_type: str | None = None
    status: Sequence[TaskStatus] = ()
    requested_by: str | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    #: searched in the name, description, types, file name and error message
    search: str | None = None
    #: tasks holding every one of these tags
    tags: Sequence[str] = ()
    queue: str | None = None


def _like(text: str) -> str:
    """A LIKE pattern that finds `text` anywhere, its wildcards and escape taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _json_text(text: str, dialect: str) -> str:
    """`text` as it appears inside a JSON string the database holds: SQLite keeps the text
    SQLAlchemy wrote (non-ASCII as \\u escapes), PostgreSQL's jsonb prints it raw."""
    return json.dumps(text, ensure_ascii=dialect != "postgresql")[1:-1]


def _search(search: str, dialect: str) -> Any:
    """Search in the named columns (name and description too) and inside params and result
    (their JSON text: bounded by the search's length, wildcards escaped; keys match as well as
    values)."""
    plain = _like(search)
    conditions = [
        c.ilike(plain, escape="\\")
        for c in (
            T.c.task_type,
            T.c.entity_type,
            T.c.file_name,
            T.c.error_message,
            T.c.name,
            T.c.description,
        )
    ]
    patterns = {plain, _like(_json_text(search, dialect))}
    for pattern in patterns:
        for column in (T.c.params, T.c.result):
            conditions.append(cast(column, Text).ilike(pattern, escape="\\"))
    return or_(*conditions)


def _listed_columns() -> list[Any]:
    """A list's columns: params longer than :params_cap characters of JSON text are read as
    NULL, flagged by params_omitted, so large params never leave the database for a list."""
    too_long = func.length(cast(T.c.params, Text)) > bindparam("params_cap", type_=Integer())
    params = type_coerce(case((too_long, null()), else_=T.c.params), T.c.params.type)
    others = [c for c in T.c if c.name != "params"]
    return [*others, params.label("params"), too_long.label("params_omitted")]


_LISTED = _listed_columns()


@dataclass(frozen=True, slots=True)
class Listed:
    """A task as a list shows it: its params are left out ({}) when too long to repeat."""

    task: TaskRecord
    params_omitted: bool


def _listed_record(row: Row[Any]) -> TaskRecord:
    values = dict(row._mapping)
    if values["params"] is None:
        values["params"] = {}
    return to_record(values)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Keyset position in the (created_at DESC, id DESC) order."""

    created_at: datetime
    id: UUID

    def encode(self) -> str:
        raw = json.dumps([self.created_at.isoformat(), str(self.id)]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """The cursor `encode` made; ValueError for anything else, whatever it holds."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            parts = json.loads(raw)
        except (ValueError, TypeError) as error:  # binascii.Error and JSON errors are ValueErrors
            raise ValueError("not a cursor") from error
        match parts:
            case [str(moment), str(task_id)]:
                created_at = datetime.fromisoformat(moment)
            case _:
                raise ValueError("not a cursor")
        if created_at.tzinfo is None:
            raise ValueError("a cursor's time has no zone")
        try:
            created_at = created_at.astimezone(UTC)
        except OverflowError as error:
            raise ValueError("a cursor's time is out of range") from error
        return cls(created_at, UUID(task_id))


class TaskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = dialects.name(session)

    async def insert_created(
        self, task: TaskRecord, event: dict[str, Any], announced: NewOutboxRow
    ) -> OutboxRecord:
        """Insert a whole new task with its event row and outbox row; returns the outbox row.

        PostgreSQL: one statement; SQLite: three. Every value written is in the arguments, so
        only the outbox row's id is read back.
        """
        if self.dialect == "postgresql":
            params = {f"t_{k}": v for k, v in to_row(task).items()}
            params.update({f"e_{c.name}": event.get(c.name) for c in E.c if c.name != "id"})
            params.update({f"o_{k}": v for k, v in outbox_row(announced).items()})
            params.update(o_attempts=0, o_last_error=None, o_published_at=None)
            outbox_id = (await self.session.execute(_insert_created(), params)).scalar_one()
            return announced.record(int(outbox_id))
        await self.session.execute(_PLAIN_INSERT, to_row(task))
        await self.session.execute(_INSERT_EVENT, [event])
        [record] = await OutboxRepository(self.session).add([announced])
        return record

    async def insert_created_many(
        self,
        tasks: Sequence[TaskRecord],
        events: list[dict[str, Any]],
        announced: Sequence[NewOutboxRow],
    ) -> list[OutboxRecord]:
        """Insert new tasks with their event rows and outbox rows (one of each per task, in the
        tasks' order); returns the outbox rows. PostgreSQL: one statement; SQLite: three."""
        if self.dialect != "postgresql":
            await self.session.execute(_PLAIN_INSERT, [to_row(t) for t in tasks])
            await HistoryRepository(self.session).add_events(events)
            return await OutboxRepository(self.session).add(announced)
        params = _created_arrays(tasks, events, announced)
        result = await self.session.execute(_INSERT_CREATED_MANY_PG, params)
        return _numbered(announced, result.scalars())

    async def get(
        self, task_id: UUID, *, for_update: bool = False, include_deleted: bool = False
    ) -> TaskRecord | None:
        stmt = select(T).where(T.c.id == task_id)
        if not include_deleted:
            stmt = stmt.where(ACTIVE)
        if for_update and self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else to_record(row)

    async def update_where(
        self, task_id: UUID, expected: Iterable[TaskStatus], changes: TaskChanges
    ) -> TaskRecord | None:
        """Conditional update: applies only while the task is still in an expected status."""
        stmt = (
            update(T)
            .where(T.c.id == task_id, T.c.status.in_([s.value for s in expected]), ACTIVE)
            .values(version=T.c.version + 1, **_column_values(changes))
            .returning(*T.c)
        )
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else to_record(row)

    async def update_at_version(
        self, task_id: UUID, version: int, changes: TaskChanges
    ) -> TaskRecord | None:
        """Conditional update: applies only while the task is still at `version` (every change
        of a task moves its version on)."""
        stmt = (
            update(T)
            .where(T.c.id == task_id, T.c.version == version, ACTIVE)
            .values(version=T.c.version + 1, **_column_values(changes))
            .returning(*T.c)
        )
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else to_record(row)

    async def report_progress(
        self,
        task_id: UUID,
        changes: TaskChanges,
        *,
        now: datetime,
        announce_before: datetime | None,
    ) -> tuple[TaskRecord, bool] | None:
        """Progress of a processing task, and whether a notice is due: with `announce_before`,
        progress_announced_at is stamped `now` when the last stamp is older (or missing), which
        is how the caller knows to queue a notice: one per interval, however many reports race
        (the row lock orders them)."""
        values: dict[str, Any] = {**_column_values(changes), "updated_at": now}
        if announce_before is not None:
            stamp = T.c.progress_announced_at
            fresh = or_(stamp.is_(None), stamp < announce_before)
            values["progress_announced_at"] = case(
                (fresh, literal(now, type_=stamp.type)), else_=stamp
            )
        stmt = (
            update(T)
            .where(T.c.id == task_id, T.c.status == TaskStatus.PROCESSING.value, ACTIVE)
            .values(version=T.c.version + 1, **values)
            .returning(*T.c)
        )
        row = (await self.session.execute(stmt)).one_or_none()
        if row is None:
            return None
        return to_record(row), announce_before is not None and row.progress_announced_at == now

    async def page(
        self,
        filters: TaskFilters,
        *,
        limit: int,
        offset: int = 0,
        cursor: Cursor | None = None,
        params_cap: int,
    ) -> tuple[list[Listed], int, bool]:
        """One page newest first, the total, and whether rows follow it (one row read ahead).

        Params longer than `params_cap` are not read (see _LISTED): such items say so.
        """
        conditions = self._conditions(filters, self.dialect)
        total = (
            await self.session.execute(select(func.count()).select_from(T).where(*conditions))
        ).scalar_one()
        stmt = select(*_LISTED).where(*conditions)
        if cursor is not None:
            stmt = stmt.where(
                or_(
                    T.c.created_at < cursor.created_at,
                    and_(T.c.created_at == cursor.created_at, T.c.id < cursor.id),
                )
            )
        else:
            stmt = stmt.offset(offset)
        stmt = stmt.order_by(T.c.created_at.desc(), T.c.id.desc()).limit(limit + 1)
        rows = (await self.session.execute(stmt, {"params_cap": params_cap})).all()
        listed = [Listed(_listed_record(r), bool(r.params_omitted)) for r in rows[:limit]]
        return listed, total, len(rows) > limit

    def _selection(self, filters: TaskFilters, ids: Sequence[UUID] | None) -> list[Any]:
        conditions = self._conditions(filters, self.dialect)
        if ids is not None:
            conditions.append(T.c.id.in_(list(ids)))
        return conditions

    async def count_selected(self, filters: TaskFilters, ids: Sequence[UUID] | None) -> int:
        """How many tasks match `filters` (and, given, are among `ids`)."""
        stmt = select(func.count()).select_from(T).where(*self._selection(filters, ids))
        return int((await self.session.execute(stmt)).scalar_one())

    async def selected_ids(
        self,
        filters: TaskFilters,
        ids: Sequence[UUID] | None,
        statuses: Iterable[TaskStatus],
        *,
        limit: int,
    ) -> Sequence[UUID]:
        """Up to `limit` ids of matching tasks in one of `statuses`, oldest first."""
        stmt = (
            select(T.c.id)
            .where(*self._selection(filters, ids), T.c.status.in_([s.value for s in statuses]))
            .order_by(T.c.created_at, T.c.id)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    @staticmethod
    def _conditions(f: TaskFilters, dialect: str) -> list[Any]:
        conditions: list[Any] = [ACTIVE]
        if f.owner is not None:
            conditions.append(T.c.requested_by == f.owner)
        if f.requested_by is not None:
            conditions.append(T.c.requested_by == f.requested_by)
        if f.task_type is not None:
            conditions.append(T.c.task_type == f.task_type)
        if f.entity_type is not None:
            conditions.append(T.c.entity_type == f.entity_type)
        if f.status:
            conditions.append(T.c.status.in_([s.value for s in f.status]))
        if f.start_date is not None:
            conditions.append(T.c.created_at >= f.start_date)
        if f.end_date is not None:
            conditions.append(T.c.created_at <= f.end_date)
        if f.queue is not None:
            conditions.append(T.c.queue == f.queue)
        if f.search:
            conditions.append(_search(f.search, dialect))
        if f.tags:
            conditions.append(dialects.json_list_holds_all(T.c.tags, f.tags, dialect))
        return conditions

    async def claim(
        self, rooms: Mapping[str, int], *, now: datetime, values: dict[str, Any]
    ) -> list[TaskRecord]:
        """Atomically move due pending tasks to processing: up to rooms[queue] of each queue.

        One statement for all queues (see _claim_statement); queues without room are left out.
        """
        rooms = {q: n for q, n in sorted(rooms.items()) if n > 0}
        if not rooms:
            return []
        stmt = _claim_statement(self.dialect, tuple(values), tuple(rooms))
        params: dict[str, Any] = {f"claim_limit_{q}": n for q, n in rooms.items()}
        params["claim_now"] = now
        await self.indexes_only()
        return to_records(await self.session.execute(stmt, {**params, **_set_params(values)}))

    async def indexes_only(self) -> None:
        """PostgreSQL: no sequential scans for the rest of this transaction (_INDEXES_ONLY)."""
        if self.dialect == "postgresql":
            await self.session.execute(_INDEXES_ONLY)

    async def finish_owned(
        self, ids: Sequence[UUID], worker_id: str, changes: TaskChanges
    ) -> list[TaskRecord]:
        """Apply the same final changes to tasks this worker still holds."""
        values = _column_values(changes)
        params = {"owned_ids": list(ids), "owned_by": worker_id, **_set_params(values)}
        return to_records(await self.session.execute(_finish_statement(tuple(values)), params))

    async def extend_leases(
        self, ids: Sequence[UUID], worker_id: str, lease_until: datetime
    ) -> list[tuple[UUID, int, bool]]:
        """Extend this worker's leases; returns (id, attempts, cancel_requested) of those held."""
        params = {"owned_ids": list(ids), "owned_by": worker_id, "set_lease_until": lease_until}
        rows = (await self.session.execute(_EXTEND_LEASES, params)).all()
        return [(r.id, int(r.attempts), bool(r.cancel_requested)) for r in rows]

    async def expired_leases(self, now: datetime, limit: int) -> list[TaskRecord]:
        """Running tasks whose lease ended before `now`, longest expired first, locked
        (PostgreSQL: skipping locked ones) for the job that hands them back."""
        stmt = _by_partial_index(
            self.dialect, "ix_tasks_lease", TaskStatus.PROCESSING, "lease_until", inclusive=False
        )
        return to_records(await self.session.execute(stmt, {"until": now, "limit": limit}))

    async def due_scheduled(self, now: datetime, limit: int) -> list[TaskRecord]:
        """Scheduled tasks due at `now`, earliest first, locked as expired_leases."""
        stmt = _by_partial_index(
            self.dialect, "ix_tasks_due", TaskStatus.SCHEDULED, "available_at", inclusive=True
        )
        return to_records(await self.session.execute(stmt, {"until": now, "limit": limit}))

    async def waiting(self, limit: int) -> list[TaskRecord]:
        """Tasks waiting for their input file, oldest first."""
        stmt = (
            select(T)
            .where(T.c.status == TaskStatus.WAITING.value, ACTIVE)
            .order_by(T.c.created_at)
            .limit(limit)
        )
        return to_records(await self.session.execute(stmt))

    async def cancel_requested(self, task_id: UUID) -> bool:
        stmt = select(T.c.cancel_requested).where(T.c.id == task_id)
        return bool((await self.session.execute(stmt)).scalar_one_or_none())

    async def old_finished_ids(self, before: datetime, limit: int) -> Sequence[UUID]:
        finished = [
            s.value for s in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)
        ]
        stmt = (
            select(T.c.id)
            .where(
                or_(
                    and_(T.c.status.in_(finished), T.c.updated_at < before),
                    and_(T.c.deleted_at.is_not(None), T.c.deleted_at < before),
                )
            )
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def delete_ids(self, ids: Sequence[UUID]) -> int:
        result = await self.session.execute(T.delete().where(T.c.id.in_(ids)))
        return int(result.rowcount)  # type: ignore[attr-defined]
