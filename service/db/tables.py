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
            "id",  # the claim's whole order: a claim reads only what it takes (0020)
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
    #: W3C traceparent of the request that created it: its runs' spans continue that trace
    traceparent: str | None = Field(default=None, max_length=64)


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
    #: the CloudEvent's subject and ordering key of a row without a task (e.g. settings/payment)
    subject: str | None = Field(default=None, max_length=200)
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
    #: the last replay (an admin re-published the event through the outbox)
    replayed_at: datetime | None = _ts()
    replayed_by: str | None = Field(default=None, max_length=128)


dead_letters_table = DeadLetter.__table__  # type: ignore[attr-defined]


class DeadLetterReplay(SQLModel, table=True):
    """Who replayed which dead letter, when, and the outbox row that re-published it."""

    __tablename__ = "dead_letter_replays"
    __table_args__ = (Index("ix_dead_letter_replays_dead_letter", "dead_letter_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True))
    dead_letter_id: int = Field(sa_column=Column(BigInteger(), nullable=False))
    outbox_id: int = Field(sa_column=Column(BigInteger(), nullable=False))
    actor: str = Field(max_length=128)
    created_at: datetime = _ts(nullable=False)


dead_letter_replays_table = DeadLetterReplay.__table__  # type: ignore[attr-defined]


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


class Template(SQLModel, table=True):
    """A task template: its identity and state; what it says is in its versions."""

    __tablename__ = "templates"

    id: str = Field(max_length=64, primary_key=True)
    #: the newest version, the one used when a caller names none
    latest_version: int = 1
    active: bool = True
    created_by: str = Field(max_length=128)
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    deactivated_at: datetime | None = _ts()


class TemplateVersion(SQLModel, table=True):
    """One version of a template, never changed once written: tasks name the version they
    were made from."""

    __tablename__ = "template_versions"
    __table_args__ = (Index("ix_template_versions_task_type", "task_type"),)

    template_id: str = Field(max_length=64, primary_key=True)
    version: int = Field(primary_key=True)
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    category: str | None = Field(default=None, max_length=64)
    task_type: str = Field(max_length=64)
    entity_type: str | None = Field(default=None, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    required_fields: list[str] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False)
    )
    optional_fields: list[str] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False)
    )
    params_schema: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONType, nullable=False)
    )
    role: str | None = Field(default=None, max_length=64)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    priority: int | None = None
    queue: str | None = Field(default=None, max_length=16)
    max_retries: int | None = None
    notification_settings: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONType, nullable=True)
    )
    created_by: str = Field(max_length=128)
    created_at: datetime = _ts(nullable=False)


templates_table = Template.__table__  # type: ignore[attr-defined]
template_versions_table = TemplateVersion.__table__  # type: ignore[attr-defined]


class Schedule(SQLModel, table=True):
    """A recurring schedule: a cron in a time zone that makes tasks as its owner."""

    __tablename__ = "schedules"
    __table_args__ = (
        # the tick's one query when nothing is due: the earliest fire time of active schedules
        Index(
            "ix_schedules_due",
            "next_fire_at",
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
        Index(
            "ix_schedules_queued",
            "queued_fire_at",
            postgresql_where=text("status = 'active' AND queued_fire_at IS NOT NULL"),
            sqlite_where=text("status = 'active' AND queued_fire_at IS NOT NULL"),
        ),
        Index("ix_schedules_owner_list", "owner", "created_at", "id"),
        Index("ix_schedules_list", "created_at", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    owner: str = Field(max_length=128)
    #: the owner's roles when the schedule was last saved: its tasks are made with them
    owner_roles: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    cron: str = Field(max_length=200)
    time_zone: str = Field(max_length=64)
    template_id: str | None = Field(default=None, max_length=64)
    template_version: int | None = None
    task_type: str | None = Field(default=None, max_length=64)
    entity_type: str | None = Field(default=None, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    priority: int | None = None
    queue: str | None = Field(default=None, max_length=16)
    max_retries: int | None = None
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    notification_settings: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONType, nullable=True)
    )
    overlap_policy: str = Field(max_length=16)
    catch_up: str = Field(max_length=16)
    catch_up_limit: int = 10
    start_at: datetime | None = _ts()
    end_at: datetime | None = _ts()
    status: str = Field(max_length=16)
    paused_reason: str | None = Field(default=None, max_length=2000)
    #: the next fire time a tick makes (None: none left before endAt)
    next_fire_at: datetime | None = _ts()
    #: a fire time waiting for the last task to finish (overlapPolicy queue-one)
    queued_fire_at: datetime | None = _ts()
    last_fire_at: datetime | None = _ts()
    last_task_id: uuid.UUID | None = None
    version: int = 1
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class ScheduleRun(SQLModel, table=True):
    """One fire time of one schedule: its unique key is what makes one task per fire time
    across every replica."""

    __tablename__ = "schedule_runs"
    __table_args__ = (
        UniqueConstraint("schedule_id", "fire_time", name="schedule_runs_schedule_fire_time"),
        Index("ix_schedule_runs_created", "created_at"),  # retention
    )

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True))
    schedule_id: uuid.UUID
    fire_time: datetime = _ts(nullable=False)
    outcome: str = Field(max_length=16)
    task_id: uuid.UUID | None = None
    created_at: datetime = _ts(nullable=False)


