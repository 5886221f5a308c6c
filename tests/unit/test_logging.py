"""FailureStreak: one warning per run of failures, one when it works again."""

from __future__ import annotations

import logging

import pytest

from service.logging import FailureStreak


def refused() -> ConnectionRefusedError:
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError as error:
        return error


def a_bug() -> KeyError:
    try:
        raise KeyError("missing")
    except KeyError as error:
        return error


class TestFailureStreak:
    def test_a_streak_is_one_warning_and_its_end_another(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        streak = FailureStreak(logging.getLogger("t"), "claiming tasks", "task.claim")
        with caplog.at_level(logging.DEBUG, logger="t"):
            for _ in range(5):
                streak.failed(refused())
            streak.succeeded()
            streak.succeeded()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings[0].getMessage().startswith("claiming tasks failed")
        assert "works again after 5 failures" in warnings[1].getMessage()
        assert len(warnings) == 2
        assert warnings[0].exc_info is None  # the database away needs no traceback
        assert warnings[0].action == "task.claim_failed"  # type: ignore[attr-defined]
        assert streak.failures == 0

    def test_an_unexpected_error_keeps_its_traceback(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        streak = FailureStreak(logging.getLogger("t"), "job x", "job")
        with caplog.at_level(logging.WARNING, logger="t"):
            streak.failed(a_bug())
        assert caplog.records[0].exc_info is not None

    def test_backoff_doubles_up_to_its_cap(self) -> None:
        streak = FailureStreak(logging.getLogger("t"), "x", "x")
        waits = []
        for _ in range(5):
            streak.failed(refused())
            waits.append(streak.backoff(0.25, 1.0))
        assert waits == [0.25, 0.5, 1.0, 1.0, 1.0]
