"""Task templates: a template and its versions (each version unchanged once written).

Revision ID: 0011
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0011"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "templates",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="templates_pkey"),
    )
    op.create_table(
        "template_versions",
        sa.Column("template_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(2000), nullable=True),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("task_type", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(64), nullable=True),
        sa.Column("params", JSON, nullable=False),
        sa.Column("required_fields", JSON, nullable=False),
        sa.Column("optional_fields", JSON, nullable=False),
        sa.Column("params_schema", JSON, nullable=False),
        sa.Column("role", sa.String(64), nullable=True),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("queue", sa.String(16), nullable=True),
        sa.Column("max_retries", sa.Integer(), nullable=True),
        sa.Column("notification_settings", JSON, nullable=True),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("template_id", "version", name="template_versions_pkey"),
    )
    op.create_index("ix_template_versions_task_type", "template_versions", ["task_type"])


def downgrade() -> None:
    op.drop_index("ix_template_versions_task_type", table_name="template_versions")
    op.drop_table("template_versions")
    op.drop_table("templates")
