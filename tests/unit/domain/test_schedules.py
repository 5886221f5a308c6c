"""When a schedule fires: cron fields, zones, DST (skipped hours do not fire, repeated hours
fire once), start and end, and which due fire times a tick makes (catch-up)."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from croniter import croniter
from hypothesis import given, settings, strategies as st

from service.domain import schedules as rules
from service.domain.errors import InvalidInput
from service.domain.schedules import CatchUp, Recurrence

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def every(cron: str, zone: zoneinfo.ZoneInfo = BERLIN, **bounds: datetime) -> Recurrence:
    return Recurrence(rules.cron_of(cron), zone, bounds.get("start_at"), bounds.get("end_at"))


class TestCronField:
    @pytest.mark.parametrize(
        ("given_", "normal"),
        [
            ("0 2 * * *", "0 2 * * *"),
            ("  */5   * * * * * ", "*/5 * * * * *"),
            ("0 30 9 * * MON-FRI", "0 30 9 * * MON-FRI"),
        ],
    )
    def test_five_fields_or_six_with_seconds_first(self, given_: str, normal: str) -> None:
        assert rules.cron_of(given_) == normal

    @pytest.mark.parametrize(
        "bad",
        [
            "",
            "* * * *",
            "* * * * * * *",
            "61 * * * *",
            "0 25 * * *",
            "@daily",
            "a b c d e",
            "0 0 32 * *",
            "* * * * * 99",
        ],
    )
    def test_a_bad_expression_is_a_422_naming_cron(self, bad: str) -> None:
        with pytest.raises(InvalidInput) as refused:
            rules.cron_of(bad)
        assert refused.value.field == "cron"

    def test_seconds_come_first(self) -> None:
        times = every("30 0 9 * * *", zoneinfo.ZoneInfo("UTC")).upcoming(utc(2026, 1, 1), 2)
        assert times == [utc(2026, 1, 1, 9, 0, 30), utc(2026, 1, 2, 9, 0, 30)]


class TestZone:
    @pytest.mark.parametrize(
        "bad", ["", "Mars/Phobos", "../../etc/passwd", "/etc/localtime", "europe/berlin", "CET+1"]
    )
    def test_an_unknown_zone_is_a_422_naming_time_zone(self, bad: str) -> None:
        with pytest.raises(InvalidInput) as refused:
            rules.zone_of(bad)
        assert refused.value.field == "timeZone"

    def test_iana_names_and_utc(self) -> None:
        assert rules.zone_of("Europe/Berlin") == BERLIN
        assert rules.zone_of("UTC") == zoneinfo.ZoneInfo("UTC")


class TestDaylightSaving:
    def test_a_skipped_local_time_does_not_fire(self) -> None:
        """Berlin, 29 March 2026: 02:00 jumps to 03:00; 02:30 does not exist that day."""
        times = every("30 2 * * *").upcoming(utc(2026, 3, 27, 12), 3)
        assert times == [
            utc(2026, 3, 28, 1, 30),  # 02:30 CET
            utc(2026, 3, 30, 0, 30),  # 02:30 CEST; none on the 29th
            utc(2026, 3, 31, 0, 30),
        ]

    def test_a_repeated_local_time_fires_once_at_its_first_occurrence(self) -> None:
        """Berlin, 25 October 2026: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice."""
        times = every("30 2 * * *").upcoming(utc(2026, 10, 24, 12), 3)
        assert times == [
            utc(2026, 10, 25, 0, 30),  # 02:30 CEST; not again at 02:30 CET (01:30Z)
            utc(2026, 10, 26, 1, 30),
            utc(2026, 10, 27, 1, 30),
        ]

    def test_hourly_across_the_fall_back_fires_each_wall_clock_hour_once(self) -> None:
        times = every("0 * * * *").upcoming(utc(2026, 10, 24, 22, 30), 4)
        # local 01:00 CEST, 02:00 CEST, (02:00 CET skipped: a repeat), 03:00 CET, 04:00 CET
        assert times == [
            utc(2026, 10, 24, 23),
            utc(2026, 10, 25, 0),
            utc(2026, 10, 25, 2),
            utc(2026, 10, 25, 3),
        ]

    def test_from_inside_the_repeated_hour_the_next_fire_is_after_it(self) -> None:
        """01:10Z is 02:10 CET, the second pass: 02:20's first pass (00:20Z) is already past."""
        assert every("*/20 * * * *").next_after(utc(2026, 10, 25, 1, 10)) == utc(2026, 10, 25, 2)

    def test_new_york_spring_forward(self) -> None:
        """8 March 2026: 02:00 EST jumps to 03:00 EDT."""
        times = every("15 2 * * *", NEW_YORK).upcoming(utc(2026, 3, 7), 2)
        assert times == [utc(2026, 3, 7, 7, 15), utc(2026, 3, 9, 6, 15)]

    def test_backwards_walk_sees_the_same_times(self) -> None:
        recurrence = every("30 2 * * *")
        forwards = recurrence.between(utc(2026, 10, 20), utc(2026, 10, 30), 100)
        backwards = recurrence.latest_before(utc(2026, 10, 30), utc(2026, 10, 20), 100)
        assert forwards == backwards
        assert len(forwards) == 10  # one a day, the 25th once


ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
CRONS = ["*/7 * * * *", "30 2 * * *", "0 * * * *", "15,45 1-3 * * *", "0 */20 * * * *"]


