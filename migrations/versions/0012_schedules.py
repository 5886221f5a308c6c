"""Recurring schedules and their runs (one row per fire time, unique: one task per fire time).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(2000), nullable=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("owner_roles", JSON, nullable=False),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("template_id", sa.String(64), nullable=True),
        sa.Column("template_version", sa.Integer(), nullable=True),
        sa.Column("task_type", sa.String(64), nullable=True),
        sa.Column("entity_type", sa.String(64), nullable=True),
        sa.Column("params", JSON, nullable=False),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("queue", sa.String(16), nullable=True),
        sa.Column("max_retries", sa.Integer(), nullable=True),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("notification_settings", JSON, nullable=True),
        sa.Column("overlap_policy", sa.String(16), nullable=False),
        sa.Column("catch_up", sa.String(16), nullable=False),
        sa.Column("catch_up_limit", sa.Integer(), nullable=False),
        _ts("start_at"),
        _ts("end_at"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("paused_reason", sa.String(2000), nullable=True),
        _ts("next_fire_at"),
        _ts("queued_fire_at"),
        _ts("last_fire_at"),
        sa.Column("last_task_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="schedules_pkey"),
    )
    op.create_index(
        "ix_schedules_due",
        "schedules",
        ["next_fire_at"],
        postgresql_where=sa.text("status = 'active'"),
        sqlite_where=sa.text("status = 'active'"),
    )
    op.create_index(
        "ix_schedules_queued",
        "schedules",
        ["queued_fire_at"],
        postgresql_where=sa.text("status = 'active' AND queued_fire_at IS NOT NULL"),
        sqlite_where=sa.text("status = 'active' AND queued_fire_at IS NOT NULL"),
    )
    op.create_index("ix_schedules_owner_list", "schedules", ["owner", "created_at", "id"])
    op.create_index("ix_schedules_list", "schedules", ["created_at", "id"])
    op.create_table(
        "schedule_runs",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("schedule_id", sa.Uuid(), nullable=False),
        _ts("fire_time", nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="schedule_runs_pkey"),
        sa.UniqueConstraint(
            "schedule_id", "fire_time", name="schedule_runs_schedule_fire_time"
        ),
    )
    op.create_index("ix_schedule_runs_created", "schedule_runs", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_schedule_runs_created", table_name="schedule_runs")
    op.drop_table("schedule_runs")
    op.drop_index("ix_schedules_list", table_name="schedules")
    op.drop_index("ix_schedules_owner_list", table_name="schedules")
    op.drop_index("ix_schedules_queued", table_name="schedules")
    op.drop_index("ix_schedules_due", table_name="schedules")
    op.drop_table("schedules")
