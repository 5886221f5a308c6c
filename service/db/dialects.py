"""The few places where PostgreSQL and SQLite need different SQL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    Integer,
    Select,
    Table,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.selectable import Alias
from sqlalchemy.sql.visitors import InternalTraversal, _TraverseInternalsType

from service.domain import analytics


def is_value(column: Any, value: str) -> ColumnElement[bool]:
    """`column = 'value'` with the value written into the statement, not bound.

    A partial index (`… WHERE status = 'pending'`) serves a statement only when the planner
    can prove the statement's WHERE implies the index's. asyncpg prepares every statement and
    PostgreSQL plans a prepared statement generically after its fifth run; a generic plan knows
    no bound value, so `status = $1` never reaches a partial index and the planner falls back
    to the status index, reading every pending task on every claim (measured: 1 ms of
    PostgreSQL CPU a drained task instead of 0.15, bench/README). Every query a partial index
    exists for compares through this. `value` is one of the service's own constants.
    """
    fixed = literal_column("'" + value.replace("'", "''") + "'", column.type)
    equal: ColumnElement[bool] = column == fixed
    return equal


class OneOf(ColumnElement[bool]):
    """`column IN (…)` for a list bound as the parameter `name` when the statement runs; on
    PostgreSQL `column = ANY(:name)`, the list as one array.

    SQLAlchemy's expanding IN (`bindparam(expanding=True)`) renders a new SQL text for every
    length of the list, and asyncpg prepares each new text (a round trip, and a parse and plan
    on the server): the finishes, lease renewals and relay marks of a busy worker, whose
    batches vary in size, prepared a statement on nearly every call. One array parameter keeps
    one text, prepared once per connection. SQLite has no arrays: it keeps the expanding IN.
    """

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a condition already: no `= 1` on SQLite
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012 (SQLAlchemy's own type)
        ("column", InternalTraversal.dp_clauseelement),
        ("name", InternalTraversal.dp_string),
    ]

    def __init__(self, column: ColumnElement[Any], name: str) -> None:
        self.column = column
        self.name = name


@compiles(OneOf)
def _one_of(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column.in_(bindparam(element.name, expanding=True)), **kw)


@compiles(OneOf, "postgresql")
def _one_of_array(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    array = bindparam(element.name, type_=postgresql.ARRAY(element.column.type))
    return compiler.process(element.column == any_(array), **kw)


class AmongLocked(ColumnElement[bool]):
    """PostgreSQL: `<table>.ctid = ANY(ARRAY(<rows>))`, where `rows` selects the tuple ids
    (`ctid`) of rows this statement locked: the rows themselves, fetched by address.

    A claim's UPDATE must touch only the few tasks its candidate selects locked, whatever the
    planner believes about the table. Joined by id, the planner went by its statistics: with a
    table last analysed while empty and 10,000 tasks in it since, it scanned every task as the
    outer side of a nested loop over the chosen ids (5 million comparisons, 0.5-0.9 s per claim
    of 500, measured). A tuple id can only be fetched by a TID scan, whose cost does not grow with
    the table, or found by a sequential scan; the array of an ARRAY(subquery) counts as a few
    elements, so the TID scan wins at any table size. The ids stay valid: the rows are locked
    (FOR UPDATE) by the same statement, and a row someone else changed would be followed to
    its newest version and re-checked by PostgreSQL itself (read committed).
    """

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012 (SQLAlchemy's own type)
        ("table", InternalTraversal.dp_string),
        ("rows", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, table: str, rows: ClauseElement) -> None:
        self.table = table
        self.rows = rows


@compiles(AmongLocked, "postgresql")
def _among_locked(element: AmongLocked, compiler: SQLCompiler, **kw: Any) -> str:
    rows = compiler.process(element.rows, **kw)
    return f"{element.table}.ctid = ANY(ARRAY({rows}))"


class ThroughIndex(Alias):
    """A table read through one named index: SQLite `tasks AS tasks INDEXED BY <index>`,
    plainly the table elsewhere (PostgreSQL has no such clause; see TaskRepository's
    _INDEXES_ONLY). SQLite without statistics prefers any index with an equality on its
    first column, e.g. the status index over a partial index made for the query; INDEXED BY
    leaves it no choice, and fails the statement loudly if the index cannot serve it."""

    inherit_cache = True
    index = ""


@compiles(ThroughIndex, "sqlite")
def _through_index(element: ThroughIndex, compiler: SQLCompiler, **kw: Any) -> str:
    text: str = compiler.visit_alias(element, **kw)  # type: ignore[no-untyped-call]
    return f"{text} INDEXED BY {element.index}" if kw.get("asfrom") else text


def through_index(table: Table, index: str) -> ThroughIndex:
    """`table` (under its own name) to be read through `index` (see ThroughIndex)."""
    alias = ThroughIndex._construct(table, name=table.name)
    alias.index = index
    return alias


def lock_skip_locked(stmt: Select[tuple[object]], dialect: str) -> Select[tuple[object]]:
    """PostgreSQL: rows another transaction holds are skipped, so claimers never block or collide.

    SQLite has no row locks; its BEGIN IMMEDIATE (see engine.py) already makes the whole
    claim one writer's atomic step.
    """
    if dialect == "postgresql":
        return stmt.with_for_update(skip_locked=True)
    return stmt


def insert_ignoring_conflicts(table: Table, dialect: str) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def insert_or_update(
    table: Table,
    dialect: str,
    values: dict[str, Any],
    *,
    keys: list[str],
    set_: list[str],
    where: Callable[[Any], Any],
) -> Insert:
    """INSERT … ON CONFLICT (keys) DO UPDATE SET set_ = the new values WHERE where(excluded).

    `where` gets the statement's `excluded` row (the values that conflicted); a row it
    rejects is left alone and returns nothing, as with DO NOTHING.
    """
    stmt = (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)).values(
        **values
    )
    return stmt.on_conflict_do_update(
        index_elements=keys,
        set_={name: stmt.excluded[name] for name in set_},
        where=where(stmt.excluded),
    )


async def try_exclusive(session: AsyncSession, key: int) -> bool:
    """Take a transaction-scoped exclusive lock named by `key`, or say it is held elsewhere."""
    if session.get_bind().dialect.name == "postgresql":
        result = await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key})
        return bool(result.scalar_one())
    return True  # BEGIN IMMEDIATE already serialises every SQLite writer


def name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def json_list_holds_all(column: Any, values: Sequence[str], dialect: str) -> ColumnElement[bool]:
    """The JSON list in `column` holds every one of `values` (strings).

    PostgreSQL: JSONB containment (`tags @> '["a","b"]'`), which a GIN index can serve;
    SQLite: one `EXISTS (SELECT 1 FROM json_each(tags) WHERE value = :v)` per value.
    """
    if dialect == "postgresql":
        return type_coerce(column, postgresql.JSONB()).contains(list(values))
    checks = []
    for value in values:
        each = func.json_each(column).table_valued("value")
        checks.append(exists(select(literal(1)).select_from(each).where(each.c.value == value)))
    return and_(*checks)


def epoch_hours(column: Any, dialect: str) -> Any:
    """Whole UTC hours since 1970 of a datetime column (an integer on both databases)."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", column) / 3600), Integer)
    # SQLite stores UTC as naive text; strftime('%s') reads it as UTC, to the whole second
    return cast(func.strftime("%s", column), Integer) // 3600


