"""The notification-batch task type's params: a message template sent to many recipients."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Self

from pydantic import Field, model_validator

from service.catalog.model import Submission
from service.catalog.notifications import Channel, WebhookUrl
from service.domain.errors import InvalidInput
from service.wire import StrictModel

#: {name} in a title or body: replaced by the recipient row's column of that name
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")
MAX_LISTED = 1000
Cell = Annotated[str, Field(max_length=1000)]


def _in_app() -> list[Channel]:
    return ["inApp"]


class NotificationBatchParams(StrictModel):
    """Sends a message to many recipients, in batches: each recipient is a row (a `userId`
    and any columns the template's {placeholders} name), listed here or in an uploaded CSV
    file with a header (create the task with a fileName). Rows that cannot be sent go to an
    error report."""

    title: str = Field(min_length=1, max_length=200, description="e.g. 'Hello {name}'")
    body: str = Field(
        min_length=1, max_length=4000, description="e.g. 'Your order {order} shipped'"
    )
    recipients: list[Mapping[str, Cell]] = Field(
        default_factory=list,
        max_length=MAX_LISTED,
        description="rows with a userId and the template's columns (or upload a CSV file)",
    )
    channels: list[Channel] = Field(
        default_factory=_in_app,
        min_length=1,
        max_length=3,
        description="inApp (the recipient's inbox), event, webhook",
        json_schema_extra={"uniqueItems": True},
    )
    webhook_url: WebhookUrl | None = Field(None, description="where the webhook channel POSTs")
    template_key: str | None = Field(None, max_length=128)
    batch_size: int = Field(100, ge=1, le=1000, description="recipients per transaction")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("channels: each channel at most once")
        if "webhook" in self.channels and self.webhook_url is None:
            raise ValueError("webhookUrl: the webhook channel needs a URL")
        return self


def check_batch(submission: Submission) -> None:
    """Recipients listed or a file to read them from, not both, not neither."""
    listed = bool(submission.params.get("recipients"))
    has_file = submission.file_name is not None or submission.has_input
    if listed == has_file:
        raise InvalidInput(
            "list the recipients in params.recipients or upload them as a CSV file "
            "(fileName), one of the two",
            field="params.recipients",
        )
