"""Bulk import/export: the local store, import checkpoints and row errors; tasks.report_file_id.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("report_file_id", sa.String(length=255), nullable=True))
    op.create_table(
        "store_records",
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),  # json keeps key order; jsonb would not
        sa.Column("source_task_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entity", "key", name=op.f("store_records_pkey")),
    )
    op.create_index("ix_store_records_updated", "store_records", ["entity", "updated_at"])
    op.create_table(
        "import_checkpoints",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False)
          for name in ("last_row", "batches", "processed", "succeeded", "failed", "skipped",
                       "created", "updated")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_id", name=op.f("import_checkpoints_pkey")),
    )
    op.create_table(
        "import_row_errors",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("column", sa.String(length=128), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("import_row_errors_pkey")),
    )
    op.create_index("ix_import_row_errors_task", "import_row_errors", ["task_id", "row_number"])


def downgrade() -> None:
    op.drop_table("import_row_errors")
    op.drop_table("import_checkpoints")
    op.drop_index("ix_store_records_updated", "store_records")
    op.drop_table("store_records")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("report_file_id")
