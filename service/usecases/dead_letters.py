"""Dead letters: record what Dapr gave up on, so nothing is lost silently, list them, and
replay them.

A replay re-publishes the dead letter's CloudEvent (its type as the topic, its data, subject
and traceparent) through the outbox: a new outbox row in the same transaction that marks the
dead letter replayed and writes an audit row, so the relay publishes it like any event, under
a new event id (the outbox row's), once the transaction commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from service.db.repositories.dead_letters import (
    DeadLetterFilters,
    DeadLetterRecord,
    DeadLetterRepository,
)
from service.db.repositories.outbox import NewOutboxRow
from service.db.unit_of_work import UnitOfWork
from service.domain import events
from service.domain.callers import ADMIN_ROLE, Caller
from service.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from service.usecases import history
from service.usecases.views import CamelModel

#: the most dead letters one replay by filter re-publishes
MAX_REPLAY = 1_000

#: the event types a replay may publish: this service's own topics, nothing else
REPLAYABLE: frozenset[str] = frozenset(
    t.value
    for kind in (
        events.EventType,
        events.ScheduleEventType,
        events.NotificationEventType,
        events.SettingsEventType,
        events.QueueEventType,
    )
    for t in kind
)


class DeadLetterView(CamelModel):
    id: int
    event_id: str
    event_type: str | None
    topic: str | None
    task_id: UUID | None
    payload: dict[str, Any]
    received_at: datetime
    replayed_at: datetime | None = None
    replayed_by: str | None = None


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    #: dead letters the filter matched
    matched: int
    #: False for a dry run: nothing was changed
    applied: bool
    #: dead letters re-published (their outbox rows written)
    replayed: int = 0
    #: matched but not replayable (an event type not this service's, or no JSON data)
    skipped: int = 0


async def record(
    uow: UnitOfWork, event: dict[str, Any], *, topic: str | None, now: datetime
) -> bool:
    """Store a dead-lettered CloudEvent once per event id."""
    data = event.get("data")
    subject = event.get("subject")
    task_id = None
    for candidate in (data.get("id") if isinstance(data, dict) else None, subject):
        try:
            task_id = UUID(str(candidate)) if candidate else None
        except ValueError:
            continue
        if task_id:
            break
    return await DeadLetterRepository(uow.session).add(
        {
            "event_id": str(event.get("id") or f"unknown-{now.timestamp()}"),
            "event_type": event.get("type"),
            "topic": topic,
            "task_id": task_id,
            "payload": event,
            "received_at": now,
        }
    )


def _readers(caller: Caller) -> None:
    if not caller.sees_all:
        raise Forbidden("only admins can read dead letters")


def _admin(caller: Caller) -> None:
    if not caller.has_role(ADMIN_ROLE):
        raise Forbidden("only admins can replay dead letters")


async def latest(
    uow: UnitOfWork,
    caller: Caller,
    *,
    limit: int,
    offset: int,
    filters: DeadLetterFilters | None = None,
) -> list[DeadLetterView]:
    _readers(caller)
    records = await DeadLetterRepository(uow.session).latest(limit, offset, filters)
    return [DeadLetterView.model_validate(r) for r in records]


async def count(uow: UnitOfWork, caller: Caller, filters: DeadLetterFilters) -> int:
    _readers(caller)
    return await DeadLetterRepository(uow.session).count(filters)


def _outbox_row(letter: DeadLetterRecord, now: datetime) -> NewOutboxRow | None:
    """The outbox row that re-publishes `letter`, or None when it cannot be replayed."""
    event = letter.payload
    data = event.get("data")
    if letter.event_type not in REPLAYABLE or not isinstance(data, dict):
        return None
    subject = event.get("subject")
    if letter.task_id is not None:
        subject = str(letter.task_id)
    traceparent = event.get("traceparent")
    # No task_id on the row: a replay re-sends an event, it is no new change of the task (a
    # task's rows mirror its history); its subject, the task's id, keeps the CloudEvent's
    # subject and the relay's ordering key the same as the task's own events.
    return NewOutboxRow(
        letter.event_type,
        None,
        data,
        now,
        traceparent if isinstance(traceparent, str) and len(traceparent) <= 64 else None,
        subject=subject[:200] if isinstance(subject, str) else None,
    )


async def _replay(
    uow: UnitOfWork, caller: Caller, letters: Sequence[DeadLetterRecord], now: datetime
) -> int:
    repo = DeadLetterRepository(uow.session)
    chosen = [(letter, row) for letter in letters if (row := _outbox_row(letter, now))]
    if not chosen:
        return 0
    before = len(uow.facts.outbox)
    await history.publish(uow, [row for _, row in chosen])
    written = uow.facts.outbox[before:]
    ids = [letter.id for letter, _ in chosen]
    await repo.mark_replayed(ids, caller.user_id, now)
    await repo.audit([(i, o.id) for i, o in zip(ids, written, strict=True)], caller.user_id, now)
    return len(chosen)


async def replay_one(
    uow: UnitOfWork, caller: Caller, dead_letter_id: int, *, now: datetime
) -> DeadLetterView:
    """Re-publish one dead letter's event (admins); 409 when it is not one this service
    publishes (or carries no JSON data)."""
    _admin(caller)
    repo = DeadLetterRepository(uow.session)
    letter = await repo.get(dead_letter_id)
    if letter is None:
        raise NotFound(f"dead letter {dead_letter_id} not found")
    if not await _replay(uow, caller, [letter], now):
        raise Conflict(f"an event of type {letter.event_type!r} with this data cannot be replayed")
    found = await repo.get(dead_letter_id)
    assert found is not None
    return DeadLetterView.model_validate(found)


async def replay_matching(
    uow: UnitOfWork,
    caller: Caller,
    filters: DeadLetterFilters,
    *,
    limit: int,
    dry_run: bool,
    now: datetime,
) -> ReplayOutcome:
    """Count (dry run) or re-publish the dead letters the filter matches, oldest first (admins).
    More than `limit` matching is refused whole (422): narrow the filter or raise the limit."""
    _admin(caller)
    repo = DeadLetterRepository(uow.session)
    matched = await repo.count(filters)
    if dry_run:
        return ReplayOutcome(matched, applied=False)
    if matched > limit:
        raise InvalidInput(
            f"{matched} dead letters match, more than the limit of {limit}; narrow the filter",
            field="limit",
        )
    letters = await repo.matching(filters, limit)
    replayed = await _replay(uow, caller, letters, now)
    return ReplayOutcome(matched, applied=True, replayed=replayed, skipped=len(letters) - replayed)
