"""The catalog: looks a type up, checks a new task against it, says how its runs are bounded."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from pydantic import ValidationError

from service.catalog.model import Submission, TaskType
from service.domain import webhooks
from service.domain.callers import Caller
from service.domain.errors import Forbidden, InvalidInput


@dataclass(frozen=True, slots=True)
class Limits:
    """The service's defaults for what a type leaves unset."""

    execution_timeout: float
    heartbeat_timeout: float
    max_retries: int
    #: webhook URLs: the allow-list and whether private addresses may be called
    webhook_hosts: tuple[str, ...] = ("*",)
    webhook_private: bool = False


@dataclass(frozen=True, slots=True)
class Override:
    """An operator's change to one type (settings: OPS_TASK_TYPES)."""

    execution_timeout: float | None = None
    heartbeat_timeout: float | None = None
    max_retries: int | None = None


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(["params", *(str(p) for p in loc)])


class Catalog:
    """Every task type there is; a type it does not list cannot be created."""

    def __init__(
        self,
        types: Iterable[TaskType],
        limits: Limits,
        overrides: Mapping[str, Override] | None = None,
    ) -> None:
        self.limits = limits
        self._types = {t.name: t for t in types}
        for name, override in (overrides or {}).items():
            if name not in self._types:
                known = ", ".join(sorted(self._types))
                raise ValueError(f"task type {name!r} is not in the catalog ({known})")
            changes = {k: v for k, v in asdict(override).items() if v is not None}
            self._types[name] = replace(self._types[name], **changes)

    def __iter__(self) -> Iterator[TaskType]:
        return iter(sorted(self._types.values(), key=lambda t: t.name))

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def get(self, name: str) -> TaskType | None:
        return self._types.get(name)

    def require(self, name: str) -> TaskType:
        """The type of that name, or a 422 naming taskType with the known ones."""
        found = self._types.get(name)
        if found is None:
            known = ", ".join(sorted(self._types))
            raise InvalidInput(f"unknown task type {name!r}; known: {known}", field="taskType")
        return found

    def check(self, caller: Caller, submission: Submission) -> TaskType:
        """The submission's type if the caller may create it and it is valid: else 403 (not
        allowed; checked first, so a caller learns nothing of a type's rules) or 422."""
        task_type = self.require(submission.task_type)
        if not caller.has_role(task_type.role):
            raise Forbidden(
                f"creating {task_type.name} tasks needs the {task_type.role} role",
                task_type=task_type.name,
            )
        self._check_entity(task_type, submission.entity_type)
        try:
            task_type.params.model_validate(dict(submission.params))
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            raise InvalidInput(first["msg"], field=_field(first["loc"])) from error
        if task_type.check is not None:
            task_type.check(submission)
        if submission.params.get("webhookUrl") is not None:  # notification-batch's
            self._check_webhook(str(submission.params["webhookUrl"]), "params.webhookUrl")
        return task_type

    def check_notifications(self, stored: Mapping[str, Any] | None) -> None:
        """A webhook URL the service would refuse to call is a 422 now rather than a failed
        delivery later (a host name's addresses are checked again at each delivery)."""
        url = (stored or {}).get("webhookUrl")
        if url is not None:
            self._check_webhook(str(url), "notificationSettings.webhookUrl")

    def _check_webhook(self, url: str, field: str) -> None:
        refused = webhooks.url_refused(
            url, self.limits.webhook_hosts, allow_private=self.limits.webhook_private
        )
        if refused is not None:
            raise InvalidInput(f"webhookUrl is refused: {refused}", field=field)

    @staticmethod
    def _check_entity(task_type: TaskType, entity_type: str | None) -> None:
        allowed = task_type.entity_types
        if allowed is None or entity_type in allowed:
            return
        choices = ", ".join(allowed)
        raise InvalidInput(
            f"{task_type.name} tasks need an entityType, one of: {choices}; got {entity_type!r}",
            field="entityType",
        )

    def execution_timeout(self, name: str) -> float:
        found = self._types.get(name)
        timeout = found.execution_timeout if found else None
        return self.limits.execution_timeout if timeout is None else timeout

    def heartbeat_timeout(self, name: str) -> float:
        found = self._types.get(name)
        timeout = found.heartbeat_timeout if found else None
        return self.limits.heartbeat_timeout if timeout is None else timeout

    def max_retries(self, name: str) -> int:
        found = self._types.get(name)
        retries = found.max_retries if found else None
        return self.limits.max_retries if retries is None else retries
