"""Live streams of one task or of a filtered task list, fed by the process's change feed.

Every event has an id that is a position in what the service records, so a client that
reconnects with Last-Event-ID is replayed exactly what it missed, from the database:

* one task: `<outbox id>-<log id>`, the last outbox row (state change or progress notice) and
  the last log line of the task the client has seen; both grow per task.
* a list: `<outbox id>`, the last outbox row seen; a replay scans at most REPLAY_MAX rows
  after it, and a client further behind gets a fresh snapshot instead (`"reset": true`).
"""

from __future__ import annotations

import functools
import json
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from service.db.repositories.changes import ChangeRepository, Notice
from service.db.repositories.history import LogRecord
from service.db.repositories.tasks import TaskFilters
from service.db.unit_of_work import Units
from service.domain.callers import Caller
from service.domain.events import EventType
from service.events.changefeed import ChangeFeed, Subscription
from service.usecases import queries, tasks as task_usecases
from service.usecases.views import LogView, snapshot

#: Rows one replay query reads; a one-task replay pages on, a list replay stops (REPLAY_MAX).
REPLAY_PAGE = 1000
#: Outbox rows a list stream's resume may scan; further behind, it starts from a snapshot.
REPLAY_MAX = 10_000
_TASK_ID = re.compile(r"^(\d{1,18})-(\d{1,18})$")
_LIST_ID = re.compile(r"^\d{1,18}$")


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One Server-Sent Event: its id (a resume position), its name and its data as JSON text."""

    id: str
    event: str
    json: str


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


#: A notice's event, made once for all the streams that show it (a change seen by 200 clients
#: is serialised once, not 200 times); the most recent notices only. Keyed by the row's id
#: with its task and time (apps on other databases may share a process), and the event id.
_EVENTS: OrderedDict[tuple[int, UUID, datetime, str], StreamEvent] = OrderedDict()
_EVENTS_SIZE = 4096


def _notice_event(notice: Notice, event_id: str) -> StreamEvent:
    key = (notice.id, notice.task_id, notice.created_at, event_id)
    event = _EVENTS.get(key)
    if event is None:
        topic = notice.topic
        name = EventType(topic).short if topic in EventType._value2member_map_ else "task"
        data = {"type": topic, "at": notice.created_at.isoformat(), "task": notice.payload}
        event = _EVENTS[key] = StreamEvent(event_id, name, _dumps(data))
        if len(_EVENTS) > _EVENTS_SIZE:
            _EVENTS.popitem(last=False)
    return event


def task_position(last_event_id: str | None) -> tuple[int, int] | None:
    """Where a task stream resumes; None (start with a snapshot) for no id or one this stream
    cannot have sent (EventSource clients resend whatever id they last saw)."""
    found = _TASK_ID.match(last_event_id.strip()) if last_event_id else None
    return (int(found[1]), int(found[2])) if found else None


def list_position(last_event_id: str | None) -> int | None:
    """Where a list stream resumes; None (a snapshot) for no id or an unknown one."""
    value = last_event_id.strip() if last_event_id else ""
    return int(value) if _LIST_ID.match(value) else None


def _log_event(line: LogRecord, event_id: str) -> StreamEvent:
    view = LogView.model_validate(line).model_dump(mode="json", by_alias=True)
    return StreamEvent(event_id, "log", _dumps({"type": "log", "log": view}))


def _merged(notices: list[Notice], lines: list[LogRecord]) -> list[Notice | LogRecord]:
    items: list[Notice | LogRecord] = [*notices, *lines]
    items.sort(key=lambda i: (i.created_at, isinstance(i, LogRecord), i.id))
    return items


@dataclass
class TaskStream:
    """An authorised, subscribed stream of one task; `events()` runs it, and always closes it."""

    units: Units
    feed: ChangeFeed
    caller: Caller
    task_id: UUID
    position: tuple[int, int] | None
    subscription: Subscription
    #: the last outbox row and log line sent (the position the stream has reached)
    _at: tuple[int, int] = (0, 0)

    async def batches(self) -> AsyncIterator[list[StreamEvent]]:
        """The stream's events, in the batches they became known in (each is sent at once)."""
        try:
            async for batch in self._batches():
                yield batch
        finally:
            self.feed.unsubscribe(self.subscription)

    async def _batches(self) -> AsyncIterator[list[StreamEvent]]:
        if self.position is None:
            yield [await self._snapshot()]
        else:
            async for batch in self._replay(*self.position):
                yield batch
        async for batch in self._live():
            yield batch

    async def _snapshot(self) -> StreamEvent:
        async with self.units() as uow:
            # the heads before the task: a change committed between the two reads is then in
            # the snapshot and sent again live (harmless), never counted as sent but missing
            # from the snapshot (read the other way round, it would be skipped)
            self._at = await ChangeRepository(uow.session).task_heads(self.task_id)
            task = await task_usecases.get(uow, self.caller, self.task_id)
        data = {"type": "snapshot", "task": snapshot(task)}
        return StreamEvent(f"{self._at[0]}-{self._at[1]}", "snapshot", _dumps(data))

    async def _replay(self, outbox: int, logs: int) -> AsyncIterator[list[StreamEvent]]:
        """What the client missed, from the database, a page at a time."""
        more = True
        while more:
            async with self.units() as uow:
                repo = ChangeRepository(uow.session)
                notices = await repo.notices_after(outbox, REPLAY_PAGE, self.task_id)
                lines = await repo.logs_after(logs, REPLAY_PAGE, self.task_id)
            more = len(notices) >= REPLAY_PAGE or len(lines) >= REPLAY_PAGE
            replayed = []
            for item in _merged(notices, lines):
                if isinstance(item, Notice):
                    outbox = max(outbox, item.id)
                    replayed.append(_notice_event(item, f"{outbox}-{logs}"))
                else:
                    logs = max(logs, item.id)
                    replayed.append(_log_event(item, f"{outbox}-{logs}"))
            self._at = (outbox, logs)
            if replayed:
                yield replayed

    async def _live(self) -> AsyncIterator[list[StreamEvent]]:
        """What the feed routes here, a batch per read of it; ends after `deleted`, or when
        the client fell too far behind (it resumes by id), its time is up or the API stops."""
        outbox, logs = self._at
        while True:
            batch: list[StreamEvent] = []
            ended = False
            for live in await self.subscription.take():
                if live is None:
                    ended = True
                    break
                if isinstance(live, Notice):
                    if live.id <= outbox:
                        continue
                    outbox = live.id
                    batch.append(_notice_event(live, f"{outbox}-{logs}"))
                    if live.topic == EventType.DELETED.value:
                        ended = True
                        break
                elif live.id > logs:
                    logs = live.id
                    batch.append(_log_event(live, f"{outbox}-{logs}"))
            if batch:
                yield batch
            if ended:
                return


