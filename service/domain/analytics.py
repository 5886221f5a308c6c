"""Analytics rules without I/O: windows, duration buckets and percentiles from them.

Every time is UTC: a window is whole UTC days, hours of the day and days of the week are UTC.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: The windows GET /analytics answers for, in days.
WINDOWS = (7, 30, 90)
#: Failure messages kept per group in the rollup (longer ones are cut), and how many the answer
#: lists.
MESSAGE_LENGTH = 200
TOP_FAILURES = 10
#: The rollup takes changes older than this; the answer computes younger ones live. A margin
#: for transactions that wrote updated_at a moment before they committed.
LAG = timedelta(seconds=10)
#: Rollup rows of days this far back are pruned: no window reaches them.
KEEP_DAYS = max(WINDOWS) + 2
#: The rollup's owner for everyone's tasks (a user id is never empty).
EVERYONE = ""
#: The hourly rollup's task type (and entity type, queue) of its rows for every kind of task.
ALL_KINDS = ""

#: Duration buckets: bucket 0 is [0, 1 ms); bucket k >= 1 is [2^((k-1)/4), 2^(k/4)) ms; the last
#: one is open. Four buckets per doubling: a percentile read as its bucket's geometric middle is
#: within ±9.1 % (2^(1/8) - 1) of the true value. Both databases compute the bucket with the
#: same formula and constants as bucket_of (PostgreSQL in SQL, SQLite through it).
BUCKETS_PER_DOUBLING = 4
BUCKET_COUNT = 128
#: floor(ln(ms) * SCALE + NUDGE) + 1 is the bucket; NUDGE keeps exact powers of two on their edge
SCALE = BUCKETS_PER_DOUBLING / math.log(2)
NUDGE = 1e-9
PERCENTILES = (50, 95, 99)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_hour(moment: datetime) -> int:
    """Whole UTC hours since 1970 (the rollup's time key)."""
    return int((moment - _EPOCH).total_seconds()) // 3600


def first_day(days: int, now: datetime) -> int:
    """The UTC day number (days since 1970) a window of `days` starts on: today and the
    `days - 1` days before it."""
    return epoch_hour(now) // 24 - (days - 1)


def day_start(day: int) -> datetime:
    return _EPOCH + timedelta(days=day)


def week_of(day: int) -> int:
    """The number of the Monday-to-Sunday week a day number is in (week 0 ends 1970-01-04)."""
    return (day + 3) // 7


def monday_of(week: int) -> int:
    """The day number of a week's Monday."""
    return week * 7 - 3


def weekday(day: int) -> int:
    """ISO day of the week of a day number: 1 Monday … 7 Sunday (1970-01-01 was a Thursday)."""
    return (day + 3) % 7 + 1


def bucket_of(ms: float | None) -> int | None:
    """The bucket a duration in milliseconds falls in (negative durations count as 0)."""
    if ms is None:
        return None
    if ms < 1:
        return 0
    return min(BUCKET_COUNT - 1, math.floor(math.log(ms) * SCALE + NUDGE) + 1)


def bucket_value(bucket: int) -> float:
    """What a bucket stands for: its geometric middle (0 for the first)."""
    if bucket <= 0:
        return 0.0
    return float(2 ** ((bucket - 0.5) / BUCKETS_PER_DOUBLING))


def percentiles(counts: Mapping[int, int], points: Iterable[int] = PERCENTILES) -> dict[int, float]:
    """The nearest-rank percentiles of a histogram (bucket → count), each as its bucket's value."""
    total = sum(counts.values())
    if total <= 0:
        return {}
    ordered = sorted((b, c) for b, c in counts.items() if c > 0)
    found: dict[int, float] = {}
    for point in points:
        rank = max(1, math.ceil(point / 100 * total))
        seen = 0
        for bucket, count in ordered:
            seen += count
            if seen >= rank:
                found[point] = bucket_value(bucket)
                break
    return found


@dataclass(frozen=True, slots=True)
class Rates:
    """Shares of a group of tasks, 0..1 (None when there is nothing to divide by)."""

    success: float | None
    failure: float | None
    retry: float | None


def rates(*, tasks: int, completed: int, failed: int, cancelled: int, retried: int) -> Rates:
    """Success and failure among finished tasks; retry among all tasks (retried at least once)."""
    finished = completed + failed + cancelled
    return Rates(
        success=completed / finished if finished else None,
        failure=failed / finished if finished else None,
        retry=retried / tasks if tasks else None,
    )
