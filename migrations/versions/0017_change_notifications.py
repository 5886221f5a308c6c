"""PostgreSQL: a NOTIFY on channel `ops_changes` for each transaction that writes outbox rows
or task logs, so each API process's one LISTEN connection wakes its streams (SQLite: nothing;
there the process that commits wakes its own streams).

A statement-level trigger notifies with an empty payload; PostgreSQL folds identical
notifications of one transaction into one, delivered at commit (never on rollback).

Revision ID: 0017
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0018"
branch_labels = None
depends_on = None

TABLES = ("outbox", "task_logs")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION ops_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN PERFORM pg_notify('ops_changes', ''); RETURN NULL; END $$"
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_notify_change AFTER INSERT ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION ops_notify_change()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify_change ON {table}")
    op.execute("DROP FUNCTION IF EXISTS ops_notify_change()")
