"""Messages to the REST request shapes (so the same models check them) and read models back.

A request becomes the dict a REST body or query would parse to, with snake_case keys, and is
validated by the very model of service.api (TaskCreate, ListQuery, ProgressReport): a gRPC call
can never get past a check REST makes. Unset optional fields are left out, as an absent JSON
key; enums become their REST labels; a Timestamp becomes ISO 8601 text in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from service.domain.errors import InvalidInput
from service.domain.tasks import TaskStatus
from service.rpc.gen import operations_pb2 as pb
from service.usecases.downloads import DownloadLink
from service.usecases.views import EventView, LogView, TaskPublic

STATUS_OUT = {status: pb.TaskStatus.Value(f"TASK_STATUS_{status.name}") for status in TaskStatus}
STATUS_IN: dict[int, str] = {number: status.value for status, number in STATUS_OUT.items()}
PRIORITY_IN: dict[int, str] = {
    pb.TASK_PRIORITY_LOW: "low",
    pb.TASK_PRIORITY_NORMAL: "normal",
    pb.TASK_PRIORITY_HIGH: "high",
    pb.TASK_PRIORITY_URGENT: "urgent",
}
QUEUE_IN: dict[int, str] = {
    pb.TASK_QUEUE_DEFAULT: "default",
    pb.TASK_QUEUE_URGENT: "urgent",
    pb.TASK_QUEUE_BULK: "bulk",
}


def present(message: Message, names: tuple[str, ...]) -> dict[str, Any]:
    """The fields of `names` the caller set (proto3 `optional` or message fields)."""
    return {name: getattr(message, name) for name in names if message.HasField(name)}


def instant(message: Message, name: str) -> dict[str, str]:
    """A Timestamp field, when set, as the ISO 8601 text REST takes (the model checks years)."""
    if not message.HasField(name):
        return {}
    stamp: timestamp_pb2.Timestamp = getattr(message, name)
    try:
        return {name: stamp.ToJsonString()}
    except ValueError as error:
        raise InvalidInput("is not a valid timestamp", field=name) from error


def struct(message: Message, name: str) -> dict[str, Any]:
    """A Struct field, when set, as the JSON object it stands for (numbers are doubles: a whole
    one passes for an integer, as 3.0 does in a JSON body)."""
    if not message.HasField(name):
        return {}
    value: struct_pb2.Struct = getattr(message, name)
    return {name: json_format.MessageToDict(value)}


def enum_label(value: int, labels: dict[int, str], field: str) -> dict[str, str]:
    """An enum field: unset (0) is absent; a number the .proto does not list is refused."""
    if value == 0:
        return {}
    if value not in labels:
        raise InvalidInput(f"{value} is not one of its enum's values", field=field)
    return {field: labels[value]}


def _stamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _json(value: dict[str, Any] | None) -> struct_pb2.Struct | None:
    if value is None:
        return None
    holder = struct_pb2.Struct()
    holder.update(value)
    return holder


#: Task fields copied as they are (None stays unset: the .proto marks them optional).
_PLAIN = (
    "task_type",
    "entity_type",
    "requested_by",
    "file_name",
    "file_size",
    "input_file_id",
    "output_file_id",
    "progress",
    "total_items",
    "processed_items",
    "succeeded_items",
    "failed_items",
    "error_message",
    "retry_count",
    "auto_retries",
    "max_retries",
    "attempts",
    "worker_id",
    "cancel_requested",
    "idempotency_key",
    "template_id",
    "template_version",
    "name",
    "description",
    "tags",
    "schedule_id",
    "version",
)
_INSTANTS = (
    "scheduled_at",
    "available_at",
    "started_at",
    "completed_at",
    "lease_until",
    "fire_time",
    "created_at",
    "updated_at",
)


def task(view: TaskPublic) -> pb.Task:
    """A task (or a list's TaskSummary, whose params may be left out) as a message."""
    fields: dict[str, Any] = {name: getattr(view, name) for name in _PLAIN}
    fields |= {name: _stamp(getattr(view, name)) for name in _INSTANTS}
    fields |= {
        "params": _json(view.params),
        "params_omitted": bool(getattr(view, "params_omitted", False)),
        "result": _json(view.result),
        "notification_settings": _json(view.notification_settings),
    }
    return pb.Task(
        id=str(view.id),
        status=STATUS_OUT[view.status],
        priority=pb.TaskPriority.Value(f"TASK_PRIORITY_{view.priority.upper()}"),
        queue=pb.TaskQueue.Value(f"TASK_QUEUE_{view.queue.upper()}"),
        **{name: value for name, value in fields.items() if value is not None},
    )


def event(view: EventView) -> pb.TaskEvent:
    optional = {"from_status", "to_status", "actor", "message"}
    return pb.TaskEvent(
        id=view.id,
        task_id=str(view.task_id),
        event_type=view.event_type,
        created_at=_stamp(view.created_at),
        **{n: getattr(view, n) for n in optional if getattr(view, n) is not None},
    )


def log(view: LogView) -> pb.TaskLog:
    return pb.TaskLog(
        id=view.id,
        task_id=str(view.task_id),
        level=view.level,
        message=view.message,
        attempt=view.attempt,
        data=_json(view.data),
        created_at=_stamp(view.created_at),
    )


def download(link: DownloadLink) -> pb.GetDownloadUrlResponse:
    return pb.GetDownloadUrlResponse(
        download_url=link.download_url, expires_at=_stamp(link.expires_at)
    )
