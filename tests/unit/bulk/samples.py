"""Valid raw rows per entity, with the awkward values real files carry."""

from __future__ import annotations

import io
from typing import Any

import openpyxl

PRODUCTS: list[dict[str, Any]] = [
    {
        "sku": "SKU-001",
        "name": "Trail shoe «Ü»",
        "description": 'Grippy sole, "waterproof",\nline two',
        "price": "89.9",
        "currency": "eur",
        "stock": "12",
        "category": "shoes",
        "attributes": '{"color": "red", "size": 42, "tags": ["a", "b"], "weight": 0.35}',
    },
    {
        "sku": "SKU-002",
        "name": '=HYPERLINK("http://evil")',
        "price": "0",
        "currency": "USD",
        "description": "-starts with a dash",
        "category": "@risk",
    },
    {"sku": "sku.3/b", "name": "'quoted already", "price": "1e2", "currency": "GBP", "stock": "0"},
    {"sku": "SKU-004", "name": "\ttabbed", "price": "12.30", "currency": "JPY", "attributes": "{}"},
]

CUSTOMERS: list[dict[str, Any]] = [
    {
        "email": " Ada.Lovelace@Example.COM ",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "0044 (20) 7946-0958",
        "accepts_marketing": "yes",
        "addresses": (
            '[{"kind": "Billing", "line1": "12 St James\'s Sq", "city": "London",'
            ' "postal_code": "SW1Y 4JH", "country": "gb"}]'
        ),
    },
    {"email": "bob+shop@example.org", "phone": "+1 415 555 2671", "last_name": "-Bob"},
    {"email": "chloe@xn--bcher-kva.example", "first_name": "+Chloé"},
]

ORDERS: list[dict[str, Any]] = [
    {
        "order_number": "#1001",
        "customer_email": "ADA@example.com",
        "status": "Paid",
        "currency": "EUR",
        "lines": (
            '[{"sku": "SKU-001", "quantity": 2, "unit_price": "89.90"},'
            ' {"sku": "SKU-002", "quantity": 1, "unit_price": 0.1}]'
        ),
        "subtotal": "179.90",
        "tax": "34.18",
        "shipping": "4.90",
        "total": "218.98",
        "ordered_at": "2024-05-01T10:00:00+02:00",
    },
    {
        "order_number": "A-2",
        "customer_email": "bob@example.org",
        "status": "cancelled",
        "currency": "usd",
        "lines": '[{"sku": "X", "quantity": 3, "unit_price": "1.5"}]',
        "subtotal": "4.5",
        "total": "4.50",
        "ordered_at": "2024-12-31T23:59:59.250Z",
    },
]

INVENTORY: list[dict[str, Any]] = [
    {
        "sku": "SKU-001",
        "warehouse": "BER-1",
        "quantity": "40",
        "adjustment": "-5",
        "reason": "damaged",
    },
    {"sku": "SKU-001", "warehouse": "LON", "quantity": "0"},
    {
        "sku": "SKU-002",
        "warehouse": "BER-1",
        "quantity": "7",
        "adjustment": "+3",
        "reason": "=recount",
    },
]

SAMPLES = {"product": PRODUCTS, "customer": CUSTOMERS, "order": ORDERS, "inventory": INVENTORY}


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    """A workbook whose first sheet holds `rows` (the first one being the header)."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
