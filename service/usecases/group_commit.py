"""Group commit of creates: tasks that arrive while a commit is under way share the next one.

Each create is checked (catalog) by its own request, then queued; one writer stores whatever
has queued up in a single transaction and answers every request once that commit succeeded
(or fails them all: a 503 while the database is away, nothing half-written). One client alone
waits for nothing but its own commit; sixteen at once cost one commit instead of sixteen — the
technique databases themselves use for their log ("group commit").

On PostgreSQL a group is one statement (tasks, events and outbox rows, see
service/db/repositories/tasks.py), which commits itself: it goes straight to the driver in a
statement unit, without a transaction of its own to begin and commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Protocol

from service.db.unit_of_work import StatementUnits, Units
from service.domain.tasks import TaskRecord
from service.usecases import tasks as task_usecases

#: Most tasks one transaction takes (a bound on its size and on how long its locks are held).
MAX_GROUP = 500


class Settlements(Protocol):
    """Outbox rows published whose claims a group's statement marks (the relay's)."""

    def take_settled(self) -> list[int]: ...

    def give_back_settled(self, ids: list[int]) -> None: ...


def _retrieved(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()


class GroupCommit:
    """Stores prepared tasks in shared transactions; one writer at a time."""

    def __init__(
        self,
        units: Units,
        *,
        statement_units: StatementUnits | None = None,
        settlements: Settlements | None = None,
        max_group: int = MAX_GROUP,
    ) -> None:
        self.units = units
        #: PostgreSQL: each group is written as one self-committing statement
        self.statement_units = statement_units
        #: PostgreSQL: that statement also marks the outbox rows the relay published meanwhile
        self.settlements = settlements
        self.max_group = max_group
        self._queued: list[tuple[TaskRecord, datetime, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        #: done when the statement under way commits (or fails); None between statements
        self._statement: asyncio.Future[None] | None = None
        #: groups committed, and tasks in them (for /health/detailed and the benchmarks)
        self.groups = 0
        self.tasks = 0

    async def store(self, task: TaskRecord, *, now: datetime) -> None:
        """Return once `task` is committed; raise what its transaction raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieved)  # read even when its request went away
        self._queued.append((task, now, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="group-commit")
        await asyncio.shield(done)  # a client gone does not cancel the others' transaction

    async def _write(self) -> None:
        while self._queued:
            group, self._queued = self._queued[: self.max_group], self._queued[self.max_group :]
            self._statement = asyncio.get_running_loop().create_future()
            try:
                await self._store([t for t, _, _ in group], now=group[0][1])
            except BaseException as error:
                self._statement_ended()
                for _, _, done in group:
                    if not done.done():
                        done.set_exception(error)
                if not isinstance(error, Exception):
                    raise
                continue
            self._statement_ended()
            self.groups += 1
            self.tasks += len(group)
            for _, _, done in group:
                if not done.done():
                    done.set_result(None)

    async def _store(self, tasks: list[TaskRecord], *, now: datetime) -> None:
        if self.statement_units is not None:
            settled = self.settlements.take_settled() if self.settlements is not None else []
            try:
                async with self.statement_units() as unit:
                    await task_usecases.store_alone(unit, tasks, now=now, settled=settled)
            except BaseException:
                if settled and self.settlements is not None:
                    self.settlements.give_back_settled(settled)
                raise
            return
        async with self.units() as uow:
            await task_usecases.store(uow, tasks, now=now)

    def will_write(self) -> bool:
        """Whether a group waits to be written (its statement is still to be made)."""
        return bool(self._queued)

    def _statement_ended(self) -> None:
        statement, self._statement = self._statement, None
        if statement is not None and not statement.done():
            statement.set_result(None)

    async def next_commit(self, timeout: float) -> None:
        """Return when the group being written commits (or fails), at once when none is, or
        after `timeout`. For the relay: the rows of that group then go out with those of the
        one before it, in one drain instead of two (service/events/relay.py)."""
        statement = self._statement
        if statement is None or statement.done():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.shield(statement)

    async def close(self) -> None:
        """Let the writer finish what is queued."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer
