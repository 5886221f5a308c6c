"""Log configuration: one line per record, with the `action` and ids passed in `extra`."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from service.config import Settings
from service.db import availability
from service.telemetry import tracing

FIELDS = ("action", "task_id", "worker_id", "job", "outbox_id", "error")
#: what an access line adds (service/web/observe.py)
ACCESS_FIELDS = ("method", "route", "path", "status", "duration_ms")


class ActionFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        names = (*FIELDS, *ACCESS_FIELDS)
        extra = " ".join(f"{k}={getattr(record, k)}" for k in names if hasattr(record, k))
        return f"{line} {extra}" if extra else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the trace id of the span the
    record was written in, and the ids and access fields passed in `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        trace_id = tracing.trace_id_of()
        if trace_id is not None:
            line["trace_id"] = trace_id
        for name in (*FIELDS, *ACCESS_FIELDS):
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """Text lines (the default, and what `dev` shows) or JSON lines (OPS_LOG_FORMAT=json)."""
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(ActionFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per sidecar call is noise
    # our access line (service/web/observe.py) replaces uvicorn's
    logging.getLogger("uvicorn.access").disabled = True


class FailureStreak:
    """Logs a run of failures of one repeating step once, and the recovery once.

    A loop that retries while the database is away would otherwise log a traceback per try.
    The first failure is a warning (with its traceback unless it is the database being
    unreachable, which needs none); the rest of the streak is debug; the first success after
    it says, as a warning too, that it works again and how long it did not.
    """

    def __init__(self, logger: logging.Logger, what: str, action: str) -> None:
        self.logger = logger
        self.what = what
        self.action = action
        self.failures = 0
        self.last_error: str | None = None
        self._since = 0.0

    def failed(self, error: BaseException, **extra: Any) -> None:
        self.failures += 1
        self.last_error = f"{type(error).__name__}: {error}"[:300]
        fields = {"action": f"{self.action}_failed", "error": self.last_error, **extra}
        if self.failures > 1:
            self.logger.debug("%s failed again (%d)", self.what, self.failures, extra=fields)
            return
        self._since = time.monotonic()
        expected = availability.is_unavailable(error) or error.__traceback__ is None
        trace = None if expected else error
        self.logger.warning(
            "%s failed; repeats are logged at debug level until it works",
            self.what,
            exc_info=trace,
            extra=fields,
        )

    def succeeded(self) -> None:
        if not self.failures:
            return
        self.logger.warning(
            "%s works again after %d failures in %.1f s",
            self.what,
            self.failures,
            time.monotonic() - self._since,
            extra={"action": f"{self.action}_recovered"},
        )
        self.failures = 0
        self.last_error = None

    def backoff(self, first: float, cap: float) -> float:
        """Seconds to wait before the next try: `first`, doubling per failure, at most `cap`."""
        return min(cap, first * 2.0 ** max(0, self.failures - 1))
