"""The change feed's position: rows go out once and in id order; ids that commit out of order
are waited for a moment, then read late; holes are forgotten."""

from __future__ import annotations

from dataclasses import dataclass

from service.events.changefeed import GAP_SECONDS, HOLD_SECONDS, MAX_GAP, Position


@dataclass(frozen=True)
class Row:
    id: int


def ids(rows: list[Row]) -> list[int]:
    return [row.id for row in rows]


def rows(*numbers: int) -> list[Row]:
    return [Row(n) for n in numbers]


def test_new_rows_go_out_once_in_id_order() -> None:
    position = Position[Row](10)
    assert ids(position.take(rows(12, 11), now=0.0)) == [11, 12]
    assert position.take(rows(12), now=0.1) == []
    assert position.top == 12
    assert position.late(0.1) == []
    assert not position.holding


def test_rows_above_an_id_not_committed_yet_wait_for_it() -> None:
    position = Position[Row](0)
    assert ids(position.take(rows(1, 3, 4), now=0.0)) == [1]  # 2 is in an open transaction
    assert position.holding
    assert position.late(0.1) == [2]
    assert position.take([], now=0.1) == []  # still within the hold
    assert ids(position.take(rows(2), now=0.2)) == [2, 3, 4]  # it committed: all in order
    assert not position.holding
    assert position.late(0.2) == []


def test_rows_stop_waiting_after_the_hold_and_the_missing_id_is_sent_late() -> None:
    position = Position[Row](0)
    assert ids(position.take(rows(2), now=0.0)) == []
    assert ids(position.take([], now=HOLD_SECONDS + 0.1)) == [2]  # a long transaction
    assert position.late(HOLD_SECONDS + 0.1) == [1]  # still watched
    assert ids(position.take(rows(1), now=HOLD_SECONDS + 0.2)) == [1]  # sent when it commits


def test_only_the_rows_above_the_first_waited_for_id_wait() -> None:
    position = Position[Row](0)
    assert ids(position.take(rows(1, 2, 4), now=0.0)) == [1, 2]
    assert ids(position.take(rows(6), now=0.5)) == []  # waits for 3 (and 5)
    assert ids(position.take(rows(3), now=0.6)) == [3, 4]  # 6 still waits for 5
    assert ids(position.take(rows(5), now=0.7)) == [5, 6]


def test_a_hole_is_forgotten_after_the_gap_time() -> None:
    position = Position[Row](0)
    position.take(rows(2), now=0.0)
    assert position.late(GAP_SECONDS - 1) == [1]
    assert position.late(GAP_SECONDS + 1) == []  # a rolled-back insert: never coming


def test_a_large_jump_is_not_watched_id_by_id() -> None:
    position = Position[Row](0)
    assert ids(position.take(rows(MAX_GAP + 5), now=0.0)) == [MAX_GAP + 5]
    assert position.late(0.0) == []
    assert position.top == MAX_GAP + 5


def test_skipping_ahead_forgets_what_waited() -> None:
    position = Position[Row](0)
    position.take(rows(3), now=0.0)
    position.skip_to(10)
    assert (position.top, position.late(0.0), position.holding) == (10, [], False)
    assert ids(position.take(rows(11), now=0.1)) == [11]
