"""The lease index leads with the status, so the lease expiry never goes through the status
index instead, whatever the planner's statistics say.

Partial on `status = 'processing'` with `lease_until` alone, it tied with the status index
(`status, updated_at`) whenever the statistics were taken before a burst of claims (they said
no task was processing): the planner then took the status index and read every running task
to find none expired (2,000 of 2,000 in tests/integration/worker/test_claim_cost.py). With
`status` first, the same query's two conditions are both index conditions here and only one
there, so this index wins in every state of the statistics, for custom and generic plans.
It covers running tasks only: rebuilding it is quick.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

PROCESSING = sa.text("status = 'processing'")


def _lease_index(columns: list[str]) -> None:
    op.create_index(
        "ix_tasks_lease",
        "tasks",
        columns,
        postgresql_where=PROCESSING,
        sqlite_where=PROCESSING,
    )


def upgrade() -> None:
    op.drop_index("ix_tasks_lease", table_name="tasks")
    _lease_index(["status", "lease_until"])


def downgrade() -> None:
    op.drop_index("ix_tasks_lease", table_name="tasks")
    _lease_index(["lease_until"])
