"""Customers: one row per email address."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from service.bulk.columns import Column, Kind
from service.bulk.schemas import fields
from service.bulk.schemas.base import Schema

MAX_ADDRESSES = 20


class Address(fields.Record):
    """A postal address of a customer."""

    kind: Annotated[Literal["shipping", "billing"], BeforeValidator(fields.lower_text)] = "shipping"
    line1: fields.Name
    line2: fields.ShortText | None = None
    city: fields.Name
    region: fields.ShortText | None = None
    postal_code: Annotated[str, Field(max_length=20)] | None = None
    country: fields.Country


class Customer(fields.Record):
    """A shop customer; email is lower-cased, phone normalised to +<country><number>."""

    email: fields.Email
    first_name: fields.ShortText | None = None
    last_name: fields.ShortText | None = None
    phone: fields.Phone | None = None
    accepts_marketing: bool = False
    #: A JSON array of addresses in CSV and XLSX.
    addresses: Annotated[
        list[Address], BeforeValidator(fields.parse_json), Field(max_length=MAX_ADDRESSES)
    ] = Field(default_factory=list)


SCHEMA = Schema(
    "customer",
    Customer,
    key=("email",),
    columns=(
        Column("email"),
        Column("first_name"),
        Column("last_name"),
        Column("phone"),
        Column("accepts_marketing", Kind.BOOLEAN),
        Column("addresses", Kind.JSON),
    ),
)
