"""outbox.claimed_until: rows their writer publishes itself, from memory, until then.

A group of creates writes its tasks' first outbox rows claimed by the process that wrote them
(service/events/relay.py): its relay publishes them right after the commit and marks them in
one statement, without the relay lock's transaction; other relays' table drains leave a
claimed row, and the later rows of its task, alone until the claim is settled or runs out
(the writer died: then they publish it, late but not lost).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_until")
