"""Orders: one row per order number, its lines as a JSON array; totals must add up."""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Annotated, Self

from pydantic import BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from service.bulk.columns import Column, Kind
from service.bulk.schemas import fields
from service.bulk.schemas.base import Schema
from service.bulk.schemas.messages import ROW_RULE

MAX_LINES = 500


class OrderStatus(enum.StrEnum):
    """Where an order is in its life (input is case-insensitive)."""

    PENDING = "pending"  #: placed, not paid yet
    PAID = "paid"  #: payment captured
    FULFILLED = "fulfilled"  #: packed and handed to the carrier
    DELIVERED = "delivered"  #: arrived
    CANCELLED = "cancelled"  #: stopped before fulfilment
    REFUNDED = "refunded"  #: money returned


class OrderLine(fields.Record):
    """One ordered SKU."""

    sku: fields.Code
    quantity: Annotated[int, Field(gt=0, le=1_000_000)]
    unit_price: fields.Money


class Order(fields.Record):
    """An order; subtotal is the sum of its lines, total is subtotal + tax + shipping."""

    order_number: fields.OrderNumber
    customer_email: fields.Email
    status: Annotated[OrderStatus, BeforeValidator(fields.lower_text)]
    currency: fields.Currency
    lines: Annotated[
        list[OrderLine],
        BeforeValidator(fields.parse_json),
        Field(min_length=1, max_length=MAX_LINES),
    ]
    subtotal: fields.Money
    tax: fields.Money = Decimal("0.00")
    shipping: fields.Money = Decimal("0.00")
    total: fields.Money
    ordered_at: fields.UtcDatetime

    @model_validator(mode="after")
    def _totals_add_up(self) -> Self:
        lines = sum((line.quantity * line.unit_price for line in self.lines), Decimal(0))
        if lines != self.subtotal:
            raise PydanticCustomError(
                ROW_RULE,
                "subtotal {subtotal} is not the sum of the lines ({lines})",
                {"column": "subtotal", "subtotal": str(self.subtotal), "lines": str(lines)},
            )
        expected = self.subtotal + self.tax + self.shipping
        if expected != self.total:
            raise PydanticCustomError(
                ROW_RULE,
                "total {total} is not subtotal + tax + shipping ({expected})",
                {"column": "total", "total": str(self.total), "expected": str(expected)},
            )
        return self


SCHEMA = Schema(
    "order",
    Order,
    key=("order_number",),
    columns=(
        Column("order_number"),
        Column("customer_email"),
        Column("status"),
        Column("currency"),
        Column("lines", Kind.JSON),
        Column("subtotal", Kind.DECIMAL),
        Column("tax", Kind.DECIMAL),
        Column("shipping", Kind.DECIMAL),
        Column("total", Kind.DECIMAL),
        Column("ordered_at", Kind.DATETIME),
    ),
)
