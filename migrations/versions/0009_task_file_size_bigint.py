"""tasks.file_size: BIGINT, as files.size is. An announced fileSize over 2 GiB (uploads may be up
to OPS_FILES_MAX_BYTES, 5 GiB by default) overflowed PostgreSQL's INTEGER: a 500.

SQLite's INTEGER already holds 64 bits; only PostgreSQL's column changes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("tasks", "file_size", type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("tasks", "file_size", type_=sa.Integer(), existing_type=sa.BigInteger())
