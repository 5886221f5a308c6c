"""Outbox relay: publishes outbox rows in id order, marking each published only once accepted."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import operator
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.clock import utcnow
from service.db import dialects, driver
from service.db.engine import SessionMaker, session_scope
from service.db.repositories import outbox as outbox_rows
from service.db.repositories.outbox import OutboxRecord, OutboxRepository
from service.events.base import OutgoingEvent, Publisher, PublishError
from service.logging import FailureStreak
from service.telemetry import metrics

logger = logging.getLogger(__name__)

RELAY_LOCK = 0x0C0F_0B0E  # advisory lock key: one draining relay at a time keeps per-task order
#: How long a relay queues for another process's drain before it looks again. Queueing (rather
#: than trying again 50 ms later) lets a row committed during that drain go out right after it:
#: the API's and the workers' relays share the lock, and at an idle worker's pace of a task
#: every 20 ms the try-lock made a `created` event wait 50 ms behind a `completed` one.
LOCK_WAIT = "2s"
LOCK_NOT_AVAILABLE = "55P03"
#: A kick for rows that only continue tasks (started, completed, …: no `created` among them)
#: waits this long for company: a short task's `started` and `completed` then go out in one
#: drain (one transaction) instead of two. A `created` row goes out at once: a worker may be
#: waiting for it (the Dapr push path).
LINGER_SECONDS = 0.005
#: Rows a group of creates handed over (claimed, see _publish_claimed) wait at most this long
#: for a group being written meanwhile to commit (OutboxRelay.company): under a stream of
#: creates, one drain then publishes and settles two groups' rows, not one.
COMPANY_SECONDS = 0.005
#: Longest wait between drains while the database cannot be reached.
DATABASE_RETRY_CAP = 2.0

BatchPublish = Callable[[Sequence[OutgoingEvent]], Awaitable[tuple[set[str], str | None]]]


#: Also, for the rest of the transaction: no WAL flush wait at commit (see _take_lock), and
#: no sequential scans. Every relay statement finds its rows by id (the primary key, or the
#: unpublished rows' index), but with statistics older than the table (analysed while empty,
#: then thousands of creates) the planner read the whole outbox to mark five rows: 0.45 ms a
#: drain, 38 % of PostgreSQL's time under 16 creating clients.
_TRY_LOCK = text(
    "SELECT pg_try_advisory_xact_lock(:k)"
    " FROM set_config('synchronous_commit', 'off', true) AS durability,"
    " set_config('enable_seqscan', 'off', true) AS scans"
)


class _Busy(Exception):
    """Another relay held the lock for all of LOCK_WAIT."""


async def _take_lock(session: AsyncSession) -> None:
    """The relay lock for this transaction: at once if free, else queue for up to LOCK_WAIT.

    On PostgreSQL the transaction also commits without waiting for its WAL flush (and reads
    by index only, see _TRY_LOCK): it only marks rows published, and should a crash lose
    that mark the rows are sent again, which at-least-once delivery allows (consumers dedupe
    on the event id). The lock is then held for the publish round trip alone, not for a disk
    flush as well.
    """
    if dialects.name(session) != "postgresql":
        return  # BEGIN IMMEDIATE already serialises every SQLite writer
    got = await session.execute(_TRY_LOCK, {"k": RELAY_LOCK})
    if got.scalar_one():
        return
    try:
        await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'"))
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": RELAY_LOCK})
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise _Busy from error
        raise


def to_event(row: Any) -> OutgoingEvent:
    return OutgoingEvent(
        id=str(row.id),
        topic=row.topic,
        subject=str(row.task_id) if row.task_id else row.subject,
        data=row.payload,
        time=row.created_at,
        traceparent=row.traceparent,
    )


class OutboxRelay:
    """Drains right after a commit (kick) and on a slow sweep; stops at the first failure."""

    def __init__(
        self,
        sessionmaker: SessionMaker,
        publisher: Publisher,
        *,
        batch_size: int = 500,
        sweep_seconds: float = 5.0,
        max_backoff: float = 30.0,
        engine: AsyncEngine | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        #: PostgreSQL: rows from memory are marked on the driver (see _drain_fresh_pg)
        self.engine = engine
        self.publisher = publisher
        self.batch_size = batch_size
        self.sweep_seconds = sweep_seconds
        self.max_backoff = max_backoff
        self.failures = 0
        self.published = 0
        self.last_error: str | None = None
        self._kick = asyncio.Event()
        self._contended = False
        self._stopping = False
        #: rows this process just committed (see accept), published from memory
        self._fresh: list[OutboxRecord] = []
        #: waits for the rows of a group of creates under way, if any (GroupCommit.next_commit;
        #: set by the composition root)
        self.company: Callable[[float], Awaitable[None]] | None = None
        #: whether a group of creates is about to be written (GroupCommit.will_write; set by the
        #: composition root): its statement then settles the claimed rows published here
        self.writer_coming: Callable[[], bool] | None = None
        #: claimed rows published (and refused) whose claims are not settled yet: left for the
        #: next group's statement (take_settled), or the database was away (_publish_claimed)
        self._unsettled: tuple[list[int], list[int]] = ([], [])
        self._swept_at = 0.0

        #: one warning per streak of failures: the database away, or the publisher refusing
        self.draining = FailureStreak(logger, "outbox drain", "outbox.drain")
        self.publishing = FailureStreak(logger, "publishing outbox rows", "outbox.publish")

    def kick(self) -> None:
        self._kick.set()

    def accept(self, rows: Sequence[OutboxRecord]) -> None:
        """Rows a transaction of this process just committed: publish them from memory, without
        reading them back (the table drain stays the safety net; see drain)."""
        self._fresh.extend(rows)
        self.kick()

    async def stop(self, task: asyncio.Task[None], timeout: float = 5.0) -> None:
        """Let a drain in progress finish, then end `task` (the one running `run`).

        Cancelling a drain in the middle of its transaction could leave a SQLite write lock
        behind on a connection that is never returned; so cancel only if it will not finish.
        """
        self._stopping = True
        self.kick()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), timeout)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def run(self) -> None:
        """Drain until stopped: on each kick, each sweep, and backing off while publishing fails."""
        while not self._stopping:
            timeout = self._next_wait()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
            # arrives just after a kick, and the app's shutdown then waits for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._kick.wait()
            if self._fresh and not any(row.opens for row in self._fresh):
                await asyncio.sleep(LINGER_SECONDS)
            elif self.company is not None and self._fresh:
                await self.company(COMPANY_SECONDS)
            self._kick.clear()
            if self._stopping:
                await self._finish()
                return
            try:
                await self.drain()
            except Exception as error:  # the database may be away for a while: keep trying
                self.failures += 1
                self.last_error = str(error)
                self.draining.failed(error)
            else:
                self.draining.succeeded()

    async def _finish(self) -> None:
        """At shutdown: publish the claimed rows handed over and not sent yet, and settle those
        published, rather than leave them to other relays once their claims run out."""
        self.writer_coming = None  # no group of this process to settle them any more
        if any(r.claimed_until is not None for r in self._fresh) or any(self._unsettled):
            with contextlib.suppress(Exception):
                await self.drain()

    async def _writer_takes_them(self) -> bool:
        """Whether a group of creates is about to be written (its statement settles what was
        published): waits for the group being written, if any, as creates queue meanwhile."""
        if self.writer_coming is None:
            return False
        if not self.writer_coming() and self.company is not None:
            await self.company(COMPANY_SECONDS)
        return self.writer_coming()

    def take_settled(self) -> list[int]:
        """The claimed rows published and not settled yet, for the statement of the group of
        creates about to be written to mark published (it then owns them: give them back if it
        fails). Saves the round trip of settling them alone (see _publish_claimed)."""
        published, released = self._unsettled
        self._unsettled = ([], released)
        return published

    def give_back_settled(self, ids: list[int]) -> None:
        """Rows take_settled handed to a statement that failed: settled by the next drain."""
        published, released = self._unsettled
        self._unsettled = (ids + published, released)
        self.kick()

    def _next_wait(self) -> float:
        """Seconds until the next drain unless a kick comes first."""
        if self._contended:
            return 0.05
        if self.draining.failures:
            # The database is away: a try is one cheap query, and the rows must go out soon
            # after it is back (the API's relay may get no kick then, as nothing commits).
            return self.draining.backoff(0.5, DATABASE_RETRY_CAP)
        if self.failures:  # the publisher refuses: do not hammer the sidecar or broker
            return min(self.max_backoff, 0.5 * 2.0**self.failures)
        return self.sweep_seconds

    async def _publish(self, rows: Sequence[Any]) -> tuple[list[int], str | None]:
        """Publish rows, each task's in id order; tasks in parallel up to the publisher's limit.

        Returns the ids accepted and the first error. A task whose event failed publishes
        nothing after it, so its events never overtake one another.
        """
        publish_batch: BatchPublish | None = getattr(self.publisher, "publish_batch", None)
        if publish_batch is not None:
            return await self._publish_in_waves(rows, publish_batch)
        by_task: dict[Any, list[Any]] = defaultdict(list)
        for row in rows:
            by_task[row.ordering_key].append(row)
        done: list[int] = []
        errors: list[str] = []
        limit = asyncio.Semaphore(self.publisher.max_in_flight)

        async def publish_in_order(group: list[Any]) -> None:
            async with limit:
                for row in group:
                    if errors and self.publisher.max_in_flight == 1:
                        return
                    try:
                        await self.publisher.publish(to_event(row))
                    except PublishError as error:
                        errors.append(str(error))
                        return
                    done.append(row.id)

        if self.publisher.max_in_flight == 1:
            for group in by_task.values():
                await publish_in_order(group)
                if errors:
                    break
        else:
            await asyncio.gather(*(publish_in_order(g) for g in by_task.values()))
        return done, errors[0] if errors else None

    async def _publish_in_waves(
        self, rows: Sequence[Any], publish_batch: BatchPublish
    ) -> tuple[list[int], str | None]:
        """Wave k hands over the k-th event of every task at once (distinct tasks: any order).

        Each wave waits for the previous one to be accepted, so a task's events keep their
        id order; a task whose event was refused sends nothing after it.
        """
        by_task: dict[Any, list[Any]] = defaultdict(list)
        for row in rows:
            by_task[row.ordering_key].append(row)
        done: list[int] = []
        first_error: str | None = None
        stopped: set[Any] = set()
        for wave in itertools.count():
            current = [
                group[wave]
                for key, group in by_task.items()
                if wave < len(group) and key not in stopped
            ]
            if not current:
                break
            accepted, error = await publish_batch([to_event(r) for r in current])
            for row in current:
                if str(row.id) in accepted:
                    done.append(row.id)
                else:
                    stopped.add(row.ordering_key)
            if error is not None and first_error is None:
                first_error = error
        return done, first_error

    async def drain(self) -> int:
        """Publish what this process just committed from memory, and every unpublished row from
        the table when that cannot be done, now and then (a sweep), or after a failure."""
        fresh, self._fresh = self._fresh, []
        # a key's rows go out in id order, whatever order they came in
        fresh.sort(key=operator.attrgetter("id"))
        claimed = [r for r in fresh if r.claimed_until is not None]
        sent = 0
        if claimed or any(self._unsettled):
            # first: a later row of their tasks among the rest waits until they are marked
            fresh = [r for r in fresh if r.claimed_until is None]
            sent = await self._publish_claimed(claimed, settle_now=bool(fresh))
        loop = asyncio.get_running_loop()
        due = loop.time() - self._swept_at >= self.sweep_seconds
        if claimed and not fresh and not self._contended and not due:
            return sent
        if fresh and not self.failures and not self._contended and not due:
            drain_fresh = self._drain_fresh if self.engine is None else self._drain_fresh_pg
            try:
                if await drain_fresh(fresh):
                    return sent + len(fresh)
            except _Busy:
                self._contended = True
                return sent
        self._swept_at = loop.time()
        return sent + await self._drain_table()

    async def _publish_claimed(self, rows: list[OutboxRecord], *, settle_now: bool = False) -> int:
        """Publish rows claimed for this process (a group of creates' first events, see
        service/usecases/group_commit.py) and settle their claims in one round trip: the
        published marked, the refused released to the table drain. How many went out.

        While creates keep coming, the published are left to the statement of the next group
        (take_settled), which marks them without a round trip of their own; not with
        `settle_now` (rows of this drain may come after them, and wait until they are marked).

        No relay lock and no transaction around the publishing: other relays leave a claimed
        row alone, and every later row of its task behind it, until it is settled (or its
        claim runs out: this process is taken for dead). After a refusal the rows are not tried
        here but released at once: the table drain retries with its backoff, in order.
        """
        assert self.engine is not None  # claims are made on PostgreSQL only
        done: list[int] = []
        refused: list[int] = []
        if rows and self.failures:
            refused = [r.id for r in rows]
        elif rows:
            done, error = await self._publish(rows)
            self.published += len(done)
            _observe(rows, done, error)
            sent = set(done)
            refused = [r.id for r in rows if r.id not in sent]
            if error is None:
                self.publishing.succeeded()
            else:
                self.failures += 1
                self.last_error = error
                self.publishing.failed(PublishError(error), outbox_id=refused[:1])
        published, released = self._unsettled  # read now: a statement may take some meanwhile
        self._unsettled = (published + done, released + refused)
        if not settle_now and not self._unsettled[1] and await self._writer_takes_them():
            return len(done)  # the next group's statement marks them (take_settled)
        # what is left: a statement may have taken some meanwhile, or handed some back
        published, released = self._unsettled
        self._unsettled = ([], [])
        try:
            async with driver.connection(self.engine) as connection:
                await outbox_rows.settle_claims(connection, published, released, utcnow())
        except BaseException:
            later_published, later_released = self._unsettled
            self._unsettled = (published + later_published, released + later_released)
            raise
        return len(done)

    async def _drain_fresh(self, rows: list[OutboxRecord]) -> bool:
        """Publish `rows` as they were committed and mark them, in one short transaction; False
        when the table must be drained instead (a row of theirs would overtake an older one of
        its task still waiting, or the publisher refused).

        The first event of a new task needs no check: nothing of its task can be older. Other
        rows are checked (their tasks' older rows, written by another process, may still wait in
        the table).
        """
        async with session_scope(self.sessionmaker) as session:
            # Under the relay lock (on SQLite: its one writer, taken by the first statement), so
            # a table drain never reads these rows while they are being published here.
            await _take_lock(session)
            repo = OutboxRepository(session)
            later = [r for r in rows if not r.opens]
            if later and await repo.earlier_unpublished(later):
                return False
            # Marked before they go out, in this transaction (nobody sees the mark before the
            # commit, and the lock keeps other drains away): one statement both tells which
            # rows still wait (another drain may have sent some) and marks them.
            waiting = await repo.mark_waiting([r.id for r in rows], utcnow())
            return await self._publish_marked([r for r in rows if r.id in waiting], repo.unmark)

    async def _drain_fresh_pg(self, rows: list[OutboxRecord]) -> bool:
        """_drain_fresh on PostgreSQL's driver, in three round trips: the transaction begun
        with its settings; the lock, the order check and the marks in one statement; the
        commit after publishing. Through SQLAlchemy the same took five, and ~1.3 ms of CPU
        against ~0.4 ms (service/db/driver.py)."""
        assert self.engine is not None
        async with (
            driver.connection(self.engine) as connection,
            driver.transaction(connection, outbox_rows.RELAY_BEGIN),
        ):
            marked = await outbox_rows.lock_and_mark(connection, RELAY_LOCK, rows, utcnow())
            if not marked.locked:
                try:
                    await outbox_rows.wait_for_lock(connection, RELAY_LOCK, LOCK_WAIT)
                except asyncpg.LockNotAvailableError as timed_out:
                    raise _Busy from timed_out
                # held now (the lock is re-entrant): the same statement takes it at once
                marked = await outbox_rows.lock_and_mark(connection, RELAY_LOCK, rows, utcnow())
            if marked.older_waits:
                return False
            rows = [r for r in rows if r.id in marked.ids]
            return await self._publish_marked(
                rows, functools.partial(outbox_rows.unmark_alone, connection)
            )

    async def _publish_marked(
        self, rows: list[OutboxRecord], unmark: Callable[[list[int]], Awaitable[None]]
    ) -> bool:
        """Publish rows a fresh drain marked in its transaction; those the publisher refused
        are unmarked there (they wait again, for the table drain). Whether all went out."""
        done, error = await self._publish(rows)
        self.published += len(done)
        _observe(rows, done, error)
        if error is None:
            self.publishing.succeeded()
            return True
        sent = set(done)
        await unmark([r.id for r in rows if r.id not in sent])
        self.failures += 1
        self.last_error = error
        self.publishing.failed(PublishError(error), outbox_id=[r.id for r in rows][:1])
        return False

    async def _drain_table(self) -> int:
        """Publish the rows that waited in the table when the drain began, in id order; how
        many went out.

        Rows numbered after that are left to the processes that write them (each publishes its
        own from memory) or to the next drain: while other processes keep committing, a drain
        that followed the table to its end would read back, row by row, what they are about to
        publish anyway (two busy workers: 59 % of all rows went out that way).
        """
        sent = 0
        self._contended = False
        up_to: int | None = None
        after = 0
        #: keys of rows another relay's claim holds: none of their later rows may go out now
        held: set[Any] = set()
        while True:
            try:
                count, up_to, after, more = await self._drain_batch(up_to, after, held)
            except _Busy:
                # Another relay is draining (it keeps the order) but may have read its
                # batch before our rows committed: look again shortly.
                self._contended = True
                return sent
            sent += count
            if not more:
                return sent

    async def _drain_batch(
        self, up_to: int | None, after: int, held: set[Any]
    ) -> tuple[int, int, int, bool]:
        """One batch under the relay lock, of rows numbered above `after` and up to `up_to`
        (the newest row when None), but for rows another process claimed and the later rows of
        their keys (adding those keys to `held`): (rows sent, the bound, the last row read,
        whether to go on with the next batch)."""
        async with session_scope(self.sessionmaker) as session:
            await _take_lock(session)
            repo = OutboxRepository(session)
            if up_to is None:
                up_to = await repo.last_id()
            batch = await repo.next_batch(self.batch_size, up_to, after)
            if not batch:
                self.failures = 0
                return 0, up_to, after, False
            rows, waits_behind = _unclaimed(batch, held, utcnow())
            if waits_behind:
                # a row waits behind a claimed one: its claim is settled soon (or runs out),
                # so look again shortly. Claimed rows alone are their writer's to publish.
                self._contended = True
            more = len(batch) >= self.batch_size
            after = batch[-1].id
            done, error = await self._publish(rows)
            await repo.mark_published(done, utcnow())
            self.published += len(done)
            _observe(rows, done, error)
            if error is None:
                self.failures = 0
                self.publishing.succeeded()
                return len(done), up_to, after, more
            self.failures += 1
            self.last_error = error
            failed = [r.id for r in rows if r.id not in set(done)][:1]
            for row_id in failed:
                await repo.mark_failed(row_id, error)
            self.publishing.failed(PublishError(error), outbox_id=failed)
            return len(done), up_to, after, False


def _unclaimed(
    rows: Sequence[OutboxRecord], held: set[Any], now: datetime
) -> tuple[list[OutboxRecord], bool]:
    """The rows a table drain may publish: not a row claimed by its writer until after `now`,
    nor any later row of its key (the keys are added to `held`, for the batches after); and
    whether such a later row, not claimed itself, waits behind a claim."""
    free = []
    waits_behind = False
    for row in rows:
        claimed = row.claimed_until is not None and row.claimed_until > now
        if row.ordering_key in held:
            waits_behind = waits_behind or not claimed
            continue
        if claimed:
            held.add(row.ordering_key)
            continue
        free.append(row)
    return free, waits_behind


def _observe(rows: Sequence[Any], done: list[int], error: str | None) -> None:
    """Published rows and their lag (commit to publication); a refused publish."""
    metrics.OUTBOX_PUBLISHED.inc(len(done))
    if error is not None:
        metrics.OUTBOX_PUBLISH_FAILURES.inc()
    if not done:
        return
    now, sent = utcnow(), set(done)
    for row in rows:
        if row.id in sent:
            metrics.OUTBOX_LAG_SECONDS.observe(max(0.0, (now - row.created_at).total_seconds()))
