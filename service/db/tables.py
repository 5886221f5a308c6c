"""Tables of the service (SQLModel, table=True); API shapes live in service.api.schemas."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, MetaData, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from service.db.types import BigIntPK, JSONType, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "%(table_name)s_%(column_0_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}
SQLModel.metadata = MetaData(naming_convention=NAMING)


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        Index(
            "ix_tasks_claim",
            "queue",
            text("priority DESC"),
            "available_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index(
            "ix_tasks_lease",
            "lease_until",
            postgresql_where=text("status = 'processing'"),
            sqlite_where=text("status = 'processing'"),
        ),
        Index(
            "ix_tasks_due",
            "available_at",
            postgresql_where=text("status = 'scheduled'"),
            sqlite_where=text("status = 'scheduled'"),
        ),
        Index("ix_tasks_list", "created_at", "id"),
        Index("ix_tasks_owner_list", "requested_by", "created_at", "id"),
        Index("ix_tasks_status_updated", "status", "updated_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    task_type: str = Field(max_length=64, index=True)
    entity_type: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(max_length=16)
    priority: int = 1
    queue: str = Field(max_length=16)
    requested_by: str = Field(max_length=128)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
    file_name: str | None = Field(default=None, max_length=255)
    file_size: int | None = Field(default=None, sa_column=Column(BigInteger(), nullable=True))
    input_file_id: str | None = Field(default=None, max_length=255)
    output_file_id: str | None = Field(default=None, max_length=255)
    report_file_id: str | None = Field(default=None, max_length=255)
    progress: int = 0
    total_items: int | None = None
    processed_items: int = 0
    succeeded_items: int = 0
    failed_items: int = 0
    scheduled_at: datetime | None = _ts()
    available_at: datetime = _ts(nullable=False)
    started_at: datetime | None = _ts()
    completed_at: datetime | None = _ts()
    error_message: str | None = None
    #: every retry, automatic or asked for by a person
    retry_count: int = 0
    #: automatic retries since a person last started the task: the budget maxRetries bounds
    auto_retries: int = 0
    max_retries: int = 3
    attempts: int = 0
    lease_until: datetime | None = _ts()
    worker_id: str | None = Field(default=None, max_length=128)
    cancel_requested: bool = False
    #: when the last progress notice was queued: PATCH /progress announces at most one per
    #: progress interval, however often an executor reports
    progress_announced_at: datetime | None = _ts()
    #: the Idempotency-Key it was created with (the key's record is in idempotency_keys)
    idempotency_key: str | None = Field(default=None, max_length=255)
    template_id: str | None = Field(default=None, max_length=64)
    #: the version of its template it was made from
    template_version: int | None = None
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    #: the recurring schedule that made it, and the fire time it was made for
    schedule_id: str | None = Field(default=None, max_length=64)
    fire_time: datetime | None = _ts()
    #: who is told what when it ends (service.catalog.notifications), as JSON
    notification_settings: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONType, nullable=True)
    )
    version: int = 1
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    deleted_at: datetime | None = _ts()


class IdempotencyKey(SQLModel, table=True):
    """An Idempotency-Key as its caller used it on one operation: a repeat of the request
    gets the same task back; the same key with another request is refused."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created", "created_at"),)

    owner: str = Field(max_length=128, primary_key=True)
    operation: str = Field(max_length=64, primary_key=True)
    key: str = Field(max_length=255, primary_key=True)
    #: SHA-256 of the request as the operation understood it
    fingerprint: str = Field(max_length=64)
    task_id: uuid.UUID
    created_at: datetime = _ts(nullable=False)


