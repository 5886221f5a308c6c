"""Notifications: what a task's notificationSettings ask for when it ends or passes a progress
milestone, written in the transaction of the change that caused it; the inbox; webhook
deliveries as the worker takes and settles them.

Every ending path calls `on_endings` with the tasks it changed (the worker's finish with a
whole batch): tasks without settings are skipped with one attribute read, and what the others
ask for goes out in one multi-row statement per table (messages, webhook deliveries, outbox).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from pydantic import ValidationError

from service.catalog.notifications import NotificationSettings
from service.db.repositories.notifications import (
    DeliveryRecord,
    DeliveryRepository,
    MarkRepository,
    MessageRecord,
    MessageRepository,
    SecretRepository,
    WebhookAttemptRecord,
)
from service.db.repositories.outbox import NewOutboxRow
from service.db.repositories.tasks import TaskRepository
from service.db.unit_of_work import UnitOfWork
from service.domain import webhooks
from service.domain.callers import Caller
from service.domain.errors import NotFound
from service.domain.events import NOTIFICATION_REQUESTED
from service.domain.tasks import TaskRecord, TaskStatus
from service.usecases import history
from service.usecases.views import snapshot

logger = logging.getLogger(__name__)

#: the reason a finished status is told as, and the setting that asks for it
_ENDINGS = {
    TaskStatus.COMPLETED: ("completed", "on_completion"),
    TaskStatus.FAILED: ("failed", "on_failure"),
    TaskStatus.CANCELLED: ("cancelled", "on_cancel"),
}


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing to tell about one task."""

    task: TaskRecord
    settings: NotificationSettings
    reason: str  #: completed, failed, cancelled, progress
    milestone: int | None = None


@dataclass(slots=True)
class _Rows:
    messages: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    events: list[NewOutboxRow] = field(default_factory=list)


def settings_of(task: TaskRecord) -> NotificationSettings | None:
    """The task's settings as a model; None when it has none (or, stored by an older or
    foreign writer, they no longer read: logged, and the task's change goes on)."""
    stored = task.notification_settings
    if not stored:
        return None
    try:
        return NotificationSettings.model_validate_json(json.dumps(stored))
    except ValidationError as error:
        logger.warning(
            "unreadable notificationSettings skipped",
            extra={
                "action": "notifications.unreadable",
                "task_id": str(task.id),
                "error": str(error),
            },
        )
        return None


async def on_endings(uow: UnitOfWork, tasks: Sequence[TaskRecord], *, now: datetime) -> None:
    """Tasks that just became completed, failed or cancelled: write what they asked for."""
    notices = []
    for task in tasks:
        if not task.notification_settings:
            continue
        ending = _ENDINGS.get(task.status)
        settings = None if ending is None else settings_of(task)
        if ending is not None and settings is not None and getattr(settings, ending[1]):
            notices.append(Notice(task, settings, ending[0]))
    await write(uow, notices, now=now)


async def on_progress(uow: UnitOfWork, task: TaskRecord, *, now: datetime) -> None:
    """A running task reported progress: tell each milestone it asked for, once, when passed."""
    if not task.notification_settings or not task.notification_settings.get("onProgress"):
        return
    settings = settings_of(task)
    if settings is None:
        return
    reached = [m for m in settings.on_progress if task.progress >= m]
    if not reached:
        return
    marks = MarkRepository(uow.session)
    told = await marks.told(task.id)
    new = sorted(m for m in reached if f"progress:{m}" not in told)
    if not new:
        return
    await marks.add(task.id, [f"progress:{m}" for m in new], now)
    await write(uow, [Notice(task, settings, "progress", m) for m in new], now=now)


async def write(uow: UnitOfWork, notices: Sequence[Notice], *, now: datetime) -> None:
    """The rows of `notices` on each channel they ask for, one statement per table."""
    if not notices:
        return
    rows = _Rows()
    for notice in notices:
        _add(rows, notice, now)
    await MessageRepository(uow.session).add(rows.messages)
    await DeliveryRepository(uow.session).add(rows.deliveries)
    await history.publish(uow, rows.events)


def _label(task: TaskRecord) -> str:
    if task.name:
        return task.name
    return task.task_type + (f" {task.entity_type}" if task.entity_type else "")


