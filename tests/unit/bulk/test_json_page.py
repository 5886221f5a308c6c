"""An export page as the database joins it: parsed in key order."""

from __future__ import annotations

from service.db.repositories.store import JsonPage


def test_records_come_in_the_order_the_database_joined_them_when_it_is_guaranteed() -> None:
    page = JsonPage('{"sku":"b","n":1.50},{"sku":"a","n":null}', None, "b")
    assert list(page) == [{"sku": "b", "n": 1.5}, {"sku": "a", "n": None}]
    assert page.last_key == "b"


def test_records_in_key_order_are_kept_as_they_are() -> None:
    page = JsonPage('{"sku":"a"},{"sku":"b"},{"sku":"é"}', '["a","b","é"]', "é")
    assert [record["sku"] for record in page] == ["a", "b", "é"]


def test_records_out_of_key_order_are_sorted_by_key() -> None:
    page = JsonPage('{"sku":"c"},{"sku":"a"},{"sku":"b"}', '["c","a","b"]', "c")
    assert [record["sku"] for record in page] == ["a", "b", "c"]