class TaskEvent(SQLModel, table=True):
    __tablename__ = "task_events"
    __table_args__ = (Index("ix_task_events_task", "task_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True))
    task_id: uuid.UUID
    event_type: str = Field(max_length=64)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str | None = Field(default=None, max_length=16)
    actor: str | None = Field(default=None, max_length=128)
    message: str | None = None
    created_at: datetime = _ts(nullable=False)


class TaskLog(SQLModel, table=True):
    __tablename__ = "task_logs"
    __table_args__ = (Index("ix_task_logs_task", "task_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True))
    task_id: uuid.UUID
    level: str = Field(max_length=8)
    message: str
    attempt: int | None = None
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
    created_at: datetime = _ts(nullable=False)


class TaskAttempt(SQLModel, table=True):
    __tablename__ = "task_attempts"
    __table_args__ = (UniqueConstraint("task_id", "attempt", name="task_attempts_task_attempt"),)

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True))
    task_id: uuid.UUID
    attempt: int
    worker_id: str = Field(max_length=128)
    dispatch: str = Field(max_length=8)
    outcome: str = Field(max_length=16)
    error: str | None = None
    started_at: datetime = _ts(nullable=False)
    finished_at: datetime | None = _ts()
    duration_ms: int | None = None


class Outbox(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_unpublished",
            "id",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True))
    topic: str = Field(max_length=128)
    task_id: uuid.UUID | None = None
    payload: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    traceparent: str | None = Field(default=None, max_length=64)
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime = _ts(nullable=False)
    published_at: datetime | None = _ts()


class JobRun(SQLModel, table=True):
    """One row per maintenance job tick, so several replicas never run the same tick."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "slot", name="job_runs_job_slot"),)

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True))
    job: str = Field(max_length=64)
    slot: int = Field(sa_column=Column(BigIntPK, nullable=False))
    runner: str = Field(max_length=128)
    started_at: datetime = _ts(nullable=False)
    finished_at: datetime | None = _ts()
    outcome: str | None = Field(default=None, max_length=16)
    detail: str | None = None


tasks_table = Task.__table__  # type: ignore[attr-defined]
idempotency_keys_table = IdempotencyKey.__table__  # type: ignore[attr-defined]
events_table = TaskEvent.__table__  # type: ignore[attr-defined]
logs_table = TaskLog.__table__  # type: ignore[attr-defined]
attempts_table = TaskAttempt.__table__  # type: ignore[attr-defined]
outbox_table = Outbox.__table__  # type: ignore[attr-defined]
job_runs_table = JobRun.__table__  # type: ignore[attr-defined]


class DeadLetter(SQLModel, table=True):
    """An event Dapr gave up delivering (retries exhausted or dropped), as it landed."""

    __tablename__ = "dead_letters"

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True))
    event_id: str = Field(max_length=128, unique=True)
    event_type: str | None = Field(default=None, max_length=128)
    topic: str | None = Field(default=None, max_length=128)
    task_id: uuid.UUID | None = None
    payload: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    received_at: datetime = _ts(nullable=False)


dead_letters_table = DeadLetter.__table__  # type: ignore[attr-defined]


class StoreRecord(SQLModel, table=True):
    """The built-in local store: imported records of each entity, keyed by the entity's key."""

    __tablename__ = "store_records"
    __table_args__ = (Index("ix_store_records_updated", "entity", "updated_at"),)

    entity: str = Field(max_length=32, primary_key=True)
    key: str = Field(max_length=255, primary_key=True)
    #: plain JSON, not JSONB: it keeps the record's text as written, key order included, so an
    #: export reproduces the imported file byte for byte.
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    source_task_id: uuid.UUID | None = None
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class ImportCheckpoint(SQLModel, table=True):
    """How far an import got: written in the same transaction as the batch it follows."""

    __tablename__ = "import_checkpoints"

    task_id: uuid.UUID = Field(primary_key=True)
    last_row: int = 0
    batches: int = 0
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    created: int = 0
    updated: int = 0
    updated_at: datetime = _ts(nullable=False)


class ImportRowError(SQLModel, table=True):
    """One line of an import's error report."""

    __tablename__ = "import_row_errors"
    __table_args__ = (Index("ix_import_row_errors_task", "task_id", "row_number"),)

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True))
    task_id: uuid.UUID
    row_number: int
    column: str | None = Field(default=None, max_length=128)
    value: str | None = None
    message: str


store_records_table = StoreRecord.__table__  # type: ignore[attr-defined]
checkpoints_table = ImportCheckpoint.__table__  # type: ignore[attr-defined]
row_errors_table = ImportRowError.__table__  # type: ignore[attr-defined]


class File(SQLModel, table=True):
    """A stored file: a task's input upload, output or error report; the bytes live in the store."""

    __tablename__ = "files"
    __table_args__ = (
        Index("ix_files_owner_list", "owner", "created_at", "id"),
        Index("ix_files_task", "task_id", "purpose"),
        Index("ix_files_expires", "expires_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    key: str = Field(max_length=1024, unique=True)
    file_name: str = Field(max_length=255)
    content_type: str = Field(max_length=255)
    size: int | None = Field(default=None, sa_column=Column(BigInteger(), nullable=True))
    #: Lowercase hex SHA-256 of the stored bytes (announced by the client while pending).
    sha256: str | None = Field(default=None, max_length=64)
    status: str = Field(max_length=16)
    owner: str = Field(max_length=128)
    task_id: uuid.UUID | None = None
    purpose: str = Field(max_length=16)
    created_at: datetime = _ts(nullable=False)
    expires_at: datetime | None = _ts()
    #: The token of the upload that is streaming this pending file's bytes in, and when it last
    #: showed life (a claim left by a killed process is taken over once it is stale).
    upload_claim: str | None = Field(default=None, max_length=32)
    upload_claimed_at: datetime | None = _ts()


files_table = File.__table__  # type: ignore[attr-defined]


class QueuePause(SQLModel, table=True):
    """A paused queue: workers' claims skip it (runs already started finish)."""

    __tablename__ = "queue_pauses"

    queue: str = Field(max_length=16, primary_key=True)
    paused_by: str = Field(max_length=128)
    paused_at: datetime = _ts(nullable=False)


class QueueAudit(SQLModel, table=True):
    """Who paused or resumed which queue, when."""

    __tablename__ = "queue_audit"
    __table_args__ = (Index("ix_queue_audit_queue", "queue", "id"),)

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True))
    queue: str = Field(max_length=16)
    action: str = Field(max_length=16)
    actor: str = Field(max_length=128)
    created_at: datetime = _ts(nullable=False)


queue_pauses_table = QueuePause.__table__  # type: ignore[attr-defined]
queue_audit_table = QueueAudit.__table__  # type: ignore[attr-defined]