async def open_task_stream(
    units: Units, feed: ChangeFeed, caller: Caller, task_id: UUID, last_event_id: str | None
) -> TaskStream:
    """Check the position and that the caller may see the task (404 otherwise), then take a
    place in the feed (503 when the process serves its maximum): all before the stream starts."""
    position = task_position(last_event_id)
    async with units() as uow:
        await task_usecases.get(uow, caller, task_id)
    subscription = await feed.subscribe(task_id)
    return TaskStream(units, feed, caller, task_id, position, subscription)


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


#: The text columns GET /tasks searches (TaskRepository._search), as a snapshot names them.
SEARCHED_TEXT = ("taskType", "entityType", "fileName", "errorMessage", "name", "description")
#: The JSON columns it searches as text (keys as well as values).
SEARCHED_JSON = ("params", "result")


def _found(task: dict[str, Any], search: str) -> bool:
    """`search` (lower case) in a searched column, or inside params or result as JSON text."""
    if any(search in str(task.get(f) or "").lower() for f in SEARCHED_TEXT):
        return True
    for name in SEARCHED_JSON:
        value = task.get(name)
        if value is not None:
            text = json.dumps(value, ensure_ascii=False).lower()
            if search in text or json.dumps(search)[1:-1] in text:
                return True
    return False


def _created_within(task: dict[str, Any], start: datetime | None, end: datetime | None) -> bool:
    if start is None and end is None:
        return True
    created = _instant(task.get("createdAt"))
    if created is None:
        return False
    return (start is None or created >= start) and (end is None or created <= end)


