"""files.upload_claim, files.upload_claimed_at: the one upload of a pending file in progress.

An upload through the service claims its file (a conditional update, committed before the bytes
stream) so that parallel uploads of one file cannot interleave; the timestamp, refreshed while
the bytes come, lets a claim left by a killed process be taken over.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("upload_claim", sa.String(length=32), nullable=True))
        batch.add_column(
            sa.Column("upload_claimed_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.drop_column("upload_claimed_at")
        batch.drop_column("upload_claim")
