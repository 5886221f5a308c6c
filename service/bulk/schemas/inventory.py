"""Inventory: stock of a SKU in a warehouse, with an optional audited adjustment."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from service.bulk.columns import Column, Kind
from service.bulk.schemas import fields
from service.bulk.schemas.base import Schema
from service.bulk.schemas.messages import ROW_RULE

MAX_ADJUSTMENT = 1_000_000_000


class InventoryLevel(fields.Record):
    """Quantity on hand after the row applies; `adjustment` is the signed change, with a reason."""

    sku: fields.Code
    warehouse: fields.Code
    quantity: fields.Count
    adjustment: Annotated[int, Field(ge=-MAX_ADJUSTMENT, le=MAX_ADJUSTMENT)] | None = None
    reason: fields.ShortText | None = None

    @model_validator(mode="after")
    def _adjustment_has_reason(self) -> Self:
        if self.adjustment is not None and not self.reason:
            raise PydanticCustomError(
                ROW_RULE, "reason is required when there is an adjustment", {"column": "reason"}
            )
        return self


SCHEMA = Schema(
    "inventory",
    InventoryLevel,
    key=("sku", "warehouse"),
    columns=(
        Column("sku"),
        Column("warehouse"),
        Column("quantity", Kind.INTEGER),
        Column("adjustment", Kind.INTEGER),
        Column("reason"),
    ),
)
