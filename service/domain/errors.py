"""The one error family of the service; each class's docstring is its default message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class OperationsError(Exception):
    """Something went wrong in Common-Operations."""

    def __init__(self, detail: str | None = None, **context: Any) -> None:
        self.detail = detail or (self.__doc__ or "").strip()
        self.context = context
        super().__init__(self.detail)


class NotFound(OperationsError):
    """The resource does not exist or is not visible to the caller."""


class IllegalTransition(OperationsError):
    """The task cannot move to that status from its current one."""


class Conflict(OperationsError):
    """The request conflicts with the current state of the resource."""


class InvalidInput(OperationsError):
    """The request is not valid."""

    def __init__(
        self,
        detail: str | None = None,
        *,
        field: str | None = None,
        others: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(detail, field=field)
        self.field = field
        #: further (field, reason) pairs when one request has several bad fields
        self.others = tuple(others)


class MalformedRequest(InvalidInput):
    """The request is malformed (e.g. a header that cannot be read)."""


class IdempotencyMismatch(InvalidInput):
    """The Idempotency-Key was already used with a different request."""

    def __init__(self, detail: str | None = None, *, task_id: str | None = None) -> None:
        super().__init__(detail, field="Idempotency-Key")
        self.context["task_id"] = task_id


class PreconditionFailed(OperationsError):
    """The resource changed since the version the request names (If-Match)."""


class Unavailable(OperationsError):
    """A service this one depends on cannot be reached right now; try again shortly."""

    def __init__(self, detail: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unauthenticated(OperationsError):
    """The request carries no caller identity."""


class Forbidden(OperationsError):
    """The caller may not do this."""


class TaskCancelled(OperationsError):
    """The task was cancelled while it ran."""


class RetryLater(OperationsError):
    """The handler asks to run the task again later."""

    def __init__(self, detail: str | None = None, *, delay: float | None = None) -> None:
        super().__init__(detail)
        self.delay = delay


class PermanentFailure(OperationsError):
    """The task cannot succeed; retrying would not help."""


class UnknownTaskType(PermanentFailure):
    """No handler is registered for this task type."""


class PreconditionRequired(OperationsError):
    """This change must name the version it replaces in an If-Match header."""
