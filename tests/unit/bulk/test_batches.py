"""A batch's keys: repeats within the batch, and how many rejected rows the report lists."""

from __future__ import annotations

from service.bulk.batches import Options, dedupe_batch, first_rows
from service.bulk.rows import Candidate, RowError


def _rows(*keys: str) -> list[Candidate]:
    return [Candidate(number, key, {"sku": key}) for number, key in enumerate(keys, start=1)]


class TestDedupeBatch:
    def test_distinct_keys_pass_as_they_are(self) -> None:
        batch, outcome = dedupe_batch(_rows("a", "b"), Options())
        assert [c.key for c in batch] == ["a", "b"]
        assert (outcome.created, outcome.updated, outcome.skipped, outcome.errors) == (0, 0, 0, [])

    def test_insert_reports_a_repeat_naming_the_first_row(self) -> None:
        batch, outcome = dedupe_batch(_rows("a", "b", "a"), Options())
        assert [c.row_number for c in batch] == [1, 2]
        assert [(e.row, e.column, e.message) for e in outcome.errors] == [
            (3, "key", "duplicate key 'a': already in row 1")
        ]

    def test_skip_duplicates_counts_a_repeat_as_skipped(self) -> None:
        batch, outcome = dedupe_batch(_rows("a", "a"), Options(skip_duplicates=True))
        assert [c.row_number for c in batch] == [1]
        assert (outcome.skipped, outcome.errors) == (1, [])

    def test_upsert_lets_the_last_copy_win(self) -> None:
        batch, outcome = dedupe_batch(_rows("a", "a"), Options(mode="upsert"))
        assert [c.row_number for c in batch] == [2]
        assert outcome.updated == 1


def test_first_rows_keeps_every_problem_of_the_first_rejected_rows() -> None:
    errors = [RowError(row, column, None, "bad") for row, column in [(5, "a"), (2, "a"), (5, "b")]]
    assert first_rows(errors, 2) == errors
    assert first_rows(errors, 1) == [errors[1]]
    assert first_rows(errors, 0) == []