schedules_table = Schedule.__table__  # type: ignore[attr-defined]
schedule_runs_table = ScheduleRun.__table__  # type: ignore[attr-defined]


class Message(SQLModel, table=True):
    """A user's in-app notification (the inbox): the original service's `messages`."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_inbox", "recipient", "created_at", "id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    recipient: str = Field(max_length=128)
    task_id: uuid.UUID | None = None
    #: completed, failed, cancelled, progress, message (a notification batch's)
    kind: str = Field(max_length=32)
    title: str = Field(max_length=200)
    body: str
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
    created_at: datetime = _ts(nullable=False)
    read_at: datetime | None = _ts()


class WebhookDelivery(SQLModel, table=True):
    """One webhook notification to POST; the worker delivers it with retries."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_task", "task_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    task_id: uuid.UUID | None = None
    #: whose signing secret signs it (the task's submitter)
    owner: str = Field(max_length=128)
    url: str = Field(max_length=2048)
    reason: str = Field(max_length=32)
    payload: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    #: pending, delivered, failed
    status: str = Field(max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = _ts(nullable=False)
    #: a worker is delivering it until then (another may take it over after)
    lease_until: datetime | None = _ts()
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    delivered_at: datetime | None = _ts()


class WebhookAttempt(SQLModel, table=True):
    """One try of a webhook delivery: what the receiver answered, or why it could not."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "attempt"),)

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True))
    delivery_id: uuid.UUID
    attempt: int
    started_at: datetime = _ts(nullable=False)
    status_code: int | None = None
    error: str | None = None
    duration_ms: int


class WebhookSecret(SQLModel, table=True):
    """A user's webhook signing secret (Standard Webhooks "whsec_…"), shown once when made."""

    __tablename__ = "webhook_secrets"

    owner: str = Field(max_length=128, primary_key=True)
    secret: str = Field(max_length=128)
    created_at: datetime = _ts(nullable=False)


class NotificationMark(SQLModel, table=True):
    """A progress milestone a task was already told about (each is told once)."""

    __tablename__ = "notification_marks"

    task_id: uuid.UUID = Field(primary_key=True)
    mark: str = Field(max_length=32, primary_key=True)
    created_at: datetime = _ts(nullable=False)


messages_table = Message.__table__  # type: ignore[attr-defined]
deliveries_table = WebhookDelivery.__table__  # type: ignore[attr-defined]
webhook_attempts_table = WebhookAttempt.__table__  # type: ignore[attr-defined]
webhook_secrets_table = WebhookSecret.__table__  # type: ignore[attr-defined]
marks_table = NotificationMark.__table__  # type: ignore[attr-defined]
# Analytics (service/usecases/analytics.py): a rollup of the tasks table kept by a maintenance
# job up to a watermark on updated_at; an answer adds what changed since, computed live.


class _Contribution(SQLModel):
    """What one task adds to the rollup, as the rollup last saw it (times in UTC)."""

    task_id: uuid.UUID = Field(primary_key=True)
    owner: str = Field(max_length=128)
    #: whole hours since 1970 of its created_at
    hour: int
    task_type: str = Field(max_length=64)
    entity_type: str = Field(max_length=64)  # "" for none
    queue: str = Field(max_length=16)
    status: str = Field(max_length=16)
    retried: int  # 1 when retried at least once
    attempts: int
    run_bucket: int  # service.domain.analytics buckets; -1: it has not run to an end
    wait_bucket: int  # -1: it has not started
    message: str = Field(max_length=200)  # a failed task's error, cut; "" otherwise


class AnalyticsTask(_Contribution, table=True):
    """Each task's part in the rollup, so a later change of the task can take it back out."""

    __tablename__ = "analytics_tasks"
    __table_args__ = (Index("ix_analytics_tasks_hour", "hour"),)


class AnalyticsStaging(_Contribution, table=True):
    """The rollup job's changed tasks of one run (empty between runs)."""

    __tablename__ = "analytics_staging"


def _key(max_length: int) -> Any:
    return Field(primary_key=True, max_length=max_length)


class AnalyticsDaily(SQLModel, table=True):
    """Tasks per UTC day of creation, owner ("" = everyone), type, entity, queue and status."""

    __tablename__ = "analytics_daily"

    owner: str = _key(128)
    day: int = Field(primary_key=True)
    task_type: str = _key(64)
    entity_type: str = _key(64)
    queue: str = _key(16)
    status: str = _key(16)
    tasks: int = 0
    retried: int = 0
    attempts: int = 0


class AnalyticsHourly(SQLModel, table=True):
    """Tasks per UTC hour of creation (busiest hours and days of the week)."""

    __tablename__ = "analytics_hourly"

    owner: str = _key(128)
    hour: int = Field(primary_key=True)
    task_type: str = _key(64)
    entity_type: str = _key(64)
    queue: str = _key(16)
    tasks: int = 0


class AnalyticsDuration(SQLModel, table=True):
    """Histograms of run time and queue wait per UTC day of creation."""

    __tablename__ = "analytics_durations"

    owner: str = _key(128)
    day: int = Field(primary_key=True)
    task_type: str = _key(64)
    entity_type: str = _key(64)
    queue: str = _key(16)
    measure: str = _key(8)  # "run" or "wait"
    bucket: int = Field(primary_key=True)
    tasks: int = 0


class AnalyticsDurationWeekly(SQLModel, table=True):
    """The same histograms per Monday-to-Sunday UTC week: a long window reads few rows."""

    __tablename__ = "analytics_durations_weekly"

    owner: str = _key(128)
    week: int = Field(primary_key=True)  # service.domain.analytics.week_of
    task_type: str = _key(64)
    entity_type: str = _key(64)
    queue: str = _key(16)
    measure: str = _key(8)
    bucket: int = Field(primary_key=True)
    tasks: int = 0


class AnalyticsFailure(SQLModel, table=True):
    """Failed tasks per error message (cut) and UTC day of creation."""

    __tablename__ = "analytics_failures"

    owner: str = _key(128)
    day: int = Field(primary_key=True)
    task_type: str = _key(64)
    entity_type: str = _key(64)
    queue: str = _key(16)
    message: str = _key(200)
    tasks: int = 0


class AnalyticsWatermark(SQLModel, table=True):
    """How far the rollup got: every change of a task before `watermark` is in it."""

    __tablename__ = "analytics_watermark"

    name: str = _key(32)
    watermark: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


analytics_tasks_table = AnalyticsTask.__table__  # type: ignore[attr-defined]
analytics_staging_table = AnalyticsStaging.__table__  # type: ignore[attr-defined]
analytics_daily_table = AnalyticsDaily.__table__  # type: ignore[attr-defined]
analytics_hourly_table = AnalyticsHourly.__table__  # type: ignore[attr-defined]
analytics_durations_table = AnalyticsDuration.__table__  # type: ignore[attr-defined]
analytics_durations_weekly_table = AnalyticsDurationWeekly.__table__  # type: ignore[attr-defined]
analytics_failures_table = AnalyticsFailure.__table__  # type: ignore[attr-defined]
analytics_watermark_table = AnalyticsWatermark.__table__  # type: ignore[attr-defined]


class SettingVersionRow(SQLModel, table=True):
    """One saved version of a settings key, with its audit: who, when, what changed. The
    primary key makes two saves of the same version collide: the later one is stale (412)."""

    __tablename__ = "setting_versions"

    key: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    document: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    changes: list[Any] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    changed_by: str = Field(max_length=128)
    changed_at: datetime = _ts(nullable=False)


setting_versions_table = SettingVersionRow.__table__  # type: ignore[attr-defined]


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
