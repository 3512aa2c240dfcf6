"""Date-only due dates: tasks.due_date, the instant it stands at, and the due sort's indexes.

A task is due at an instant (due_at) or on a calendar day (due_date), never both. A
date-only task stands, for the due_after/due_before filters and the due_at sorts, at the
first instant of its day in its user's current time zone. That instant depends on a row of
another table (users.timezone), so no index expression can compute it; it is stored in
due_date_start and kept by the application (app.tasks): set when a task's due_date is
written, and recomputed for all of a user's date-only tasks, in the same transaction, when
the user's timezone changes. The keyset indexes of 0002 on COALESCE(due_at, stand-in)
become COALESCE(due_at, due_date_start, stand-in).

app.models.local_day_start computes that instant (in Python, with zoneinfo: its docstring
says why not with PostgreSQL's AT TIME ZONE, and what it gives on days that start at 01:00).

No rewrite and no long lock on a large table: the columns are nullable without a default
(catalog-only changes); the constraints are added NOT VALID (a brief lock) and validated in
a transaction of their own, which scans the table holding only a SHARE UPDATE EXCLUSIVE lock;
the indexes are built and dropped CONCURRENTLY, outside a transaction (autocommit blocks). A
lock_timeout makes the brief locks fail fast instead of queueing every query of the table
behind a long transaction. The upgrade can be run again after a failure part way; a failed
CONCURRENTLY build leaves an INVALID index, which must be dropped by hand first.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CONSTRAINTS = {
    "ck_tasks_one_due": "due_at IS NULL OR due_date IS NULL",
    "ck_tasks_due_date_start_set": "(due_date IS NULL) = (due_date_start IS NULL)",
}
NEW_INDEXES = {
    "ix_tasks_user_id_due_last_asc_id": "COALESCE(due_at, due_date_start, 'infinity'::timestamptz)",
    "ix_tasks_user_id_due_last_desc_id": "COALESCE(due_at, due_date_start, '-infinity'::timestamptz)",
}
OLD_INDEXES = {
    "ix_tasks_user_id_due_at_last_asc_id": "COALESCE(due_at, 'infinity'::timestamptz)",
    "ix_tasks_user_id_due_at_last_desc_id": "COALESCE(due_at, '-infinity'::timestamptz)",
}


def _build_concurrently(indexes: dict) -> None:
    with op.get_context().autocommit_block():
        for name, expression in indexes.items():
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON tasks (user_id, {expression}, id)")


def _drop_concurrently(indexes: dict) -> None:
    with op.get_context().autocommit_block():
        for name in indexes:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def upgrade():
    # Safe to run again after a failure part way (the autocommit blocks commit what precedes them).
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute("ALTER TABLE tasks ADD COLUMN IF NOT EXISTS due_date date")
    op.execute("ALTER TABLE tasks ADD COLUMN IF NOT EXISTS due_date_start timestamptz")
    existing = set(
        op.get_bind().scalars(sa.text("SELECT conname FROM pg_constraint WHERE conrelid = 'tasks'::regclass"))
    )
    for name, condition in CONSTRAINTS.items():
        if name not in existing:
            op.execute(f"ALTER TABLE tasks ADD CONSTRAINT {name} CHECK ({condition}) NOT VALID")
    with op.get_context().autocommit_block():
        for name in CONSTRAINTS:
            op.execute(f"ALTER TABLE tasks VALIDATE CONSTRAINT {name}")
    _build_concurrently(NEW_INDEXES)
    _drop_concurrently(OLD_INDEXES)


def downgrade():
    _build_concurrently(OLD_INDEXES)
    _drop_concurrently(NEW_INDEXES)
    op.execute("SET LOCAL lock_timeout = '10s'")
    for name in CONSTRAINTS:
        op.drop_constraint(op.f(name), "tasks", type_="check")
    op.drop_column("tasks", "due_date_start")
    op.drop_column("tasks", "due_date")
