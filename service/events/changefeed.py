"""The change feed: one reader per API process that fans what changed out to its live streams.

What a stream shows is what the service already records: outbox rows (every state change and
the throttled progress notices, each with the task's snapshot) and task_logs rows. The feed
never polls per client. It is woken by

* the unit of work of this process, right after a commit that wrote outbox rows or logs
  (`wake`, wired by the API app to `Resources.after_commit`): the embedded mode's path;
* a PostgreSQL NOTIFY (migration 0017: one per committed transaction that wrote them, by any
  process), received on one LISTEN connection per API process: the API + worker split;
* a timer (`OPS_STREAM_POLL_SECONDS`) while streams are open: the safety net for a dropped
  notification or a lost LISTEN connection.

and on each wake reads, in one query per table, what was written since the last row it saw.
Nothing a wake announces is lost when the notification is: the next wake reads it.

Ids are taken in insert order but may commit out of order on PostgreSQL (two transactions,
e.g. a create's statement waiting on its WAL flush while a worker's transition commits). A
stream's ids are resume positions, so rows go out in id order: a row above an id that is not
there yet is held for up to HOLD_SECONDS, until the lower one commits. An id missing longer is
a long transaction or a rolled-back insert: the rows above it go out, and it is still watched
for GAP_SECONDS and sent late if it commits (or forgotten: a rolled-back insert leaves a hole).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar
from uuid import UUID

from sqlalchemy.engine import URL

from service.db.engine import SessionMaker, session_scope
from service.db.notifications import Listener, raw_dsn
from service.db.repositories.changes import ChangeRepository, Notice
from service.db.repositories.history import LogRecord
from service.domain.errors import Unavailable
from service.logging import FailureStreak

logger = logging.getLogger(__name__)

#: How long rows wait for a lower id that has not committed yet, so that they go out in order.
HOLD_SECONDS = 1.0
#: How long an id below the highest one seen may stay missing before it counts as a hole.
GAP_SECONDS = 10.0
#: Holes watched at most (a larger jump of a sequence is not a run of open transactions).
MAX_GAP = 1000
#: Rows read per table per query; a full read is followed by another at once.
READ_LIMIT = 1000
#: Items a stream may have waiting; a client that falls this far behind is disconnected (it
#: reconnects with Last-Event-ID and is replayed from the database).
QUEUE_SIZE = 2000
#: Wakes that arrive within this long share one read and one send per stream (the default of
#: OPS_STREAM_BATCH_SECONDS): a burst of commits costs one query, and each client one write.
COALESCE_SECONDS = 0.05

#: A read is handed to its streams in groups of at least FAN_OUT, with a pause of FAN_OUT_PAUSE
#: between groups and at most FAN_OUT_PAUSES pauses: 200 streams are reached over ~50 ms
#: rather than in one burst, 1,000 in larger groups over the same time.
FAN_OUT = 4
FAN_OUT_PAUSE = 0.001
FAN_OUT_PAUSES = 50
#: Before each group, requests being answered go first: the feed waits for them, checking every
#: YIELD_STEP, for at most YIELD_SECONDS over a whole read (bench/README.md, streams).
YIELD_STEP = 0.001
YIELD_SECONDS = 0.05

Item = Notice | LogRecord
Accepts = Callable[[Notice], bool]


class TooManyStreams(Unavailable):
    """This API process serves as many streams as it may; try again shortly or another replica."""


@dataclass(eq=False)
class Subscription:
    """One open stream: the items the feed routes to it, in the order it read them.

    A read of the feed hands each stream all its items at once (`put_all`) and wakes it once;
    the stream takes them all (`take`) and writes them in one send.
    """

    task_id: UUID | None
    accepts: Accepts | None
    _items: list[Item] = field(default_factory=list)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: no more items: the client fell QUEUE_SIZE items behind (it resumes by id), its time is
    #: up, or the process stops; the stream ends after what it was handed before
    ended: bool = False

    @property
    def waiting(self) -> int:
        """Items handed over and not taken yet."""
        return len(self._items)

    def put_all(self, items: Sequence[Item]) -> None:
        if self.ended or not items:
            return
        if len(self._items) + len(items) > QUEUE_SIZE:
            self.end()
            return
        self._items.extend(items)
        self._ready.set()

    async def take(self) -> list[Item | None]:
        """Everything handed over since the last take, waiting for at least one item; None
        last when the stream has ended."""
        await self._ready.wait()
        self._ready.clear()
        items: list[Item | None] = [*self._items]
        self._items.clear()
        if self.ended:
            items.append(None)
        return items

    def end(self) -> None:
        """End the stream after what it was handed (e.g. its time is up: the client resumes by
        id). A timer calls this once, where a timeout around every read would cost a task each."""
        self.ended = True
        self._ready.set()


class _Row(Protocol):
    @property
    def id(self) -> int: ...


R = TypeVar("R", bound=_Row)


class Position(Generic[R]):
    """The highest id read of one table, the ids below it still missing (they may commit late),
    and the rows read but held back until the missing ids below them come (or are given up)."""

    def __init__(self, top: int) -> None:
        self.top = top
        self.missing: dict[int, float] = {}
        self._held: dict[int, R] = {}

    @property
    def holding(self) -> bool:
        """Rows wait for a lower id: read again soon."""
        return bool(self._held)

    def late(self, now: float) -> list[int]:
        """Missing ids still worth a look (the others are holes: forgotten)."""
        for i in [i for i, since in self.missing.items() if now - since > GAP_SECONDS]:
            del self.missing[i]
        return sorted(self.missing)

    def take(self, rows: Iterable[R], now: float) -> list[R]:
        """Note rows read; return, in id order, those to send now: rows not seen before, but
        none above an id missing for less than HOLD_SECONDS (those wait for it)."""
        for row in rows:
            i = row.id
            if i in self.missing:
                del self.missing[i]
                self._held[i] = row
            elif i > self.top:
                if i - self.top - 1 <= MAX_GAP:
                    self.missing.update((m, now) for m in range(self.top + 1, i))
                self.top = i
                self._held[i] = row
        waited_for = [i for i, since in self.missing.items() if now - since < HOLD_SECONDS]
        below = min(waited_for, default=None)
        ready = sorted(i for i in self._held if below is None or i < below)
        return [self._held.pop(i) for i in ready]

    def skip_to(self, top: int) -> None:
        """Nobody follows this table now: start again from `top`, forgetting what waited."""
        self.top = max(self.top, top)
        self.missing.clear()
        self._held.clear()


class ChangeFeed:
    """Reads what changed once per wake and routes it to the subscribed streams."""

    def __init__(
        self,
        sessionmaker: SessionMaker,
        *,
        max_clients: int,
        poll_seconds: float,
        listen_url: URL | None = None,
        coalesce_seconds: float = COALESCE_SECONDS,
        requests_first: Callable[[], bool] | None = None,
    ) -> None:
        """`requests_first`: whether the process is answering requests now (they are served
        before the streams are handed a read, within YIELD_SECONDS)."""
        self.sessionmaker = sessionmaker
        self.requests_first = requests_first
        self.max_clients = max_clients
        self.poll_seconds = poll_seconds
        self.coalesce_seconds = coalesce_seconds
        self.listen_url = listen_url
        self.reads = 0
        self._by_task: dict[UUID, set[Subscription]] = {}
        self._lists: set[Subscription] = set()
        self._count = 0
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._positions: tuple[Position[Notice], Position[LogRecord]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: Listener | None = None
        self._listener_lost = asyncio.Event()
        self.reading = FailureStreak(logger, "stream change feed read", "streams.read")
        self.listening = FailureStreak(logger, "stream LISTEN connection", "streams.listen")

    @property
    def clients(self) -> int:
        return self._count

    def wake(self) -> None:
        """Something was committed: read it soon (safe to call from any callback)."""
        self._wake.set()

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run(), name="stream-feed"))
        if self.listen_url is not None:
            self._listener = Listener(raw_dsn(self.listen_url), self.wake, self._on_lost)
            self._tasks.append(asyncio.create_task(self._listen(), name="stream-listen"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
        for sub in [*self._lists, *(s for subs in self._by_task.values() for s in subs)]:
            sub.end()

    async def subscribe(self, task_id: UUID | None, accepts: Accepts | None = None) -> Subscription:
        """A new stream's subscription: it receives everything committed after this returns
        (the stream then reads its starting state, and drops what that already covered)."""
        if self._count >= self.max_clients:
            raise TooManyStreams(
                f"this API process already serves {self.max_clients} streams; try again shortly"
            )
        sub = Subscription(task_id, accepts)
        self._count += 1
        try:
            async with self._lock:
                if self._positions is None:  # the first stream: start from what exists now
                    async with session_scope(self.sessionmaker) as session:
                        outbox, logs = await ChangeRepository(session).heads()
                    self._positions = (Position[Notice](outbox), Position[LogRecord](logs))
                if task_id is None:
                    self._lists.add(sub)
                else:
                    self._by_task.setdefault(task_id, set()).add(sub)
        except BaseException:
            self._count -= 1
            raise
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub.task_id is None:
            if sub in self._lists:
                self._lists.discard(sub)
                self._count -= 1
        else:
            subs = self._by_task.get(sub.task_id)
            if subs is not None and sub in subs:
                subs.discard(sub)
                self._count -= 1
                if not subs:
                    del self._by_task[sub.task_id]
        if self._count == 0:
            self._positions = None  # nobody listens: stop reading until a stream opens

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            await asyncio.sleep(self.coalesce_seconds)
            self._wake.clear()
            if self._positions is None:
                continue
            try:
                more = await self.read()
            except Exception as error:  # the database may be away: the timer tries again
                self.reading.failed(error)
                await asyncio.sleep(min(self.poll_seconds, 1.0))
                self._wake.set()
            else:
                self.reading.succeeded()
                if more:
                    self._wake.set()

    async def read(self) -> bool:
        """Read what changed since the last read and route it; True when there is more to read
        (a full page, or rows held for a lower id)."""
        async with self._lock:
            positions = self._positions
            if positions is None:
                return False
            outbox, logs = positions
            now = time.monotonic()
            async with session_scope(self.sessionmaker) as session:
                repo = ChangeRepository(session)
                notices = await repo.notices_after(outbox.top, READ_LIMIT)
                late_notices = outbox.late(now)
                if late_notices:
                    notices += await repo.notices_in(late_notices)
                lines: list[LogRecord] = []
                if self._by_task:  # list streams show no log lines
                    lines = await repo.logs_after(logs.top, READ_LIMIT)
                    late_logs = logs.late(now)
                    if late_logs:
                        lines += await repo.logs_in(late_logs)
                else:
                    logs.skip_to(await repo.log_head())
            self.reads += 1
            items: list[Item] = [*outbox.take(notices, now), *logs.take(lines, now)]
            holding = outbox.holding or logs.holding
        await self._route(items)
        return len(notices) >= READ_LIMIT or len(lines) >= READ_LIMIT or holding

    async def _route(self, items: list[Item]) -> None:
        """Hand each stream what it follows of `items`, at once (one wake per stream).

        Streams are woken a group at a time, with a pause between groups and, before each
        group, a wait for the requests being answered: a woken stream writes to its client at
        once, and 200 of them in one go held the loop (and every request waiting on it) for
        the whole round. A bare turn of the loop between groups was not enough: a create still
        met the burst of writes, in this process and on the machine (the clients read them at
        the same moment). Streams with the same predicate (the same filters) share its
        verdict: a change is tested once per filter. A list stream gets its notices in id order
        (its resume positions); a task stream its notices and log lines merged by time.
        """
        for_task: dict[Subscription, list[Item]] = {}
        if self._by_task:
            merged = sorted(items, key=lambda i: (i.created_at, isinstance(i, LogRecord), i.id))
            for item in merged:
                for sub in self._by_task.get(item.task_id, ()):
                    for_task.setdefault(sub, []).append(item)
        notices = [item for item in items if isinstance(item, Notice)]
        shown: dict[Accepts | None, list[Notice]] = {None: notices}
        handed: list[tuple[Subscription, Sequence[Item]]] = [*for_task.items()]
        for sub in self._lists:
            accepts = sub.accepts
            mine = shown.get(accepts)
            if mine is None and accepts is not None:
                mine = shown[accepts] = [n for n in notices if accepts(n)]
            handed.append((sub, mine or ()))
        handed = [(sub, its) for sub, its in handed if its and not sub.ended]
        group = max(FAN_OUT, -(-len(handed) // FAN_OUT_PAUSES))
        budget = YIELD_SECONDS
        for start in range(0, len(handed), group):
            if start:
                await asyncio.sleep(FAN_OUT_PAUSE)
            budget = await self._after_requests(budget)
            for sub, its in handed[start : start + group]:
                sub.put_all(its)

    async def _after_requests(self, budget: float) -> float:
        """Wait while the process answers requests, for at most `budget` seconds; what is left
        of it. A stream's events may wait a few milliseconds; a request then waits for none."""
        loop = asyncio.get_running_loop()
        while budget > 0 and self.requests_first is not None and self.requests_first():
            began = loop.time()
            await asyncio.sleep(YIELD_STEP)
            budget -= loop.time() - began
        return budget

    def _on_lost(self) -> None:
        self._listener_lost.set()

    async def _listen(self) -> None:
        """Hold the LISTEN connection; after reconnecting, read what came meanwhile."""
        assert self._listener is not None
        while True:
            try:
                if not self._listener.connected:
                    await self._listener.connect()
                    self._listener_lost.clear()
                    self.wake()
                self.listening.succeeded()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._listener_lost.wait()
                await self._listener.check()
            except Exception as error:
                self.listening.failed(error)
                with contextlib.suppress(Exception):
                    await self._listener.close()
                await asyncio.sleep(self.listening.backoff(0.5, 5.0))
