"""Handler registry: which async function runs which (taskType, entityType)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from service.domain.tasks import TaskKey

if TYPE_CHECKING:
    from worker.context import HandlerContext

Handler = Callable[["HandlerContext"], Awaitable[None]]


class HandlerRegistry:
    """Filled by decorators; an entity type of None matches any entity type of that task type."""

    def __init__(self) -> None:
        self._handlers: dict[TaskKey, Handler] = {}

    def handler(
        self, task_type: str, entity_type: str | None = None
    ) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.add(task_type, entity_type, fn)
            return fn

        return register

    def add(self, task_type: str, entity_type: str | None, fn: Handler) -> None:
        key = TaskKey(task_type, entity_type)
        if key in self._handlers:
            raise ValueError(f"a handler is already registered for {key}")
        self._handlers[key] = fn

    def lookup(self, task_type: str, entity_type: str | None) -> Handler | None:
        return self._handlers.get(TaskKey(task_type, entity_type)) or self._handlers.get(
            TaskKey(task_type, None)
        )

    def registered(self) -> list[TaskKey]:
        return sorted(self._handlers, key=lambda k: (k.task_type, k.entity_type or ""))
