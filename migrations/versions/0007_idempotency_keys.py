"""idempotency_keys: Idempotency-Key records scoped to the caller and the operation;
tasks.auto_retries: the automatic retries maxRetries bounds (retry_count now counts every
retry, a person's included, as the original service did).

Keys used to be a unique (requested_by, idempotency_key) pair on tasks with the request's
hash beside it; they move to a table of their own keyed by owner, operation and key, so one
key can serve different operations and a record can outlive a change of its task.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", "operation", "key", name=op.f("idempotency_keys_pkey")),
    )
    op.create_index(
        "ix_idempotency_keys_created", "idempotency_keys", ["created_at"], unique=False
    )
    # Keys of existing tasks keep working for task creation (POST /tasks).
    op.execute(
        "INSERT INTO idempotency_keys (owner, operation, key, fingerprint, task_id, created_at) "
        "SELECT requested_by, 'tasks.create', idempotency_key, COALESCE(request_hash, ''), id, "
        "created_at FROM tasks WHERE idempotency_key IS NOT NULL"
    )
    with op.batch_alter_table("tasks") as batch:
        batch.drop_constraint("tasks_idempotency_key", type_="unique")
        batch.drop_column("request_hash")
        batch.add_column(
            sa.Column("auto_retries", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute("UPDATE tasks SET auto_retries = retry_count")  # budgets as they stood


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("auto_retries")
        batch.add_column(sa.Column("request_hash", sa.String(length=64), nullable=True))
        batch.create_unique_constraint(
            "tasks_idempotency_key", ["requested_by", "idempotency_key"]
        )
    op.execute(
        "UPDATE tasks SET request_hash = (SELECT NULLIF(k.fingerprint, '') FROM idempotency_keys k "
        "WHERE k.task_id = tasks.id AND k.operation = 'tasks.create')"
    )
    op.drop_index("ix_idempotency_keys_created", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