@settings(max_examples=150, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    cron=st.sampled_from(CRONS),
    start=st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1)),
)
def test_fire_times_are_first_occurrences_of_matching_wall_times(
    zone: str, cron: str, start: datetime
) -> None:
    recurrence = every(cron, zoneinfo.ZoneInfo(zone))
    after = start.replace(tzinfo=UTC)
    times = recurrence.upcoming(after, 6)
    assert len(times) == 6
    assert after < times[0]
    assert times == sorted(set(times))
    walls = [t.astimezone(recurrence.zone) for t in times]
    assert all(w.fold == 0 for w in walls)  # never the second pass of a repeated hour
    assert len({w.replace(tzinfo=None) for w in walls}) == len(walls)
    assert all(
        croniter.match(rules.cron_of(cron), w.replace(tzinfo=None), second_at_beginning=True)
        for w in walls
    )
    back = recurrence.latest_before(times[-1] + timedelta(microseconds=1), times[0], 6)
    assert back == times


class TestBounds:
    def test_start_at_is_the_first_possible_fire_time(self) -> None:
        recurrence = every("0 * * * *", zoneinfo.ZoneInfo("UTC"), start_at=utc(2026, 5, 1, 9))
        assert recurrence.next_after(utc(2026, 1, 1)) == utc(2026, 5, 1, 9)

    def test_nothing_after_end_at(self) -> None:
        recurrence = every("0 * * * *", zoneinfo.ZoneInfo("UTC"), end_at=utc(2026, 5, 1, 10))
        assert recurrence.upcoming(utc(2026, 5, 1, 8, 30)) == [
            utc(2026, 5, 1, 9),
            utc(2026, 5, 1, 10),
        ]

    def test_end_before_start_is_a_422_naming_end_at(self) -> None:
        with pytest.raises(InvalidInput) as refused:
            rules.checked_recurrence("0 * * * *", "UTC", utc(2026, 5, 2), utc(2026, 5, 1))
        assert refused.value.field == "endAt"

    def test_a_cron_that_never_matches_has_no_next_fire_time(self) -> None:
        assert every("0 0 30 2 *").next_after(utc(2026, 1, 1)) is None


class TestPlan:
    """Every minute; the tick comes at 10:00:30 after the last one at 09:00 (downtime)."""

    NOW = utc(2026, 5, 1, 10, 0, 30)
    recurrence = every("* * * * *", zoneinfo.ZoneInfo("UTC"))

    def plan(self, catch_up: CatchUp, limit: int = 10, per_tick: int = 100) -> rules.FirePlan:
        return rules.plan(
            self.recurrence,
            due_from=utc(2026, 5, 1, 9, 1),
            now=self.NOW,
            grace=timedelta(minutes=2),
            catch_up=catch_up,
            catch_up_limit=limit,
            per_tick=per_tick,
        )

    def test_on_time_fire_times_all_fire(self) -> None:
        on_time = [utc(2026, 5, 1, 9, 59), utc(2026, 5, 1, 10)]
        assert self.plan(CatchUp.NONE).fire == on_time
        assert self.plan(CatchUp.NONE).next_fire_at == utc(2026, 5, 1, 10, 1)

    def test_latest_makes_up_for_the_missed_ones_once(self) -> None:
        assert self.plan(CatchUp.LATEST).fire[0] == utc(2026, 5, 1, 9, 58)
        assert len(self.plan(CatchUp.LATEST).fire) == 3

    def test_all_makes_up_to_its_limit_of_the_latest_missed(self) -> None:
        fire = self.plan(CatchUp.ALL, limit=5).fire
        assert fire[:5] == [utc(2026, 5, 1, 9, m) for m in range(54, 59)]
        assert len(fire) == 7
        assert len(self.plan(CatchUp.ALL, limit=100).fire) == 60  # 09:01 to 10:00

    def test_a_tick_makes_at_most_per_tick_and_the_rest_wait(self) -> None:
        plan = self.plan(CatchUp.NONE, per_tick=1)
        assert plan.fire == [utc(2026, 5, 1, 9, 59)]
        assert plan.next_fire_at == utc(2026, 5, 1, 10)