def millis_between(later: Any, earlier: Any, dialect: str) -> Any:
    """Milliseconds from `earlier` to `later`, rounded to a whole one (NULL if either is)."""
    if dialect == "postgresql":
        return func.round(func.extract("epoch", later - earlier) * 1000)
    return func.round((func.julianday(later) - func.julianday(earlier)) * 86_400_000.0)


def upsert_adding(
    table: Table, dialect: str, source: Select[Any], *, keys: list[str], add: list[str]
) -> Insert:
    """INSERT INTO table SELECT … ON CONFLICT (keys) DO UPDATE SET each of `add` = its value
    plus the new one (a delta added to a counter)."""
    columns = [*keys, *add]
    stmt = (
        postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    ).from_select(columns, source)
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={name: table.c[name] + stmt.excluded[name] for name in add}
    )


async def without_jit(session: AsyncSession) -> None:
    """PostgreSQL: no JIT for the rest of the transaction. The analytics statements carry
    large CASE trees (duration buckets) that JIT spends seconds compiling for no gain."""
    if name(session) == "postgresql":
        await session.execute(text("SET LOCAL jit = off"))


async def one_snapshot(session: AsyncSession) -> None:
    """PostgreSQL: the transaction's statements share one snapshot (REPEATABLE READ), as
    SQLite's read transactions always do; must come before its first statement (if it comes
    later, each statement keeps its own snapshot). No JIT either (without_jit)."""
    if name(session) != "postgresql":
        return
    if not session.in_transaction():
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    await without_jit(session)


def duration_bucket(ms: Any, dialect: str) -> Any:
    """service.domain.analytics.bucket_of in SQL (SQLite: that very function, registered on
    each connection by service.db.engine)."""
    if dialect != "postgresql":
        return func.ops_duration_bucket(ms)
    scale: Any = literal_column(repr(analytics.SCALE))
    nudge: Any = literal_column(repr(analytics.NUDGE))
    log = func.ln(cast(ms, Float))
    bucket = func.least(analytics.BUCKET_COUNT - 1, func.floor(log * scale + nudge) + 1)
    return case((ms < 1, 0), (ms >= 1, cast(bucket, Integer)))  # NULL stays NULL
