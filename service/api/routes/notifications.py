"""/messages (the caller's inbox), /webhooks/secret, and /tasks/{id}/notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import Field

from service.api import fields
from service.api.deps import CallerDep, UnitDep
from service.api.json_body import BoundedRoute
from service.api.schemas import InputModel
from service.clock import utcnow
from service.db.repositories.notifications import MessageRecord
from service.usecases import notifications
from service.web.problems import CALLER_RESPONSES, responses
from service.wire import CamelModel

router = APIRouter(tags=["notifications"], responses=CALLER_RESPONSES, route_class=BoundedRoute)


class MessagePublic(CamelModel):
    """One in-app notification."""

    id: UUID
    task_id: UUID | None
    kind: str
    title: str
    body: str
    data: dict[str, Any] | None
    created_at: datetime
    read_at: datetime | None
    read: bool

    @classmethod
    def of(cls, record: MessageRecord) -> MessagePublic:
        return cls(
            id=record.id,
            task_id=record.task_id,
            kind=record.kind,
            title=record.title,
            body=record.body,
            data=record.data,
            created_at=record.created_at,
            read_at=record.read_at,
            read=record.read_at is not None,
        )


class MessagePage(CamelModel):
    items: list[MessagePublic]
    total: int
    unread: int
    page: int
    page_size: int


class MessageQuery(InputModel):
    page: fields.PageNumber = 1
    page_size: int = Field(20, ge=1, le=100)
    unread: bool = Field(False, description="only messages not read yet")


class ReadAll(CamelModel):
    marked: int


@router.get("/messages", response_model=MessagePage)
async def list_messages(
    query: Annotated[MessageQuery, Query()], uow: UnitDep, caller: CallerDep
) -> MessagePage:
    """The caller's own in-app notifications, newest first (`unread=true`: unread only)."""
    inbox = await notifications.inbox(
        uow, caller, unread=query.unread, page=query.page, page_size=query.page_size
    )
    return MessagePage(
        items=[MessagePublic.of(m) for m in inbox.items],
        total=inbox.total,
        unread=inbox.unread,
        page=inbox.page,
        page_size=inbox.page_size,
    )


@router.post("/messages/read-all", response_model=ReadAll)
async def read_all_messages(uow: UnitDep, caller: CallerDep) -> ReadAll:
    """Mark all the caller's messages read; says how many were unread."""
    return ReadAll(marked=await notifications.mark_all_read(uow, caller, now=utcnow()))


@router.post("/messages/{message_id}/read", response_model=MessagePublic, responses=responses(404))
async def read_message(message_id: UUID, uow: UnitDep, caller: CallerDep) -> MessagePublic:
    """Mark one of the caller's messages read (another user's message is not found)."""
    return MessagePublic.of(await notifications.mark_read(uow, caller, message_id, now=utcnow()))


class SigningSecret(CamelModel):
    secret: str = Field(description="shown once: keep it to verify webhook-signature")
    scheme: str = "Standard Webhooks v1: HMAC-SHA256 of f'{webhook-id}.{webhook-timestamp}.{body}'"


@router.post("/webhooks/secret", response_model=SigningSecret, status_code=201)
async def new_signing_secret(uow: UnitDep, caller: CallerDep) -> SigningSecret:
    """A new secret that signs the caller's webhooks from now on (replaces any earlier one,
    also for deliveries still pending); it is shown only in this answer."""
    return SigningSecret(secret=await notifications.rotate_secret(uow, caller, now=utcnow()))


class WebhookAttemptPublic(CamelModel):
    attempt: int
    started_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryPublic(CamelModel):
    id: UUID
    url: str
    reason: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    history: list[WebhookAttemptPublic]


class TaskNotifications(CamelModel):
    webhooks: list[DeliveryPublic]


@router.get(
    "/tasks/{task_id}/notifications", response_model=TaskNotifications, responses=responses(404)
)
async def task_notifications(task_id: UUID, uow: UnitDep, caller: CallerDep) -> TaskNotifications:
    """The task's webhook deliveries, each with every attempt (status code, error, duration)."""
    found = await notifications.deliveries_of(uow, caller, task_id)
    return TaskNotifications(
        webhooks=[
            DeliveryPublic(
                id=d.id,
                url=d.url,
                reason=d.reason,
                status=d.status,
                attempts=d.attempts,
                next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
                last_status_code=d.last_status_code,
                last_error=d.last_error,
                created_at=d.created_at,
                delivered_at=d.delivered_at,
                history=[
                    WebhookAttemptPublic(
                        attempt=a.attempt,
                        started_at=a.started_at,
                        status_code=a.status_code,
                        error=a.error,
                        duration_ms=a.duration_ms,
                    )
                    for a in found.attempts[d.id]
                ],
            )
            for d in found.deliveries
        ]
    )
