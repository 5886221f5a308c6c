"""Export params against the entity: filter values as the store holds them, or refused."""

from __future__ import annotations

from typing import Any

import pytest

from service.bulk import params as bulk_params
from service.bulk.schemas import SCHEMAS
from service.domain.errors import InvalidInput, PermanentFailure


def price_filter(value: Any) -> str | int | bool:
    (only,) = bulk_params.check_export("product", {"filters": {"price": value}}).filters
    return only.value


class TestDecimalFilters:
    @pytest.mark.parametrize(
        ("given", "stored"),
        [
            ("12.50", "12.50"),
            ("12.5", "12.50"),
            (12.5, "12.50"),
            (12, "12.00"),
            (" 7 ", "7.00"),
            ("1e2", "100.00"),
            ("-0", "0.00"),
            (0.1, "0.10"),  # the float's shortest text, not its binary expansion
        ],
    )
    def test_an_amount_matches_however_it_is_written(self, given: Any, stored: str) -> None:
        assert price_filter(given) == stored

    @pytest.mark.parametrize("given", ["12.505", "cheap", "", "NaN", "Infinity", "1e40", True])
    def test_a_value_no_price_can_equal_is_refused(self, given: Any) -> None:
        with pytest.raises(InvalidInput) as refused:
            price_filter(given)
        assert refused.value.field == "params.filters.price"
        assert "at most 2 decimal places" in str(refused.value.detail)


class TestParseExport:
    def test_the_handler_fails_for_good_on_params_stored_before_the_checks(self) -> None:
        with pytest.raises(PermanentFailure) as failed:
            bulk_params.parse_export(SCHEMAS["inventory"], {"filters": {"quantity": "ten"}})
        assert "params.filters.quantity" in str(failed.value.detail)

    def test_columns_and_filters_come_checked(self) -> None:
        export = bulk_params.parse_export(
            SCHEMAS["customer"],
            {"columns": ["email"], "filters": {"accepts_marketing": True, "first_name": "Ann"}},
        )
        assert [c.name for c in export.columns] == ["email"]
        assert [(f.column.name, f.value) for f in export.filters] == [
            ("accepts_marketing", True),
            ("first_name", "Ann"),
        ]


class TestMaxErrors:
    def test_an_import_takes_a_thousand_rejected_rows_by_default(self) -> None:
        assert bulk_params.ImportParams().max_errors == 1000

    @pytest.mark.parametrize("given", [0, 5, 100_000])
    def test_a_count_in_range_is_taken_in_camel_or_snake_case(self, given: int) -> None:
        assert bulk_params.ImportParams.model_validate({"maxErrors": given}).max_errors == given
        assert bulk_params.ImportParams.model_validate({"max_errors": given}).max_errors == given

    @pytest.mark.parametrize("given", [-1, 100_001, "1000", 1000.0, True, None, "10%"])
    def test_anything_else_is_refused_naming_the_field(self, given: Any) -> None:
        with pytest.raises(InvalidInput) as refused:
            bulk_params.check_import(
                "product", {"maxErrors": given}, file_name="p.csv", has_input=False
            )
        assert refused.value.field == "params.maxErrors"
