"""The claim index holds the claim's whole order (queue, priority, age, then id), so a claim
reads only the tasks it takes instead of sorting every pending task of its queue.

Before, `id` was not in the index while the claim orders by it last (a stable order among
equal priority and age), so PostgreSQL read the whole pending backlog of the queue and
sorted it on every claim: 10,000 rows for a claim of 300 (bench/README.md, the drain).
The index covers pending tasks only, so rebuilding it is quick even on a large table (the
create waits for it: writes to tasks pause for that moment).

Revision ID: 0020
Revises: 0019b
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019b"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def _claim_index(columns: list[str | sa.TextClause]) -> None:
    op.create_index(
        "ix_tasks_claim",
        "tasks",
        columns,
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def upgrade() -> None:
    op.drop_index("ix_tasks_claim", table_name="tasks")
    _claim_index(["queue", sa.text("priority DESC"), "available_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_claim", table_name="tasks")
    _claim_index(["queue", sa.text("priority DESC"), "available_at"])
