"""`Schema`: everything an import or export needs to know about one entity type."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar, cast

from pydantic import TypeAdapter, ValidationError

from service.bulk.columns import Column
from service.bulk.errors import MissingColumns
from service.bulk.rows import RowError
from service.bulk.schemas import messages
from service.bulk.schemas.fields import Record
from service.domain.errors import InvalidInput

M = TypeVar("M", bound=Record)

NO_ERRORS: tuple[RowError, ...] = ()


class Schema(Generic[M]):
    """An entity's model, key, export columns and row validation.

    Unknown columns are ignored, not errors: files exported by other systems carry extra
    columns (ids, timestamps) and rejecting them would make round trips painful. They are
    reported once per file by `check_header`, so a misspelt column does not go unnoticed.
    """

    def __init__(
        self, entity: str, model: type[M], *, key: tuple[str, ...], columns: tuple[Column, ...]
    ) -> None:
        self.entity = entity
        self.model = model
        self.key = key
        self.columns = columns
        self.required = tuple(name for name, f in model.model_fields.items() if f.is_required())
        #: The raw pydantic validator (raises ValidationError); `validate_row` wraps it.
        self.validator: Callable[[Any], Any] = model.__pydantic_validator__.validate_python
        self._by_name = {column.name: column for column in columns}
        self._batch = TypeAdapter(list[model])  # type: ignore[valid-type]
        self._key = operator.attrgetter(*key)
        #: `key_text` as one C call where the key is a single text field (every entity's but
        #: inventory's): the import runs it for every row.
        self.key_texter: Callable[[Any], str] = (
            cast(Callable[[Any], str], self._key)
            if len(key) == 1 and model.model_fields[key[0]].annotation is str
            else self.key_text
        )

    def validate_row(
        self, raw: Mapping[str, Any], row: int = 0
    ) -> tuple[M | None, tuple[RowError, ...]]:
        """The record of one row, or None and why not (one RowError per problem).

        `raw` is a reader's row: cells keyed by column, empty cells left out, so an empty
        optional cell is None and an empty required one is "is required".
        """
        try:
            return cast(M, self.validator(raw)), NO_ERRORS
        except ValidationError as error:
            return None, self.explain(error, raw, row)

    def explain(
        self, error: ValidationError, raw: Mapping[str, Any], row: int
    ) -> tuple[RowError, ...]:
        """The report lines of a row the validator refused."""
        return messages.explain(error, raw, row)

    def check_header(self, names: Iterable[str] | None) -> tuple[str, ...]:
        """Columns of a file this schema does not know (ignored); raises if required ones lack.

        JSON Lines has no header (None): there a missing field is an error of each row.
        """
        if names is None:
            return ()
        header = tuple(names)
        missing = [name for name in self.required if name not in header]
        if missing:
            what = "column" if len(missing) == 1 else "columns"
            raise MissingColumns(
                f"the file has no {what} {', '.join(missing)}; {self.entity} imports need "
                f"{', '.join(self.required)}"
            )
        return tuple(name for name in header if name not in self._by_name)

    def key_of(self, record: M) -> tuple[Any, ...]:
        """The values that identify the record (for duplicates and upserts)."""
        return tuple(getattr(record, name) for name in self.key)

    def key_text(self, record: M) -> str:
        """The key as one string, its values joined by "|" (what duplicates are found by)."""
        values = self._key(record)
        return str(values) if len(self.key) == 1 else "|".join(map(str, values))

    def jsonable(self, records: Sequence[M]) -> list[dict[str, Any]]:
        """Records as JSON-ready dicts for a sink, in one pydantic-core call for the batch.

        The same as `record.model_dump(mode="json")` for each, at a fraction of the cost.
        """
        return cast(list[dict[str, Any]], self._batch.dump_python(list(records), mode="json"))

    def dump_json(self, records: Sequence[M]) -> bytes:
        """Records as one JSON array, ready to be a sink's request body."""
        return self._batch.dump_json(list(records))

    def to_row(self, record: M) -> dict[str, Any]:
        """The record as a writer's row (writers render nested records as JSON objects)."""
        return record.__dict__.copy()  # exactly the fields in pydantic v2; dict() is 20x slower

    def select(self, names: Sequence[str] | None) -> tuple[Column, ...]:
        """The export columns asked for, in the order asked; all of them for None."""
        if not names:
            return self.columns
        unknown = [name for name in names if name not in self._by_name]
        if unknown:
            raise InvalidInput(
                f"unknown {self.entity} columns: {', '.join(unknown)}; "
                f"choose from {', '.join(self._by_name)}",
                field="columns",
            )
        return tuple(self._by_name[name] for name in dict.fromkeys(names))
