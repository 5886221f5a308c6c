"""A task type: what it accepts, where and how long it runs, and who may create it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.domain.tasks import Priority, Queue
from service.wire import StrictModel


@dataclass(frozen=True, slots=True)
class Submission:
    """What a create asks for, as the catalog checks it."""

    task_type: str
    entity_type: str | None
    params: Mapping[str, Any]
    file_name: str | None = None
    has_input: bool = False


#: A type's own checks beyond its params model (e.g. an import needs a file): raise InvalidInput.
Check = Callable[[Submission], None]


@dataclass(frozen=True, slots=True)
class TaskType:
    """One entry of the catalog; None in a default means "the service's setting"."""

    name: str
    summary: str
    #: the params, strict: unknown keys and look-alike types are refused
    params: type[StrictModel]
    #: None: entityType is an optional free label; a tuple: entityType is required, one of them
    entity_types: tuple[str, ...] | None = None
    queue: Queue = Queue.DEFAULT
    priority: Priority = Priority.NORMAL
    max_retries: int | None = None
    #: seconds a run may take before it is stopped (and retried or failed)
    execution_timeout: float | None = None
    #: seconds without a heartbeat before a run counts as lost (its lease)
    heartbeat_timeout: float | None = None
    #: role needed to create it (the service token has every role); None: any user
    role: str | None = None
    #: errors that fail the task at once: retrying would meet them again
    non_retryable: tuple[type[BaseException], ...] = ()
    check: Check | None = None
    #: whether a task of this type reads an input file (fileName or inputFileId)
    needs_file: bool = False

    def queue_for(self, priority: Priority) -> Queue:
        """Urgent work never waits behind other work; the rest goes to the type's queue."""
        return Queue.URGENT if priority is Priority.URGENT else self.queue
