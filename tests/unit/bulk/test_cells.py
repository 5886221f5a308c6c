"""Cell rendering by kind and the formula-injection neutralisation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from service.bulk import cells
from service.bulk.columns import Column, Kind

TRICKY = [
    "",
    "plain",
    "=1+2",
    "+49 30 1234",
    "-5",
    "@SUM(A1)",
    "\tcmd",
    "\rcmd",
    "'",
    "''",
    "'=1",
    "''=1",
    "'plain",
    "O'Brien",
    "a=b",
    "=",
]


class TestNeutralise:
    @pytest.mark.parametrize("text", ["=1+2", "+1", "-1", "@x", "\tx", "\rx"])
    def test_a_trigger_first_character_gets_a_quote(self, text: str) -> None:
        assert cells.neutralise(text) == "'" + text

    @pytest.mark.parametrize("text", ["", "plain", "a=b", "O'Brien", "'plain", "1-2"])
    def test_safe_text_is_unchanged(self, text: str) -> None:
        assert cells.neutralise(text) == text

    def test_text_already_quoted_before_a_trigger_gets_one_more_quote(self) -> None:
        assert cells.neutralise("'=1") == "''=1"
        assert cells.neutralise("''-1") == "'''-1"

    @pytest.mark.parametrize("text", TRICKY)
    def test_restore_undoes_neutralise_exactly(self, text: str) -> None:
        assert cells.restore(cells.neutralise(text)) == text

    def test_restore_leaves_a_quote_before_safe_text(self) -> None:
        assert cells.restore("'plain") == "'plain"
        assert cells.restore("'+49 30") == "+49 30"  # as a spreadsheet user typed it


class TestTextRenderer:
    def render(self, kind: Kind, value: object, scale: int = 2) -> str:
        return cells.text_renderer(Column("c", kind, scale))(value)

    def test_text_is_neutralised_and_none_is_empty(self) -> None:
        assert self.render(Kind.TEXT, "=cmd") == "'=cmd"
        assert self.render(Kind.TEXT, None) == ""
        assert self.render(Kind.TEXT, 42) == "42"

    def test_negative_numbers_in_numeric_columns_are_not_touched(self) -> None:
        assert self.render(Kind.INTEGER, -5) == "-5"
        assert self.render(Kind.INTEGER, "-5") == "-5"
        assert self.render(Kind.DECIMAL, Decimal("-1.5")) == "-1.50"
        assert self.render(Kind.DECIMAL, "-1.50") == "-1.50"

    def test_text_that_is_not_a_number_in_a_numeric_column_is_neutralised(self) -> None:
        assert self.render(Kind.INTEGER, "-1+cmd") == "'-1+cmd"
        assert self.render(Kind.DECIMAL, "=1") == "'=1"

    def test_decimals_have_exactly_the_column_scale(self) -> None:
        assert self.render(Kind.DECIMAL, Decimal("12.5")) == "12.50"
        assert self.render(Kind.DECIMAL, Decimal("1E+3")) == "1000.00"
        assert self.render(Kind.DECIMAL, 0.1) == "0.10"
        assert self.render(Kind.DECIMAL, 3) == "3.00"
        assert self.render(Kind.DECIMAL, Decimal("1.25"), scale=0) == "1"
        assert self.render(Kind.DECIMAL, Decimal("1E+30")) == "1" + "0" * 30 + ".00"

    def test_booleans_are_true_and_false(self) -> None:
        assert self.render(Kind.BOOLEAN, True) == "true"
        assert self.render(Kind.BOOLEAN, False) == "false"
        assert self.render(Kind.BOOLEAN, None) == ""

    def test_datetimes_are_iso_in_utc(self) -> None:
        berlin = timezone(timedelta(hours=2))
        assert self.render(Kind.DATETIME, datetime(2024, 5, 1, 12, tzinfo=berlin)) == (
            "2024-05-01T10:00:00Z"
        )
        assert self.render(Kind.DATETIME, datetime(2024, 5, 1, 12, 0, 0, 5, tzinfo=UTC)) == (
            "2024-05-01T12:00:00.000005Z"
        )

    def test_json_is_compact_with_decimals_as_strings(self) -> None:
        value = {"a": [1, Decimal("2.50")], "ü": None}
        assert self.render(Kind.JSON, value) == '{"a":[1,"2.50"],"ü":null}'
        assert self.render(Kind.JSON, None) == ""
        assert self.render(Kind.JSON, "=x") == "'=x"
