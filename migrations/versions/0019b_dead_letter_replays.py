"""Dead letters can be replayed: when and by whom the last replay was, and an audit row per
replay (who, when, the outbox row that re-published the event).

Revision ID: 0019b
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019b"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.add_column(sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("replayed_by", sa.String(128), nullable=True))
    op.create_table(
        "dead_letter_replays",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("dead_letter_id", sa.BigInteger(), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="dead_letter_replays_pkey"),
    )
    op.create_index(
        "ix_dead_letter_replays_dead_letter", "dead_letter_replays", ["dead_letter_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_dead_letter_replays_dead_letter", table_name="dead_letter_replays")
    op.drop_table("dead_letter_replays")
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("replayed_by")
        batch.drop_column("replayed_at")