def matcher(filters: TaskFilters) -> Callable[[Notice], bool]:
    """The list's filters applied to a task snapshot, as GET /tasks applies them in SQL: a live
    list shows what the same list would read back from the database.

    Streams with the same filters (and owner) get the same function: the change feed filters
    a change once for all of them (200 dashboards on "all tasks" cost one test, not 200)."""
    return _matcher(replace(filters, status=tuple(filters.status), tags=tuple(filters.tags)))


@functools.lru_cache(maxsize=1024)
def _matcher(filters: TaskFilters) -> Callable[[Notice], bool]:
    statuses = {s.value for s in filters.status}
    search = filters.search.lower() if filters.search else None
    tags = set(filters.tags)

    #: (snapshot key, the value it must have): owner, requestedBy, types, queue
    equal = [
        (key, value)
        for key, value in (
            ("requestedBy", filters.owner),
            ("requestedBy", filters.requested_by),
            ("taskType", filters.task_type),
            ("entityType", filters.entity_type),
            ("queue", filters.queue),
        )
        if value is not None
    ]

    def accepts(notice: Notice) -> bool:
        task = notice.payload
        if any(task.get(key) != value for key, value in equal):
            return False
        if statuses and task.get("status") not in statuses:
            return False
        if tags and not tags.issubset(task.get("tags") or ()):
            return False
        if not _created_within(task, filters.start_date, filters.end_date):
            return False
        return search is None or _found(task, search)

    return accepts


@dataclass
class ListStream:
    """An authorised, subscribed stream of the tasks a list's filters select."""

    units: Units
    feed: ChangeFeed
    caller: Caller
    filters: TaskFilters
    page_size: int
    params_cap: int
    position: int | None
    subscription: Subscription

    async def batches(self) -> AsyncIterator[list[StreamEvent]]:
        """The stream's events, in the batches they became known in (each is sent at once)."""
        try:
            async for batch in self._batches():
                yield batch
        finally:
            self.feed.unsubscribe(self.subscription)

    async def _snapshot(self, *, reset: bool) -> tuple[int, StreamEvent]:
        async with self.units() as uow:
            head, _ = await ChangeRepository(uow.session).heads()
            page = await queries.list_tasks(
                uow,
                self.caller,
                self.filters,
                page=1,
                page_size=self.page_size,
                cursor=None,
                params_cap=self.params_cap,
            )
        items = [item.model_dump(mode="json", by_alias=True) for item in page.items]
        data: dict[str, Any] = {"type": "snapshot", "items": items, "total": page.total}
        if reset:
            data["reset"] = True
        return head, StreamEvent(str(head), "snapshot", _dumps(data))

    async def _batches(self) -> AsyncIterator[list[StreamEvent]]:
        accepts = self.subscription.accepts
        assert accepts is not None
        if self.position is None:
            start, event = await self._snapshot(reset=False)
            yield [event]
        else:
            async with self.units() as uow:
                notices = await ChangeRepository(uow.session).notices_after(
                    self.position, REPLAY_MAX
                )
            if len(notices) >= REPLAY_MAX:
                start, event = await self._snapshot(reset=True)
                yield [event]
            else:
                start = max([self.position, *(n.id for n in notices)])
                replayed = [_notice_event(n, str(n.id)) for n in notices if accepts(n)]
                if replayed:
                    yield replayed
        while True:
            items = await self.subscription.take()
            batch = [
                _notice_event(item, str(item.id))
                for item in items
                if isinstance(item, Notice) and item.id > start
            ]
            if batch:
                yield batch
            if None in items:
                return


async def open_list_stream(
    units: Units,
    feed: ChangeFeed,
    caller: Caller,
    filters: TaskFilters,
    *,
    page_size: int,
    params_cap: int,
    last_event_id: str | None,
) -> ListStream:
    """Users follow their own tasks, admins everyone's (as GET /tasks lists them)."""
    position = list_position(last_event_id)
    if not caller.sees_all:
        filters = replace(filters, owner=caller.user_id)
    subscription = await feed.subscribe(None, matcher(filters))
    return ListStream(units, feed, caller, filters, page_size, params_cap, position, subscription)
