"""JSON Lines: one object per line; a bad line is a row error, not a failed import."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, BinaryIO

from pydantic_core import from_json

from service.bulk import cells
from service.bulk.columns import Column, Kind
from service.bulk.formats.base import RowReader, RowWriter
from service.bulk.limits import ReadLimits
from service.bulk.rows import RowError, reported


class JsonlReader(RowReader["str | None"]):
    """Objects of a JSON Lines file; keys whose value is "" are left out like empty CSV cells."""

    format = "jsonl"

    def __init__(self, body: BinaryIO, *, compressed: bool, limits: ReadLimits) -> None:
        super().__init__(compressed=compressed, limits=limits)
        self._text = io.TextIOWrapper(body, encoding="utf-8-sig", newline="")

    def close(self) -> None:
        self._text.close()  # the chain ends in a wrapper that leaves the caller's stream open

    def _records(self) -> Iterator[str | None]:
        readline = self._text.readline
        limit = self.limits.max_line_chars
        while line := readline(limit + 1):
            if len(line) <= limit or line.endswith("\n"):
                yield line
                continue
            while (rest := readline(limit + 1)) and not rest.endswith("\n"):
                pass
            yield None

    def _row(self, number: int, line: str | None) -> dict[str, Any] | RowError | None:
        if line is None:
            return RowError(
                number, None, None, f"line is longer than {self.limits.max_line_chars} characters"
            )
        try:
            value = from_json(line, allow_inf_nan=False)
        except ValueError as error:
            if line.isspace():
                return None
            return RowError(
                number, None, reported(line.strip()), f"line is not valid JSON: {error}"
            )
        if type(value) is not dict:
            return RowError(number, None, reported(line.strip()), "line must be a JSON object")
        if '""' in line:
            value = {key: item for key, item in value.items() if item != ""}
        return self._check_size(number, value, len(line))

    def _check_size(
        self, number: int, row: dict[str, Any], chars: int
    ) -> dict[str, Any] | RowError:
        limits = self.limits
        if len(row) > limits.max_columns:
            message = f"line has {len(row)} keys; the limit is {limits.max_columns}"
            return RowError(number, None, None, message)
        if chars > limits.max_cell_chars:
            for name, value in row.items():
                if isinstance(value, str) and len(value) > limits.max_cell_chars:
                    message = f"{name} is longer than {limits.max_cell_chars} characters"
                    return RowError(number, name, reported(value), message)
        return row


class JsonlWriter(RowWriter):
    """One compact JSON object per line, keys in column order; decimals as strings ("12.50")."""

    format = "jsonl"

    def __init__(self, stream: BinaryIO, columns: Sequence[Column], *, compress: bool) -> None:
        super().__init__(stream, columns, compress=compress)
        self._text = io.TextIOWrapper(self.target, encoding="utf-8", newline="")
        self._names = [column.name for column in self.columns]
        self._decimals = [
            (column.name, f".{column.scale}f")
            for column in self.columns
            if column.kind is Kind.DECIMAL
        ]

    def write_row(self, row: Mapping[str, Any]) -> None:
        get = row.get
        line = {name: get(name) for name in self._names}
        for name, spec in self._decimals:
            value = line[name]
            if isinstance(value, Decimal | float | int) and not isinstance(value, bool):
                line[name] = format(value, spec)
        self._text.write(cells.JSON.encode(line))
        self._text.write("\n")
        self.rows_written += 1

    def _finish(self) -> None:
        self._text.flush()
        self._text.detach()
