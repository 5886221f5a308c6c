"""Tables of the service, as SQLAlchemy Core tables; API shapes live in service.api.schemas.

They were SQLModel classes (table=True) whose only use was their `__table__`: building a pydantic
model and an ORM mapping per table cost every process start ~95 ms of this module's own import
time, ~400 ms with what it imported (`python -X importtime`); as Core tables it is ~10 ms and
~210 ms. The columns are the ones SQLModel made, argument for argument (AutoString text columns,
`index`/`unique` stated as False, the fields' defaults as python-side column defaults), so the
schema, its DDL and alembic's comparison are unchanged: a dump of every column, constraint, index
and CREATE statement on PostgreSQL and SQLite was identical before and after.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    Table,
    UniqueConstraint,
    Uuid,
    text,
)

from service.db.types import AutoString, BigIntPK, JSONType, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "%(table_name)s_%(column_0_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}
metadata = MetaData(naming_convention=NAMING)


# Column shapes, each as SQLModel declared the field it replaces (`index` and `unique` given,
# a field's default as the column's python-side default).


def _str(
    name: str,
    length: int | None = None,
    *,
    nullable: bool = False,
    primary_key: bool = False,
    index: bool = False,
    unique: bool = False,
) -> Column[str]:
    """A `str` field: VARCHAR(length), or VARCHAR when no length is given."""
    return Column(
        name,
        AutoString(length),
        primary_key=primary_key,
        nullable=nullable,
        index=index,
        unique=unique,
    )


def _key(name: str, length: int) -> Column[str]:
    """A text part of a primary key."""
    return _str(name, length, primary_key=True)


def _int(
    name: str, default: int | None = None, *, nullable: bool = False, primary_key: bool = False
) -> Column[int]:
    return Column(
        name,
        Integer(),
        primary_key=primary_key,
        nullable=nullable,
        index=False,
        unique=False,
        default=default,
    )


def _bool(name: str, default: bool) -> Column[bool]:
    return Column(name, Boolean(), nullable=False, index=False, unique=False, default=default)


def _uuid(name: str, *, nullable: bool = False) -> Column[uuid.UUID]:
    return Column(name, Uuid(), primary_key=False, nullable=nullable, index=False, unique=False)


def _uuid_pk(name: str, default: Any = None) -> Column[uuid.UUID]:
    """A UUID primary key, made in Python (uuid4) when `default` says so."""
    return Column(
        name, Uuid(), primary_key=True, nullable=False, index=False, unique=False, default=default
    )


def _ts(name: str, nullable: bool = True, index: bool = False) -> Column[datetime]:
    return Column(name, UTCDateTime(), nullable=nullable, index=index)


def _id() -> Column[int]:
    """A BIGINT (INTEGER on SQLite) autoincrementing primary key."""
    return Column("id", BigIntPK, primary_key=True)


tasks_table = Table(
    "tasks",
    metadata,
    _uuid_pk("id", uuid.uuid4),
    _str("task_type", 64, index=True),
    _str("entity_type", 64, nullable=True, index=True),
    _str("status", 16),
    _int("priority", 1),
    _str("queue", 16),
    _str("requested_by", 128),
    Column("params", JSONType, nullable=False),
    Column("result", JSONType),
    _str("file_name", 255, nullable=True),
    Column("file_size", BigInteger(), nullable=True),
    _str("input_file_id", 255, nullable=True),
    _str("output_file_id", 255, nullable=True),
    _str("report_file_id", 255, nullable=True),
    _int("progress", 0),
    _int("total_items", nullable=True),
    _int("processed_items", 0),
    _int("succeeded_items", 0),
    _int("failed_items", 0),
    _ts("scheduled_at"),
    _ts("available_at", nullable=False),
    _ts("started_at"),
    _ts("completed_at"),
    _str("error_message", nullable=True),
    # every retry, automatic or asked for by a person
    _int("retry_count", 0),
    # automatic retries since a person last started the task: the budget maxRetries bounds
    _int("auto_retries", 0),
    _int("max_retries", 3),
    _int("attempts", 0),
    _ts("lease_until"),
    _str("worker_id", 128, nullable=True),
    _bool("cancel_requested", False),
    # when the last progress notice was queued: PATCH /progress announces at most one per
    # progress interval, however often an executor reports
    _ts("progress_announced_at"),
    # the Idempotency-Key it was created with (the key's record is in idempotency_keys)
    _str("idempotency_key", 255, nullable=True),
    _str("template_id", 64, nullable=True),
    # the version of its template it was made from
    _int("template_version", nullable=True),
    _str("name", 200, nullable=True),
    _str("description", 2000, nullable=True),
    Column("tags", JSONType, nullable=False),
    # the recurring schedule that made it, and the fire time it was made for
    _str("schedule_id", 64, nullable=True),
    _ts("fire_time"),
    # who is told what when it ends (service.catalog.notifications), as JSON
    Column("notification_settings", JSONType, nullable=True),
    _int("version", 1),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("deleted_at"),
    # W3C traceparent of the request that created it: its runs' spans continue that trace
    _str("traceparent", 64, nullable=True),
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
        "status",  # first: the status index can never look better to the planner (0021)
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

# An Idempotency-Key as its caller used it on one operation: a repeat of the request gets the
# same task back; the same key with another request is refused.
idempotency_keys_table = Table(
    "idempotency_keys",
    metadata,
    _key("owner", 128),
    _key("operation", 64),
    _key("key", 255),
    # SHA-256 of the request as the operation understood it
    _str("fingerprint", 64),
    _uuid("task_id"),
    _ts("created_at", nullable=False),
    Index("ix_idempotency_keys_created", "created_at"),
)

events_table = Table(
    "task_events",
    metadata,
    _id(),
    _uuid("task_id"),
    _str("event_type", 64),
    _str("from_status", 16, nullable=True),
    _str("to_status", 16, nullable=True),
    _str("actor", 128, nullable=True),
    _str("message", nullable=True),
    _ts("created_at", nullable=False),
    Index("ix_task_events_task", "task_id", "id"),
)

logs_table = Table(
    "task_logs",
    metadata,
    _id(),
    _uuid("task_id"),
    _str("level", 8),
    _str("message"),
    _int("attempt", nullable=True),
    Column("data", JSONType),
    _ts("created_at", nullable=False),
    Index("ix_task_logs_task", "task_id", "id"),
)

attempts_table = Table(
    "task_attempts",
    metadata,
    _id(),
    _uuid("task_id"),
    _int("attempt"),
    _str("worker_id", 128),
    _str("dispatch", 8),
    _str("outcome", 16),
    _str("error", nullable=True),
    _ts("started_at", nullable=False),
    _ts("finished_at"),
    _int("duration_ms", nullable=True),
    UniqueConstraint("task_id", "attempt", name="task_attempts_task_attempt"),
)

outbox_table = Table(
    "outbox",
    metadata,
    _id(),
    _str("topic", 128),
    _uuid("task_id", nullable=True),
    # the CloudEvent's subject and ordering key of a row without a task (e.g. settings/payment)
    _str("subject", 200, nullable=True),
    Column("payload", JSONType, nullable=False),
    _str("traceparent", 64, nullable=True),
    _int("attempts", 0),
    _str("last_error", nullable=True),
    _ts("created_at", nullable=False),
    _ts("published_at"),
    # claimed by the process that wrote it, which publishes it from memory until then (the
    # first events of a group of creates, see service/events/relay.py); others leave it alone
    _ts("claimed_until"),
    Index(
        "ix_outbox_unpublished",
        "id",
        postgresql_where=text("published_at IS NULL"),
        sqlite_where=text("published_at IS NULL"),
    ),
)

# One row per maintenance job tick, so several replicas never run the same tick.
job_runs_table = Table(
    "job_runs",
    metadata,
    _id(),
    _str("job", 64),
    Column("slot", BigIntPK, nullable=False),
    _str("runner", 128),
    _ts("started_at", nullable=False),
    _ts("finished_at"),
    _str("outcome", 16, nullable=True),
    _str("detail", nullable=True),
    UniqueConstraint("job", "slot", name="job_runs_job_slot"),
)

# An event Dapr gave up delivering (retries exhausted or dropped), as it landed.
dead_letters_table = Table(
    "dead_letters",
    metadata,
    _id(),
    _str("event_id", 128, unique=True),
    _str("event_type", 128, nullable=True),
    _str("topic", 128, nullable=True),
    _uuid("task_id", nullable=True),
    Column("payload", JSONType, nullable=False),
    _ts("received_at", nullable=False),
    # the last replay (an admin re-published the event through the outbox)
    _ts("replayed_at"),
    _str("replayed_by", 128, nullable=True),
)

# Who replayed which dead letter, when, and the outbox row that re-published it.
dead_letter_replays_table = Table(
    "dead_letter_replays",
    metadata,
    _id(),
    Column("dead_letter_id", BigInteger(), nullable=False),
    Column("outbox_id", BigInteger(), nullable=False),
    _str("actor", 128),
    _ts("created_at", nullable=False),
    Index("ix_dead_letter_replays_dead_letter", "dead_letter_id", "id"),
)

# The built-in local store: imported records of each entity, keyed by the entity's key.
store_records_table = Table(
    "store_records",
    metadata,
    _key("entity", 32),
    _key("key", 255),
    # plain JSON, not JSONB: it keeps the record's text as written, key order included, so an
    # export reproduces the imported file byte for byte.
    Column("data", JSON, nullable=False),
    _uuid("source_task_id", nullable=True),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    Index("ix_store_records_updated", "entity", "updated_at"),
)

# How far an import got: written in the same transaction as the batch it follows.
checkpoints_table = Table(
    "import_checkpoints",
    metadata,
    _uuid_pk("task_id"),
    _int("last_row", 0),
    _int("batches", 0),
    _int("processed", 0),
    _int("succeeded", 0),
    _int("failed", 0),
    _int("skipped", 0),
    _int("created", 0),
    _int("updated", 0),
    _ts("updated_at", nullable=False),
)

# One line of an import's error report.
row_errors_table = Table(
    "import_row_errors",
    metadata,
    _id(),
    _uuid("task_id"),
    _int("row_number"),
    _str("column", 128, nullable=True),
    _str("value", nullable=True),
    _str("message"),
    Index("ix_import_row_errors_task", "task_id", "row_number"),
)

# A stored file: a task's input upload, output or error report; the bytes live in the store.
files_table = Table(
    "files",
    metadata,
    _uuid_pk("id", uuid.uuid4),
    _str("key", 1024, unique=True),
    _str("file_name", 255),
    _str("content_type", 255),
    Column("size", BigInteger(), nullable=True),
    # Lowercase hex SHA-256 of the stored bytes (announced by the client while pending).
    _str("sha256", 64, nullable=True),
    _str("status", 16),
    _str("owner", 128),
    _uuid("task_id", nullable=True),
    _str("purpose", 16),
    _ts("created_at", nullable=False),
    _ts("expires_at"),
    # The token of the upload that is streaming this pending file's bytes in, and when it last
    # showed life (a claim left by a killed process is taken over once it is stale).
    _str("upload_claim", 32, nullable=True),
    _ts("upload_claimed_at"),
    Index("ix_files_owner_list", "owner", "created_at", "id"),
    Index("ix_files_task", "task_id", "purpose"),
    Index("ix_files_expires", "expires_at"),
)

# A task template: its identity and state; what it says is in its versions.
templates_table = Table(
    "templates",
    metadata,
    _key("id", 64),
    # the newest version, the one used when a caller names none
    _int("latest_version", 1),
    _bool("active", True),
    _str("created_by", 128),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("deactivated_at"),
)

# One version of a template, never changed once written: tasks name the version they were made
# from.
template_versions_table = Table(
    "template_versions",
    metadata,
    _key("template_id", 64),
    _int("version", primary_key=True),
    _str("name", 200),
    _str("description", 2000, nullable=True),
    _str("category", 64, nullable=True),
    _str("task_type", 64),
    _str("entity_type", 64, nullable=True),
    Column("params", JSONType, nullable=False),
    Column("required_fields", JSONType, nullable=False),
    Column("optional_fields", JSONType, nullable=False),
    Column("params_schema", JSONType, nullable=False),
    _str("role", 64, nullable=True),
    Column("tags", JSONType, nullable=False),
    _int("priority", nullable=True),
    _str("queue", 16, nullable=True),
    _int("max_retries", nullable=True),
    Column("notification_settings", JSONType, nullable=True),
    _str("created_by", 128),
    _ts("created_at", nullable=False),
    Index("ix_template_versions_task_type", "task_type"),
)

# A recurring schedule: a cron in a time zone that makes tasks as its owner.
schedules_table = Table(
    "schedules",
    metadata,
    _uuid_pk("id", uuid.uuid4),
    _str("name", 200),
    _str("description", 2000, nullable=True),
    _str("owner", 128),
    # the owner's roles when the schedule was last saved: its tasks are made with them
    Column("owner_roles", JSONType, nullable=False),
    _str("cron", 200),
    _str("time_zone", 64),
    _str("template_id", 64, nullable=True),
    _int("template_version", nullable=True),
    _str("task_type", 64, nullable=True),
    _str("entity_type", 64, nullable=True),
    Column("params", JSONType, nullable=False),
    _int("priority", nullable=True),
    _str("queue", 16, nullable=True),
    _int("max_retries", nullable=True),
    Column("tags", JSONType, nullable=False),
    Column("notification_settings", JSONType, nullable=True),
    _str("overlap_policy", 16),
    _str("catch_up", 16),
    _int("catch_up_limit", 10),
    _ts("start_at"),
    _ts("end_at"),
    _str("status", 16),
    _str("paused_reason", 2000, nullable=True),
    # the next fire time a tick makes (None: none left before endAt)
    _ts("next_fire_at"),
    # a fire time waiting for the last task to finish (overlapPolicy queue-one)
    _ts("queued_fire_at"),
    _ts("last_fire_at"),
    _uuid("last_task_id", nullable=True),
    _int("version", 1),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
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

# One fire time of one schedule: its unique key is what makes one task per fire time across
# every replica.
schedule_runs_table = Table(
    "schedule_runs",
    metadata,
    _id(),
    _uuid("schedule_id"),
    _ts("fire_time", nullable=False),
    _str("outcome", 16),
    _uuid("task_id", nullable=True),
    _ts("created_at", nullable=False),
    UniqueConstraint("schedule_id", "fire_time", name="schedule_runs_schedule_fire_time"),
    Index("ix_schedule_runs_created", "created_at"),  # retention
)

# A user's in-app notification (the inbox): the original service's `messages`.
messages_table = Table(
    "messages",
    metadata,
    _uuid_pk("id", uuid.uuid4),
    _str("recipient", 128),
    _uuid("task_id", nullable=True),
    # completed, failed, cancelled, progress, message (a notification batch's)
    _str("kind", 32),
    _str("title", 200),
    _str("body"),
    Column("data", JSONType),
    _ts("created_at", nullable=False),
    _ts("read_at"),
    Index("ix_messages_inbox", "recipient", "created_at", "id"),
)

# One webhook notification to POST; the worker delivers it with retries.
deliveries_table = Table(
    "webhook_deliveries",
    metadata,
    _uuid_pk("id", uuid.uuid4),
    _uuid("task_id", nullable=True),
    # whose signing secret signs it (the task's submitter)
    _str("owner", 128),
    _str("url", 2048),
    _str("reason", 32),
    Column("payload", JSONType, nullable=False),
    # pending, delivered, failed
    _str("status", 16),
    _int("attempts", 0),
    _ts("next_attempt_at", nullable=False),
    # a worker is delivering it until then (another may take it over after)
    _ts("lease_until"),
    _int("last_status_code", nullable=True),
    _str("last_error", nullable=True),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("delivered_at"),
    Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
    Index("ix_webhook_deliveries_task", "task_id", "created_at"),
)

# One try of a webhook delivery: what the receiver answered, or why it could not.
webhook_attempts_table = Table(
    "webhook_attempts",
    metadata,
    _id(),
    _uuid("delivery_id"),
    _int("attempt"),
    _ts("started_at", nullable=False),
    _int("status_code", nullable=True),
    _str("error", nullable=True),
    _int("duration_ms"),
    Index("ix_webhook_attempts_delivery", "delivery_id", "attempt"),
)

# A user's webhook signing secret (Standard Webhooks "whsec_…"), shown once when made.
webhook_secrets_table = Table(
    "webhook_secrets",
    metadata,
    _key("owner", 128),
    _str("secret", 128),
    _ts("created_at", nullable=False),
)

# A progress milestone a task was already told about (each is told once).
marks_table = Table(
    "notification_marks",
    metadata,
    _uuid_pk("task_id"),
    _key("mark", 32),
    _ts("created_at", nullable=False),
)

# Analytics (service/usecases/analytics.py): a rollup of the tasks table kept by a maintenance
# job up to a watermark on updated_at; an answer adds what changed since, computed live.


def _contribution() -> list[Column[Any]]:
    """What one task adds to the rollup, as the rollup last saw it (times in UTC)."""
    return [
        _uuid_pk("task_id"),
        _str("owner", 128),
        # whole hours since 1970 of its created_at
        _int("hour"),
        _str("task_type", 64),
        _str("entity_type", 64),  # "" for none
        _str("queue", 16),
        _str("status", 16),
        _int("retried"),  # 1 when retried at least once
        _int("attempts"),
        _int("run_bucket"),  # service.domain.analytics buckets; -1: it has not run to an end
        _int("wait_bucket"),  # -1: it has not started
        _str("message", 200),  # a failed task's error, cut; "" otherwise
    ]


# Each task's part in the rollup, so a later change of the task can take it back out.
analytics_tasks_table = Table(
    "analytics_tasks",
    metadata,
    *_contribution(),
    Index("ix_analytics_tasks_hour", "hour"),
)

# The rollup job's changed tasks of one run (empty between runs).
analytics_staging_table = Table("analytics_staging", metadata, *_contribution())

# Tasks per UTC day of creation, owner ("" = everyone), type, entity, queue and status.
analytics_daily_table = Table(
    "analytics_daily",
    metadata,
    _key("owner", 128),
    _int("day", primary_key=True),
    _key("task_type", 64),
    _key("entity_type", 64),
    _key("queue", 16),
    _key("status", 16),
    _int("tasks", 0),
    _int("retried", 0),
    _int("attempts", 0),
)

# Tasks per UTC hour of creation (busiest hours and days of the week).
analytics_hourly_table = Table(
    "analytics_hourly",
    metadata,
    _key("owner", 128),
    _int("hour", primary_key=True),
    _key("task_type", 64),
    _key("entity_type", 64),
    _key("queue", 16),
    _int("tasks", 0),
)

# Histograms of run time and queue wait per UTC day of creation.
analytics_durations_table = Table(
    "analytics_durations",
    metadata,
    _key("owner", 128),
    _int("day", primary_key=True),
    _key("task_type", 64),
    _key("entity_type", 64),
    _key("queue", 16),
    _key("measure", 8),  # "run" or "wait"
    _int("bucket", primary_key=True),
    _int("tasks", 0),
)

# The same histograms per Monday-to-Sunday UTC week: a long window reads few rows.
analytics_durations_weekly_table = Table(
    "analytics_durations_weekly",
    metadata,
    _key("owner", 128),
    _int("week", primary_key=True),  # service.domain.analytics.week_of
    _key("task_type", 64),
    _key("entity_type", 64),
    _key("queue", 16),
    _key("measure", 8),
    _int("bucket", primary_key=True),
    _int("tasks", 0),
)

# Failed tasks per error message (cut) and UTC day of creation.
analytics_failures_table = Table(
    "analytics_failures",
    metadata,
    _key("owner", 128),
    _int("day", primary_key=True),
    _key("task_type", 64),
    _key("entity_type", 64),
    _key("queue", 16),
    _key("message", 200),
    _int("tasks", 0),
)

# How far the rollup got: every change of a task before `watermark` is in it.
analytics_watermark_table = Table(
    "analytics_watermark",
    metadata,
    _key("name", 32),
    _ts("watermark", nullable=False),
    _ts("updated_at", nullable=False),
)

# One saved version of a settings key, with its audit: who, when, what changed. The primary key
# makes two saves of the same version collide: the later one is stale (412).
setting_versions_table = Table(
    "setting_versions",
    metadata,
    _key("key", 64),
    _int("version", primary_key=True),
    Column("document", JSONType, nullable=False),
    Column("changes", JSONType, nullable=False),
    _str("changed_by", 128),
    _ts("changed_at", nullable=False),
)

# A paused queue: workers' claims skip it (runs already started finish).
queue_pauses_table = Table(
    "queue_pauses",
    metadata,
    _key("queue", 16),
    _str("paused_by", 128),
    _ts("paused_at", nullable=False),
)

# Who paused or resumed which queue, when.
queue_audit_table = Table(
    "queue_audit",
    metadata,
    _id(),
    _str("queue", 16),
    _str("action", 16),
    _str("actor", 128),
    _ts("created_at", nullable=False),
    Index("ix_queue_audit_queue", "queue", "id"),
)
