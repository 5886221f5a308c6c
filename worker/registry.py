"""Handler registry: which async function runs which (taskType, entityType) of the catalog."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from service.catalog.catalog import Catalog
from service.domain.tasks import TaskKey

if TYPE_CHECKING:
    from worker.context import HandlerContext

Handler = Callable[["HandlerContext"], Awaitable[None]]


class HandlerRegistry:
    """Filled by decorators; an entity type of None matches any entity type of that task type.

    Built against the catalog: a handler for a type the catalog does not list is refused, and
    `missing()` names catalog types without one, so a type cannot exist without its handler.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._handlers: dict[TaskKey, Handler] = {}

    def handler(
        self, task_type: str, entity_type: str | None = None
    ) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.add(task_type, entity_type, fn)
            return fn

        return register

    def add(self, task_type: str, entity_type: str | None, fn: Handler) -> None:
        spec = self.catalog.get(task_type)
        if spec is None:
            raise ValueError(f"task type {task_type!r} is not in the catalog")
        if entity_type is not None and entity_type not in (spec.entity_types or (entity_type,)):
            raise ValueError(f"entity type {entity_type!r} is not one of {task_type}'s")
        key = TaskKey(task_type, entity_type)
        if key in self._handlers:
            raise ValueError(f"a handler is already registered for {key}")
        self._handlers[key] = fn

    def lookup(self, task_type: str, entity_type: str | None) -> Handler | None:
        return self._handlers.get(TaskKey(task_type, entity_type)) or self._handlers.get(
            TaskKey(task_type, None)
        )

    def missing(self) -> list[str]:
        """Catalog types (and their entity types) no handler runs, as type/entity labels."""
        gaps = []
        for spec in self.catalog:
            for entity in spec.entity_types or (None,):
                if self.lookup(spec.name, entity) is None:
                    gaps.append(f"{spec.name}/{entity or '*'}")
        return gaps

    def registered(self) -> list[TaskKey]:
        return sorted(self._handlers, key=lambda k: (k.task_type, k.entity_type or ""))
