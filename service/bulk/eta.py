"""How far a run is and how long it has left, from the share of its input done so far."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Eta:
    """Progress (0 to 99 until the end) and seconds left of one run, measured from its first
    report: a resumed run's skipped rows and start-up do not distort its rate."""

    _first: tuple[float, float] | None = None  #: (monotonic time, fraction) of the first report

    def update(self, fraction: float, now: float) -> tuple[int, float | None]:
        """The percentage done and the seconds left (None until a rate is known)."""
        fraction = min(max(fraction, 0.0), 1.0)
        percent = min(99, int(fraction * 100))  # 100 is for the completed task
        if self._first is None:
            self._first = (now, fraction)
            return percent, None
        since, start = self._first
        if fraction <= start or now <= since:
            return percent, None
        return percent, round((1.0 - fraction) * (now - since) / (fraction - start), 1)
