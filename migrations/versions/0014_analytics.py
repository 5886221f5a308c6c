"""Analytics: a rollup of the tasks (per day, hour, duration bucket and failure message, per
owner and for everyone), each task's part in it, a staging table for the rollup job and its
watermark.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: The rollup tables: their keys after owner (a string or an integer) and their measures.
_ROLLUPS: dict[str, tuple[list[tuple[str, Any]], list[str]]] = {
    "analytics_daily": (
        [
            ("day", sa.Integer()),
            ("task_type", sa.String(64)),
            ("entity_type", sa.String(64)),
            ("queue", sa.String(16)),
            ("status", sa.String(16)),
        ],
        ["tasks", "retried", "attempts"],
    ),
    "analytics_hourly": (
        [
            ("hour", sa.Integer()),
            ("task_type", sa.String(64)),
            ("entity_type", sa.String(64)),
            ("queue", sa.String(16)),
        ],
        ["tasks"],
    ),
    "analytics_durations": (
        [
            ("day", sa.Integer()),
            ("task_type", sa.String(64)),
            ("entity_type", sa.String(64)),
            ("queue", sa.String(16)),
            ("measure", sa.String(8)),
            ("bucket", sa.Integer()),
        ],
        ["tasks"],
    ),
    "analytics_durations_weekly": (
        [
            ("week", sa.Integer()),
            ("task_type", sa.String(64)),
            ("entity_type", sa.String(64)),
            ("queue", sa.String(16)),
            ("measure", sa.String(8)),
            ("bucket", sa.Integer()),
        ],
        ["tasks"],
    ),
    "analytics_failures": (
        [
            ("day", sa.Integer()),
            ("task_type", sa.String(64)),
            ("entity_type", sa.String(64)),
            ("queue", sa.String(16)),
            ("message", sa.String(200)),
        ],
        ["tasks"],
    ),
}


def _contribution(name: str) -> None:
    op.create_table(
        name,
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("task_type", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("retried", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_bucket", sa.Integer(), nullable=False),
        sa.Column("wait_bucket", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("task_id", name=f"{name}_pkey"),
    )


def upgrade() -> None:
    _contribution("analytics_tasks")
    op.create_index("ix_analytics_tasks_hour", "analytics_tasks", ["hour"])
    _contribution("analytics_staging")
    for table, (keys, measures) in _ROLLUPS.items():
        op.create_table(
            table,
            sa.Column("owner", sa.String(128), nullable=False),
            *[sa.Column(key, type_, nullable=False) for key, type_ in keys],
            *[sa.Column(m, sa.Integer(), nullable=False) for m in measures],
            sa.PrimaryKeyConstraint("owner", *[k for k, _ in keys], name=f"{table}_pkey"),
        )
    op.create_table(
        "analytics_watermark",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="analytics_watermark_pkey"),
    )


def downgrade() -> None:
    for table in ("analytics_watermark", *reversed(_ROLLUPS), "analytics_staging"):
        op.drop_table(table)
    op.drop_index("ix_analytics_tasks_hour", table_name="analytics_tasks")
    op.drop_table("analytics_tasks")
