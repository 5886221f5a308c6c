"""Progress and time left of an import run, from the share of its file done."""

from __future__ import annotations

import io

import pytest

from service.bulk.eta import Eta
from service.bulk.streams import Counted


class TestEta:
    def test_the_first_report_has_no_rate_yet(self) -> None:
        assert Eta().update(0.25, now=100.0) == (25, None)

    def test_time_left_follows_the_rate_since_the_first_report(self) -> None:
        eta = Eta()
        eta.update(0.10, now=100.0)
        # 0.30 of the file in 10 s: 0.60 left takes 20 s
        assert eta.update(0.40, now=110.0) == (40, 20.0)

    def test_a_resumed_run_is_timed_from_where_it_started(self) -> None:
        eta = Eta()
        eta.update(0.50, now=0.0)  # the rows before the checkpoint were skipped quickly
        assert eta.update(0.60, now=5.0) == (60, 20.0)

    @pytest.mark.parametrize("fraction", [1.0, 1.3])
    def test_100_is_left_for_the_completed_task(self, fraction: float) -> None:
        eta = Eta()
        eta.update(0.5, now=0.0)
        assert eta.update(fraction, now=1.0) == (99, 0.0)

    def test_no_movement_gives_no_estimate(self) -> None:
        eta = Eta()
        eta.update(0.5, now=0.0)
        assert eta.update(0.5, now=3.0) == (50, None)


def test_counted_counts_what_was_read_and_leaves_its_source_open() -> None:
    source = io.BytesIO(b"x" * 1000)
    counted = Counted(source)
    buffered = io.BufferedReader(counted, 256)
    assert buffered.read(10) == b"x" * 10
    assert counted.consumed == 256  # what the buffer took
    assert len(buffered.read()) == 990
    assert counted.consumed == 1000
    buffered.close()
    assert not source.closed
