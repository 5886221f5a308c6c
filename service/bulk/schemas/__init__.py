"""One validation schema per entity type, and the registry of them."""

from __future__ import annotations

from typing import Any

from service.bulk.schemas import customers, inventory, orders, products
from service.bulk.schemas.base import Schema

#: Keyed by a task's entityType.
SCHEMAS: dict[str, Schema[Any]] = {
    schema.entity: schema
    for schema in (products.SCHEMA, customers.SCHEMA, orders.SCHEMA, inventory.SCHEMA)
}
