"""Products: one row per SKU."""

from __future__ import annotations

from pydantic import Field

from service.bulk.columns import Column, Kind
from service.bulk.schemas import fields
from service.bulk.schemas.base import Schema


class Product(fields.Record):
    """A catalogue product."""

    sku: fields.Code
    name: fields.Name
    description: fields.LongText | None = None
    price: fields.Money
    currency: fields.Currency
    stock: fields.Count = 0
    category: fields.ShortText | None = None
    #: Free-form JSON object (colour, size, …); a JSON text column in CSV and XLSX.
    attributes: fields.JsonObject = Field(default_factory=dict)


SCHEMA = Schema(
    "product",
    Product,
    key=("sku",),
    columns=(
        Column("sku"),
        Column("name"),
        Column("description"),
        Column("price", Kind.DECIMAL),
        Column("currency"),
        Column("stock", Kind.INTEGER),
        Column("category"),
        Column("attributes", Kind.JSON),
    ),
)
