"""What a task, a template or a schedule may ask to be told about its tasks' ends.

The settings travel with the task (stored as their JSON); the worker's finish path reads them
when the task ends and writes the notifications in the same transaction as the change.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AnyUrl, BeforeValidator, Field, UrlConstraints, model_validator

from service.wire import StrictModel

Channel = Literal["inApp", "webhook", "event"]


def _whole(value: object) -> object:
    """30.0 is the integer 30 in JSON (JSON Schema agrees); "30" and 30.5 stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Milestone = Annotated[int, Field(ge=1, le=99), BeforeValidator(_whole)]
UserId = Annotated[str, Field(min_length=1, max_length=128)]
WebhookUrl = Annotated[AnyUrl, UrlConstraints(max_length=2048, allowed_schemes=["http", "https"])]

#: at most this many progress milestones a task may ask to be told about
MAX_MILESTONES = 10
MAX_RECIPIENTS = 50


def _in_app() -> list[Channel]:
    return ["inApp"]


class NotificationSettings(StrictModel):
    """`{"onCompletion": true, "onFailure": true, "channels": ["inApp", "event"]}`: who is told
    what, and how. `inApp` writes to the submitter's inbox (and the recipients'), `event`
    publishes `operations.notification.requested` for the platform's notification service,
    `webhook` POSTs a signed JSON body to `webhookUrl`."""

    on_completion: bool = Field(False, description="tell when the task completes")
    on_failure: bool = Field(False, description="tell when the task fails for good")
    on_cancel: bool = Field(False, description="tell when the task is cancelled")
    on_progress: list[Milestone] = Field(
        default_factory=list,
        max_length=MAX_MILESTONES,
        description="progress percentages (1 to 99) to tell about once each",
        json_schema_extra={"uniqueItems": True},
    )
    channels: list[Channel] = Field(
        default_factory=_in_app,
        min_length=1,
        max_length=3,
        description="how to tell",
        json_schema_extra={"uniqueItems": True},
    )
    webhook_url: WebhookUrl | None = Field(
        None, description="where the webhook channel POSTs (http or https; the allow-list decides)"
    )
    recipients: list[UserId] = Field(
        default_factory=list,
        max_length=MAX_RECIPIENTS,
        description="user ids told besides the submitter (inApp) or instead of it (event)",
    )
    template_key: str | None = Field(
        None, max_length=128, description="the notification service's message template"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("channels: each channel at most once")
        if len(set(self.on_progress)) != len(self.on_progress):
            raise ValueError("onProgress: each milestone at most once")
        if "webhook" in self.channels and self.webhook_url is None:
            raise ValueError("webhookUrl: the webhook channel needs a URL")
        return self

    def stored(self) -> dict[str, object]:
        """The JSON kept on the task (camelCase, as it was asked for)."""
        return self.model_dump(mode="json", by_alias=True)
