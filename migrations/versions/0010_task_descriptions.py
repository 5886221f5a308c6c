"""Tasks get what people organise them by and what made them: name, description, tags, the
template version, the schedule and fire time, and notification settings.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("template_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("description", sa.String(2000), nullable=True))
        batch.add_column(
            sa.Column("tags", JSON, nullable=False, server_default=sa.text("'[]'"))
        )
        batch.add_column(sa.Column("schedule_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("fire_time", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("notification_settings", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        for column in (
            "notification_settings",
            "fire_time",
            "schedule_id",
            "tags",
            "description",
            "name",
            "template_version",
        ):
            batch.drop_column(column)