def _text(notice: Notice) -> tuple[str, str]:
    """The message's title and body."""
    task = notice.task
    label = _label(task)
    if notice.reason == "progress":
        return f"{label}: {notice.milestone}% done"[:200], (
            f"Task {task.id} ({label}) passed {notice.milestone}% "
            f"({task.processed_items} items processed)."
        )
    title = f"{label} {notice.reason}"[:200]
    body = f"Task {task.id} ({label}) {notice.reason}."
    if task.total_items is not None or task.processed_items:
        body += (
            f" {task.processed_items} processed, {task.succeeded_items} succeeded, "
            f"{task.failed_items} failed."
        )
    if notice.reason == "failed" and task.error_message:
        body += f" Error: {task.error_message}"
    return title, body


def _add(rows: _Rows, notice: Notice, now: datetime) -> None:
    task, settings = notice.task, notice.settings
    title, body = _text(notice)
    common = {
        "reason": notice.reason,
        "milestone": notice.milestone,
        "templateKey": settings.template_key,
        "title": title,
        "body": body,
    }
    if "inApp" in settings.channels:
        data = {
            "taskId": str(task.id),
            "reason": notice.reason,
            "milestone": notice.milestone,
            "status": task.status.value,
        }
        for recipient in dict.fromkeys([task.requested_by, *settings.recipients]):
            rows.messages.append(
                _message_row(task, recipient, notice.reason, title, body, data, now)
            )
    recipients = list(settings.recipients) or [task.requested_by]
    if "event" in settings.channels or "webhook" in settings.channels:
        payload = {**common, "recipients": recipients, "task": snapshot(task)}
        if "event" in settings.channels:
            rows.events.append(NewOutboxRow(NOTIFICATION_REQUESTED, task.id, payload, now))
        if "webhook" in settings.channels and settings.webhook_url is not None:
            reason = notice.reason if notice.milestone is None else f"progress {notice.milestone}"
            rows.deliveries.append(
                _delivery_row(task, str(settings.webhook_url), reason, payload, now)
            )


def _message_row(
    task: TaskRecord,
    recipient: str,
    kind: str,
    title: str,
    body: str,
    data: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": uuid4(),
        "recipient": recipient,
        "task_id": task.id,
        "kind": kind,
        "title": title[:200],
        "body": body,
        "data": data,
        "created_at": now,
        "read_at": None,
    }


