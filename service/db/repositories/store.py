"""Queries on the built-in local store and on import bookkeeping (checkpoints, row errors)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any
from uuid import UUID

from pydantic_core import from_json, to_json
from sqlalchemy import (
    ColumnElement,
    Row,
    Text,
    TextClause,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import dialects
from service.db.tables import (
    checkpoints_table as C,
    row_errors_table as RE,
    store_records_table as S,
)


class StoreRepository:
    """Records by (entity, key); each batch is one statement.

    A batch travels as one JSON text parameter, `[[key, data], ...]`, that the database
    unpacks itself (PostgreSQL `json_array_elements`, SQLite `json_each`) in an
    `INSERT … SELECT`. Hand-written SQL rather than `insert().values()` + executemany
    because that costs SQLAlchemy ~25 µs of Python per row (bind processors for the two
    timestamps, the UUID and the JSON column, parameter construction, the stdlib JSON
    encoder) against ~1 µs to encode the whole batch in pydantic-core; the constant
    columns (entity, task, time) go once per batch through their column types' processors,
    so they are stored exactly as SQLAlchemy stores them elsewhere. `data` is stored as the
    compact JSON text of the record (same keys, order and values as before).
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = dialects.name(session)
        self._sql = _POSTGRES if self.dialect == "postgresql" else _SQLITE

    async def existing_keys(self, entity: str, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        params = {"entity": entity, "keys": to_json(list(keys)).decode()}
        return set((await self.session.execute(self._sql.existing, params)).scalars())

    async def insert_new(
        self, entity: str, task_id: UUID, items: Sequence[tuple[str, Any]], now: datetime
    ) -> set[str]:
        """Insert the (key, data) items whose key is free; returns the keys inserted.

        `data` is anything pydantic-core encodes as a JSON object (a dict of Decimal, …).
        """
        if not items:
            return set()
        params = _batch(entity, task_id, items, now)
        return set((await self.session.execute(self._sql.insert_new, params)).scalars())

    async def upsert(
        self, entity: str, task_id: UUID, items: Sequence[tuple[str, Any]], now: datetime
    ) -> None:
        """Insert or replace each (key, data) item's data."""
        if items:
            await self.session.execute(self._sql.upsert, _batch(entity, task_id, items, now))

    async def page_json(
        self,
        entity: str,
        *,
        after: str | None,
        limit: int,
        equals: Equals | None = None,
        key_prefix: str | None = None,
    ) -> JsonPage | None:
        """Records in key order after `after` (keyset paging), as one row: their stored JSON
        texts joined by the database (`string_agg`, `group_concat`), and the page's last key;
        None when there are none. Only records whose fields equal `equals` and whose key starts
        with `key_prefix` (see `_matching`).

        The text, not the JSON column's result processor (the stdlib decoder, ~5 µs a row),
        and one result row per page instead of one per record: no per-row result objects
        (SQLAlchemy's `Row`, the driver's record). The writer parses the whole page with one
        pydantic-core `from_json` call in its thread.
        """
        records = select(S.c.key, cast(S.c.data, Text).label("data")).where(
            *_matching(entity, equals or {}, key_prefix)
        )
        if after is not None:
            records = records.where(S.c.key > after)
        p = records.order_by(S.c.key).limit(limit).subquery("p")
        if self.dialect == "postgresql":
            joined = func.string_agg(p.c.data, aggregate_order_by(literal_column("','"), p.c.key))
            keys: Any = null()  # ORDER BY in the aggregate: the order is guaranteed
        else:
            # SQLite before 3.44 has no ORDER BY in an aggregate: it joins the ordered
            # subquery's rows in their order, which the reader checks against the keys
            joined = func.group_concat(p.c.data, ",")
            keys = func.json_group_array(p.c.key)
        stmt = select(joined.label("records"), keys.label("keys"), func.max(p.c.key))
        row = (await self.session.execute(stmt)).one()
        if row[0] is None:
            return None
        return JsonPage(row[0], row[1], row[2])

    async def refresh_statistics(self) -> None:
        """Refresh the planner's statistics of the store after a large import (PostgreSQL).

        Without them the first export after a million-row import ran at 40 % of the speed
        of the next ones (bench/README.md, bulk round 3) until autovacuum's own ANALYZE came
        round; ANALYZE samples the table and takes a fraction of a second. SQLite's planner
        keeps no statistics unless asked and picks the (entity, key) index without them.
        """
        if self.dialect == "postgresql":
            await self.session.execute(text("ANALYZE store_records"))

    async def count(
        self, entity: str, *, equals: Equals | None = None, key_prefix: str | None = None
    ) -> int:
        """How many records `page_json` pages through with the same selection."""
        stmt = (
            select(func.count()).select_from(S).where(*_matching(entity, equals or {}, key_prefix))
        )
        return int((await self.session.execute(stmt)).scalar_one())


#: Field -> value a record's JSON must hold (a decimal as its text with the column's places).
Equals = Mapping[str, str | int | bool]


def _matching(entity: str, equals: Equals, key_prefix: str | None) -> list[ColumnElement[bool]]:
    conditions = [S.c.entity == entity]
    if key_prefix:
        # not LIKE: SQLite's ignores the case of ASCII letters, and keys are case-sensitive
        conditions.append(func.substr(S.c.key, 1, len(key_prefix)) == key_prefix)
    conditions.extend(_equals(name, value) for name, value in equals.items())
    return conditions


def _equals(name: str, value: str | int | bool) -> ColumnElement[bool]:
    """The record's field equals the value, compared without a cast to the value's type: a
    stored value of another type just does not match, instead of failing the query
    (PostgreSQL refuses CAST('A-1' AS INTEGER)). Whole numbers and true/false compare as
    their JSON text, text and decimals (stored as JSON strings) as text."""
    field = S.c.data[name]
    if isinstance(value, bool):
        # PostgreSQL gives the JSON text true/false; SQLite's json_extract turns them into 1/0
        return cast(field, Text).in_(("true", "1") if value else ("false", "0"))
    if isinstance(value, int):
        return cast(field, Text) == str(value)
    as_text: ColumnElement[str] = field.as_string()
    return as_text == value


class JsonPage:
    """A page of records as the database joined them: parsed when iterated (by the writer,
    in its thread), in key order."""

    __slots__ = ("_keys", "_records", "last_key")

    def __init__(self, records: str, keys: str | None, last_key: str) -> None:
        self._records = records  #: the records' JSON texts joined by ","
        self._keys = keys  #: JSON array of their keys in the same order, if not guaranteed
        self.last_key = last_key  #: where the next page starts

    def __iter__(self) -> Iterator[Any]:
        records = from_json(f"[{self._records}]")
        if self._keys is None:
            return iter(records)
        keys = from_json(self._keys)
        if keys == sorted(keys):  # Python's str order is SQLite's BINARY order of UTF-8
            return iter(records)
        return iter([record for _, record in sorted(zip(keys, records, strict=True), key=_first)])


_first = itemgetter(0)


def _batch(
    entity: str, task_id: UUID, items: Sequence[tuple[str, Any]], now: datetime
) -> dict[str, Any]:
    return {
        "entity": entity,
        "task_id": task_id,
        "now": now,
        "rows": to_json(items if isinstance(items, list) else list(items)).decode(),
    }


@dataclass(frozen=True)
class _Statements:
    existing: TextClause
    insert_new: TextClause
    upsert: TextClause


def _statements(
    *, rows: str, pair: tuple[str, str], keys: str, task: str, now: str, where: str
) -> _Statements:
    """One dialect's batch statements. `rows` unpacks the JSON batch as r(value) and `pair`
    takes key (as text) and data (as JSON) out of one; `keys` unpacks a JSON array of keys as
    one column; `task` and `now` are the typed parameters; `where` is what SQLite's parser
    needs before the upsert clause of an INSERT … SELECT."""
    entity = bindparam("entity", type_=S.c.entity.type)
    typed = (
        entity,
        bindparam("task_id", type_=S.c.source_task_id.type),
        bindparam("now", type_=S.c.created_at.type),
    )
    insert = (
        "INSERT INTO store_records (entity, key, data, source_task_id, created_at, updated_at) "
        f"SELECT :entity, {pair[0]}, {pair[1]}, {task}, {now}, {now} FROM {rows}{where} "
    )
    return _Statements(
        existing=text(
            f"SELECT key FROM store_records WHERE entity = :entity AND key IN ({keys})"
        ).bindparams(entity),
        insert_new=text(insert + "ON CONFLICT DO NOTHING RETURNING key").bindparams(*typed),
        upsert=text(
            insert + "ON CONFLICT (entity, key) DO UPDATE SET data = excluded.data, "
            "updated_at = excluded.updated_at, source_task_id = excluded.source_task_id"
        ).bindparams(*typed),
    )


_POSTGRES = _statements(
    rows="json_array_elements(CAST(:rows AS json)) AS r(value)",
    pair=("r.value ->> 0", "r.value -> 1"),
    keys="SELECT json_array_elements_text(CAST(:keys AS json))",
    task="CAST(:task_id AS uuid)",
    now="CAST(:now AS timestamptz)",
    where="",
)
_SQLITE = _statements(
    rows="json_each(:rows) AS r",
    pair=("json_extract(r.value, '$[0]')", "json_extract(r.value, '$[1]')"),
    keys="SELECT value FROM json_each(:keys)",
    task=":task_id",
    now=":now",
    where=" WHERE true",
)


class ImportLedger:
    """Checkpoints and row errors of imports."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def checkpoint(self, task_id: UUID) -> Row[Any] | None:
        return (await self.session.execute(select(C).where(C.c.task_id == task_id))).one_or_none()

    async def save_checkpoint(self, task_id: UUID, values: dict[str, Any], now: datetime) -> None:
        updated = await self.session.execute(
            update(C).where(C.c.task_id == task_id).values(**values, updated_at=now)
        )
        if updated.rowcount == 0:  # type: ignore[attr-defined]
            await self.session.execute(C.insert().values(task_id=task_id, **values, updated_at=now))

    async def add_errors(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(RE.insert(), rows)

    async def errors(self, task_id: UUID, *, after_id: int, limit: int) -> Sequence[Row[Any]]:
        stmt = (
            select(RE)
            .where(RE.c.task_id == task_id, RE.c.id > after_id)
            .order_by(RE.c.id)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).all()

    async def reset(self, task_id: UUID) -> None:
        await self.session.execute(C.delete().where(C.c.task_id == task_id))
        await self.session.execute(RE.delete().where(RE.c.task_id == task_id))
