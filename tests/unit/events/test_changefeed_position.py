"""The change feed's position: ids that commit out of order are read late, holes forgotten."""

from __future__ import annotations

from service.events.changefeed import GAP_SECONDS, MAX_GAP, Position


def test_new_ids_are_fresh_once() -> None:
    position = Position(10)
    assert position.take([11, 12], now=0.0) == {11, 12}
    assert position.take([12], now=0.1) == set()
    assert position.top == 12
    assert position.late(0.1) == []


def test_an_id_that_commits_after_a_higher_one_is_read_late_and_delivered() -> None:
    position = Position(0)
    assert position.take([1, 3], now=0.0) == {1, 3}
    assert position.late(0.5) == [2]  # 2 was taken by a transaction that has not committed yet
    assert position.take([2], now=0.5) == {2}
    assert position.late(0.6) == []


def test_a_hole_is_forgotten_after_the_gap_time() -> None:
    position = Position(0)
    position.take([2], now=0.0)
    assert position.late(GAP_SECONDS - 1) == [1]
    assert position.late(GAP_SECONDS + 1) == []  # a rolled-back insert: never coming


def test_a_large_jump_is_not_watched_id_by_id() -> None:
    position = Position(0)
    position.take([MAX_GAP + 5], now=0.0)
    assert position.late(0.0) == []
    assert position.top == MAX_GAP + 5