def _delivery_row(
    task: TaskRecord, url: str, reason: str, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """A pending delivery; its body is `payload` with the delivery's id, type and time."""
    delivery_id = uuid4()
    return {
        "id": delivery_id,
        "task_id": task.id,
        "owner": task.requested_by,
        "url": url,
        "reason": reason,
        "payload": {
            "id": str(delivery_id),
            "type": NOTIFICATION_REQUESTED,
            "occurredAt": now.isoformat(),
            **payload,
        },
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": None,
        "last_status_code": None,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
        "delivered_at": None,
    }


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message of a notification batch, rendered for its recipient."""

    recipient: str
    title: str
    body: str
    #: the recipient's row, as the template saw it
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Channels:
    """Where a notification batch sends its messages."""

    channels: tuple[str, ...]
    webhook_url: str | None = None
    template_key: str | None = None


async def send(
    uow: UnitOfWork,
    task: TaskRecord,
    outgoing: Sequence[Outgoing],
    via: Channels,
    *,
    now: datetime,
) -> None:
    """A notification batch's messages on its channels, one statement per table."""
    rows = _Rows()
    for item in outgoing:
        common = {
            "reason": "message",
            "templateKey": via.template_key,
            "title": item.title,
            "body": item.body,
            "recipients": [item.recipient],
            "data": item.data,
            "taskId": str(task.id),
        }
        if "inApp" in via.channels:
            rows.messages.append(
                _message_row(task, item.recipient, "message", item.title, item.body, item.data, now)
            )
        if "event" in via.channels:
            rows.events.append(NewOutboxRow(NOTIFICATION_REQUESTED, task.id, common, now))
        if "webhook" in via.channels and via.webhook_url is not None:
            rows.deliveries.append(_delivery_row(task, via.webhook_url, "message", common, now))
    await MessageRepository(uow.session).add(rows.messages)
    await DeliveryRepository(uow.session).add(rows.deliveries)
    await history.publish(uow, rows.events)


# The inbox ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Inbox:
    items: list[MessageRecord]
    total: int
    unread: int
    page: int
    page_size: int


async def inbox(
    uow: UnitOfWork, caller: Caller, *, unread: bool, page: int, page_size: int
) -> Inbox:
    """The caller's own messages, newest first (admins too see only their own)."""
    items, total, unread_count = await MessageRepository(uow.session).page(
        caller.user_id, unread=unread, limit=page_size, offset=(page - 1) * page_size
    )
    return Inbox(items, total, unread_count, page, page_size)


async def unread_count(uow: UnitOfWork, caller: Caller) -> int:
    """How many of the caller's messages are unread (the dashboard shows it on every page)."""
    return await MessageRepository(uow.session).unread(caller.user_id)


async def mark_read(
    uow: UnitOfWork, caller: Caller, message_id: UUID, *, now: datetime
) -> MessageRecord:
    """Mark one of the caller's messages read; another user's is not found."""
    found = await MessageRepository(uow.session).mark_read(caller.user_id, message_id, now)
    if found is None:
        raise NotFound(f"message {message_id} not found", message_id=str(message_id))
    return found


async def mark_all_read(uow: UnitOfWork, caller: Caller, *, now: datetime) -> int:
    return await MessageRepository(uow.session).mark_all_read(caller.user_id, now)


# Webhook deliveries -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskDeliveries:
    deliveries: list[DeliveryRecord]
    attempts: dict[UUID, list[WebhookAttemptRecord]]


async def deliveries_of(uow: UnitOfWork, caller: Caller, task_id: UUID) -> TaskDeliveries:
    """A task's webhook deliveries with every attempt; another user's task is not found."""
    task = await TaskRepository(uow.session).get(task_id)
    if task is None or not caller.may_see(task.requested_by):
        raise NotFound(f"task {task_id} not found", task_id=str(task_id))
    repo = DeliveryRepository(uow.session)
    deliveries = await repo.for_task(task_id)
    attempts: dict[UUID, list[WebhookAttemptRecord]] = {d.id: [] for d in deliveries}
    for attempt in await repo.attempts_of([d.id for d in deliveries]):
        attempts[attempt.delivery_id].append(attempt)
    return TaskDeliveries(deliveries, attempts)


async def rotate_secret(uow: UnitOfWork, caller: Caller, *, now: datetime) -> str:
    """A new signing secret for the caller's webhooks (replacing any earlier one)."""
    secret = webhooks.new_secret()
    await SecretRepository(uow.session).put(caller.user_id, secret, now)
    return secret


async def signing_secret(uow: UnitOfWork, owner: str) -> str | None:
    return await SecretRepository(uow.session).get(owner)


async def take_due(
    uow: UnitOfWork, *, now: datetime, hold_seconds: float, limit: int
) -> list[DeliveryRecord]:
    """Due deliveries this worker now holds for `hold_seconds` (others skip them meanwhile)."""
    repo = DeliveryRepository(uow.session)
    until = now + timedelta(seconds=hold_seconds)
    taken = []
    for delivery_id in await repo.due_ids(now, limit):
        delivery = await repo.take(delivery_id, now, until)
        if delivery is not None:
            taken.append(delivery)
    return taken


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one POST came to."""

    started_at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    #: the receiver can never take it (e.g. the URL is refused): no retry
    final: bool = False

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def settle_attempt(
    uow: UnitOfWork,
    delivery: DeliveryRecord,
    result: AttemptResult,
    *,
    now: datetime,
    max_attempts: int,
    base: float,
    cap: float,
) -> str:
    """Record the attempt: delivered, pending again after a backoff, or failed for good."""
    attempts = delivery.attempts + 1
    if result.delivered:
        status, next_at = "delivered", now
    elif result.final or attempts >= max_attempts:
        status, next_at = "failed", now
    else:
        delay = webhooks.retry_delay(attempts, base=base, cap=cap)
        status, next_at = "pending", now + timedelta(seconds=delay)
    await DeliveryRepository(uow.session).settle(
        delivery,
        {
            "attempt": attempts,
            "started_at": result.started_at,
            "status_code": result.status_code,
            "error": None if result.error is None else result.error[:2000],
            "duration_ms": result.duration_ms,
        },
        status=status,
        next_attempt_at=next_at,
        now=now,
    )
    return status
