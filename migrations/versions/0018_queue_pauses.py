"""Queues can be paused: a row per paused queue (claims skip it) and an audit trail of who
paused and resumed which queue.

Revision ID: 0018
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_pauses",
        sa.Column("queue", sa.String(16), nullable=False),
        sa.Column("paused_by", sa.String(128), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("queue", name="queue_pauses_pkey"),
    )
    op.create_table(
        "queue_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("queue", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="queue_audit_pkey"),
    )
    op.create_index("ix_queue_audit_queue", "queue_audit", ["queue", "id"])


def downgrade() -> None:
    op.drop_index("ix_queue_audit_queue", table_name="queue_audit")
    op.drop_table("queue_audit")
    op.drop_table("queue_pauses")
