"""Task logs written by handlers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from service.db.repositories.history import HistoryRepository
from service.db.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class LogEntry:
    task_id: UUID
    level: str
    message: str
    created_at: datetime
    attempt: int | None = None
    data: dict[str, Any] | None = None


async def append(uow: UnitOfWork, entries: Sequence[LogEntry]) -> None:
    """Write a batch of log lines (live streams of this process hear of them at commit)."""
    uow.facts.logged = True
    await HistoryRepository(uow.session).add_logs(
        [
            {
                "task_id": e.task_id,
                "level": e.level,
                "message": e.message[:10000],
                "attempt": e.attempt,
                "data": e.data,
                "created_at": e.created_at,
            }
            for e in entries
        ]
    )
