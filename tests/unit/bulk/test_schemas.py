"""Entity schemas: every validation rule with a failing row and its message."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from service.bulk.errors import MissingColumns
from service.bulk.rows import RowError
from service.bulk.schemas import SCHEMAS
from service.bulk.schemas.customers import Customer
from service.bulk.schemas.orders import Order, OrderStatus
from service.bulk.schemas.products import Product
from service.domain.errors import InvalidInput
from tests.unit.bulk.samples import SAMPLES

PRODUCT = {"sku": "A-1", "name": "Shoe", "price": "10", "currency": "EUR"}
CUSTOMER = {"email": "ada@example.com"}
ADDRESS = '{"line1": "1 Main St", "city": "Berlin", "country": "DE"}'
ORDER = {
    "order_number": "1001",
    "customer_email": "ada@example.com",
    "status": "paid",
    "currency": "EUR",
    "lines": '[{"sku": "A", "quantity": 2, "unit_price": "5.00"}]',
    "subtotal": "10.00",
    "tax": "1.90",
    "shipping": "0",
    "total": "11.90",
    "ordered_at": "2024-05-01T10:00:00Z",
}
UNPRICED_SECOND_LINE = (
    '[{"sku": "A", "quantity": 1, "unit_price": "1"}, {"sku": "B", "quantity": 1}]'
)
INVENTORY = {"sku": "A-1", "warehouse": "BER", "quantity": "5"}
BASE = {"product": PRODUCT, "customer": CUSTOMER, "order": ORDER, "inventory": INVENTORY}


def errors(entity: str, **changes: Any) -> list[tuple[str | None, str | None, str]]:
    raw = {key: value for key, value in (BASE[entity] | changes).items() if value is not None}
    record, problems = SCHEMAS[entity].validate_row(raw, 7)
    assert record is None
    assert {problem.row for problem in problems} == {7}
    return [(problem.column, problem.value, problem.message) for problem in problems]


def valid(entity: str, **changes: Any) -> Any:
    raw = {key: value for key, value in (BASE[entity] | changes).items() if value is not None}
    record, problems = SCHEMAS[entity].validate_row(raw)
    assert problems == ()
    return record


class TestSamples:
    @pytest.mark.parametrize("entity", sorted(SAMPLES))
    def test_every_sample_row_is_valid(self, entity: str) -> None:
        for raw in SAMPLES[entity]:
            record, problems = SCHEMAS[entity].validate_row(raw)
            assert problems == (), raw
            assert record is not None


class TestProducts:
    def test_normalises_text_money_and_defaults(self) -> None:
        product = valid("product", sku=" A-1 ", currency="eur", price="12.5", unknown="x")
        assert isinstance(product, Product)
        assert (product.sku, product.currency, product.price) == ("A-1", "EUR", Decimal("12.50"))
        assert (product.description, product.category, product.stock, product.attributes) == (
            None,
            None,
            0,
            {},
        )

    @pytest.mark.parametrize(
        ("changes", "expected"),
        [
            ({"sku": None}, ("sku", None, "sku is required")),
            (
                {"sku": "-A"},
                (
                    "sku",
                    "-A",
                    "sku may hold only letters, digits and . _ / - and must start with a letter "
                    "or digit",
                ),
            ),
            ({"sku": "A" * 65}, ("sku", "A" * 65, "sku must be at most 64 characters")),
            ({"name": None}, ("name", None, "name is required")),
            ({"name": "   "}, ("name", "   ", "name must not be empty")),
            ({"name": "n" * 256}, ("name", "n" * 199 + "…", "name must be at most 255 characters")),
            (
                {"description": "d" * 10_001},
                ("description", "d" * 199 + "…", "description must be at most 10000 characters"),
            ),
            ({"price": None}, ("price", None, "price is required")),
            ({"price": "ten"}, ("price", "ten", "price must be an amount like 12.50")),
            ({"price": "NaN"}, ("price", "NaN", "price must be an amount like 12.50")),
            ({"price": True}, ("price", "True", "price must be an amount like 12.50")),
            ({"price": "-0.01"}, ("price", "-0.01", "price must not be negative")),
            ({"price": "1.999"}, ("price", "1.999", "price must have at most 2 decimal places")),
            (
                {"price": "1000000000000"},
                ("price", "1000000000000", "price must be less than 1000000000000"),
            ),
            ({"currency": None}, ("currency", None, "currency is required")),
            (
                {"currency": "EURO"},
                (
                    "currency",
                    "EURO",
                    "currency must be an ISO 4217 currency code such as EUR or USD",
                ),
            ),
            (
                {"currency": "XYZ"},
                (
                    "currency",
                    "XYZ",
                    "currency must be an ISO 4217 currency code such as EUR or USD",
                ),
            ),
            ({"stock": "-1"}, ("stock", "-1", "stock must not be negative")),
            ({"stock": "2.5"}, ("stock", "2.5", "stock must be a whole number")),
            (
                {"category": "c" * 256},
                ("category", "c" * 199 + "…", "category must be at most 255 characters"),
            ),
            (
                {"attributes": "{oops"},
                (
                    "attributes",
                    "{oops",
                    "attributes is not valid JSON (key must be a string at line 1 column 2)",
                ),
            ),
            ({"attributes": "[1]"}, ("attributes", "[1]", "attributes must be a JSON object")),
        ],
    )
    def test_rules(self, changes: dict[str, Any], expected: tuple[str, str | None, str]) -> None:
        assert errors("product", **changes) == [expected]

    def test_every_problem_of_a_row_is_reported(self) -> None:
        found = errors("product", sku=None, price="-1", stock="x")
        assert [column for column, _, _ in found] == ["sku", "price", "stock"]

    def test_numbers_from_a_spreadsheet_are_accepted_where_text_is_expected(self) -> None:
        product = valid("product", sku=12345, name=3.5, price=9.99, stock=4.0)
        assert (product.sku, product.name, product.price, product.stock) == (
            "12345",
            "3.5",
            Decimal("9.99"),
            4,
        )


class TestCustomers:
    def test_normalises_email_and_phone(self) -> None:
        customer = valid(
            "customer",
            email="  Ada@Example.COM ",
            phone="0049 (30) 123-4567",
            accepts_marketing="true",
            addresses=f"[{ADDRESS}]",
        )
        assert isinstance(customer, Customer)
        assert (customer.email, customer.phone, customer.accepts_marketing) == (
            "ada@example.com",
            "+49301234567",
            True,
        )
        assert customer.addresses[0].kind == "shipping"
        assert customer.addresses[0].country == "DE"

    @pytest.mark.parametrize(
        ("changes", "expected"),
        [
            ({"email": None}, ("email", None, "email is required")),
            (
                {"email": "ada@"},
                ("email", "ada@", "email must be an email address like name@example.com"),
            ),
            (
                {"email": "a b@example.com"},
                (
                    "email",
                    "a b@example.com",
                    "email must be an email address like name@example.com",
                ),
            ),
            (
                {"email": "chloé@example.com"},
                (
                    "email",
                    "chloé@example.com",
                    "email must be an email address like name@example.com",
                ),
            ),
            (
                {"email": "ada..x@example.com"},
                (
                    "email",
                    "ada..x@example.com",
                    "email must be an email address like name@example.com",
                ),
            ),
            (
                {"email": "a@" + "b" * 250 + ".com"},
                ("email", "a@" + "b" * 197 + "…", "email must be at most 254 characters"),
            ),
            (
                {"phone": "030 1234567"},
                (
                    "phone",
                    "030 1234567",
                    "phone must be an international number: + and the country code, 7 to 15 digits",
                ),
            ),
            (
                {"phone": "+49 123"},
                (
                    "phone",
                    "+49 123",
                    "phone must be an international number: + and the country code, 7 to 15 digits",
                ),
            ),
            (
                {"phone": "+1234567890123456"},
                (
                    "phone",
                    "+1234567890123456",
                    "phone must be an international number: + and the country code, 7 to 15 digits",
                ),
            ),
            (
                {"accepts_marketing": "maybe"},
                ("accepts_marketing", "maybe", "accepts_marketing must be true or false"),
            ),
            ({"addresses": "{}"}, ("addresses", "{}", "addresses must be a JSON array")),
            (
                {"addresses": '[{"line1": "x", "country": "DE"}]'},
                ("addresses", None, "addresses[1].city is required"),
            ),
            (
                {"addresses": '[{"line1": "x", "city": "y", "country": "DEU"}]'},
                (
                    "addresses",
                    "DEU",
                    "addresses[1].country must be a two-letter ISO 3166 country code such as DE "
                    "or US",
                ),
            ),
            (
                {"addresses": '[{"line1": "x", "city": "y", "country": "DE", "kind": "home"}]'},
                ("addresses", "home", "addresses[1].kind must be one of 'shipping' or 'billing'"),
            ),
            (
                {"addresses": "[" + ",".join([ADDRESS] * 21) + "]"},
                ("addresses", None, "addresses must have at most 20 items"),
            ),
        ],
    )
    def test_rules(self, changes: dict[str, Any], expected: tuple[str, str | None, str]) -> None:
        found = errors("customer", **changes)
        if expected[2].endswith("at most 20 items"):
            assert [(c, m) for c, _, m in found] == [(expected[0], expected[2])]
        else:
            assert found == [expected]


class TestOrders:
    def test_normalises_status_currency_and_time(self) -> None:
        order = valid(
            "order", status="PAID", currency="eur", ordered_at="2024-05-01T12:00:00+02:00"
        )
        assert isinstance(order, Order)
        assert order.status is OrderStatus.PAID
        assert order.currency == "EUR"
        assert order.ordered_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
        assert order.ordered_at.tzinfo is UTC
        assert order.lines[0].unit_price == Decimal("5.00")

    @pytest.mark.parametrize(
        ("changes", "expected"),
        [
            (
                {"order_number": "10 01"},
                (
                    "order_number",
                    "10 01",
                    "order_number may hold only letters, digits and . _ / - # and no spaces",
                ),
            ),
            (
                {"customer_email": "nobody"},
                (
                    "customer_email",
                    "nobody",
                    "customer_email must be an email address like name@example.com",
                ),
            ),
            (
                {"status": "lost"},
                (
                    "status",
                    "lost",
                    "status must be one of 'pending', 'paid', 'fulfilled', 'delivered', "
                    "'cancelled' or 'refunded'",
                ),
            ),
            ({"lines": None}, ("lines", None, "lines is required")),
            ({"lines": "[]"}, ("lines", "[]", "lines must have at least one item")),
            ({"lines": '{"sku": "A"}'}, ("lines", '{"sku": "A"}', "lines must be a JSON array")),
            (
                {"lines": '[{"sku": "A", "quantity": 0, "unit_price": "1"}]'},
                ("lines", "0", "lines[1].quantity must be greater than 0"),
            ),
            (
                {"lines": UNPRICED_SECOND_LINE},
                ("lines", None, "lines[2].unit_price is required"),
            ),
            (
                {"lines": '[{"sku": "A", "quantity": 1, "unit_price": "0.001"}]'},
                ("lines", "0.001", "lines[1].unit_price must have at most 2 decimal places"),
            ),
            ({"tax": "-1"}, ("tax", "-1", "tax must not be negative")),
            (
                {"subtotal": "9.99", "total": "11.89"},
                ("subtotal", "9.99", "subtotal 9.99 is not the sum of the lines (10.00)"),
            ),
            (
                {"total": "12.00"},
                ("total", "12.00", "total 12.00 is not subtotal + tax + shipping (11.90)"),
            ),
            (
                {"ordered_at": "2024-05-01T10:00:00"},
                (
                    "ordered_at",
                    "2024-05-01T10:00:00",
                    "ordered_at must include a time zone, like 2024-05-01T10:00:00Z or +02:00",
                ),
            ),
            (
                {"ordered_at": "yesterday"},
                (
                    "ordered_at",
                    "yesterday",
                    "ordered_at must be a date and time like 2024-05-01T10:00:00Z",
                ),
            ),
        ],
    )
    def test_rules(self, changes: dict[str, Any], expected: tuple[str, str | None, str]) -> None:
        assert errors("order", **changes) == [expected]

    def test_totals_add_up_to_the_cent(self) -> None:
        lines = '[{"sku": "A", "quantity": 3, "unit_price": "0.10"}]'
        order = valid("order", lines=lines, subtotal="0.3", tax="0.05", total="0.35")
        assert order.total == Decimal("0.35")


class TestInventory:
    def test_an_adjustment_keeps_its_sign(self) -> None:
        level = valid("inventory", adjustment="-5", reason="damaged")
        assert (level.quantity, level.adjustment, level.reason) == (5, -5, "damaged")

    @pytest.mark.parametrize(
        ("changes", "expected"),
        [
            ({"warehouse": None}, ("warehouse", None, "warehouse is required")),
            ({"quantity": "-1"}, ("quantity", "-1", "quantity must not be negative")),
            ({"quantity": "many"}, ("quantity", "many", "quantity must be a whole number")),
            (
                {"adjustment": "1.5", "reason": "x"},
                ("adjustment", "1.5", "adjustment must be a whole number"),
            ),
            (
                {"adjustment": "3"},
                ("reason", None, "reason is required when there is an adjustment"),
            ),
        ],
    )
    def test_rules(self, changes: dict[str, Any], expected: tuple[str, str | None, str]) -> None:
        assert errors("inventory", **changes) == [expected]


class TestSchema:
    def test_the_registry_holds_the_four_entities(self) -> None:
        assert sorted(SCHEMAS) == ["customer", "inventory", "order", "product"]

    @pytest.mark.parametrize("entity", sorted(SCHEMAS))
    def test_export_columns_are_the_model_fields_in_order(self, entity: str) -> None:
        schema = SCHEMAS[entity]
        assert [column.name for column in schema.columns] == list(schema.model.model_fields)
        assert set(schema.key) <= set(schema.required)

    def test_keys(self) -> None:
        assert SCHEMAS["product"].key_of(valid("product")) == ("A-1",)
        assert SCHEMAS["inventory"].key_of(valid("inventory")) == ("A-1", "BER")
        assert SCHEMAS["customer"].key_of(valid("customer", email="X@Y.de")) == ("x@y.de",)

    @pytest.mark.parametrize("entity", sorted(SCHEMAS))
    def test_the_quick_key_text_is_key_text(self, entity: str) -> None:
        record = valid(entity)
        schema = SCHEMAS[entity]
        assert schema.key_texter(record) == schema.key_text(record)
        assert type(schema.key_texter(record)) is str

    def test_check_header_names_the_missing_columns(self) -> None:
        message = "the file has no columns price, currency; product imports need sku, name"
        with pytest.raises(MissingColumns, match=message):
            SCHEMAS["product"].check_header(["sku", "name"])
        with pytest.raises(MissingColumns, match="no column quantity; inventory imports need"):
            SCHEMAS["inventory"].check_header(iter(["sku", "warehouse"]))

    def test_check_header_returns_unknown_columns(self) -> None:
        names = ["sku", "name", "price", "currency", "id", "Stock"]
        assert SCHEMAS["product"].check_header(names) == ("id", "Stock")
        assert SCHEMAS["product"].check_header(None) == ()

    def test_select_keeps_the_asked_order(self) -> None:
        selected = SCHEMAS["product"].select(["price", "sku", "price"])
        assert [column.name for column in selected] == ["price", "sku"]
        assert SCHEMAS["product"].select(None) == SCHEMAS["product"].columns

    def test_select_refuses_unknown_columns(self) -> None:
        with pytest.raises(InvalidInput, match="unknown product columns: colour"):
            SCHEMAS["product"].select(["sku", "colour"])

    def test_to_row_holds_every_column(self) -> None:
        row = SCHEMAS["order"].to_row(valid("order"))
        assert list(row) == [column.name for column in SCHEMAS["order"].columns]
        assert row["subtotal"] == Decimal("10.00")

    def test_a_long_value_is_cut_in_the_report(self) -> None:
        _, problems = SCHEMAS["product"].validate_row(PRODUCT | {"stock": "9" * 500 + "x"})
        assert problems[0].value is not None
        assert len(problems[0].value) == 200
        assert problems[0].value.endswith("…")

    def test_a_reader_error_row_is_a_value_object(self) -> None:
        problem = RowError(3, "sku", "x", "sku is required")
        assert problem.as_row() == {
            "row": 3,
            "column": "sku",
            "value": "x",
            "message": "sku is required",
        }
