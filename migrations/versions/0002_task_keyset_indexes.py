"""Keyset indexes for the task sorts whose key may be null (due_at, priority).

The task list sorts nulls last in both directions. It sorts a nullable key as
COALESCE(key, stand-in), with a stand-in beyond every real value, so that one row
comparison `(key, id) > (k, i)` pages through the nulls too and an index serves both
the order and the cursor. Each direction needs its own index (the nulls must sort
lowest for one and highest for the other); a descending sort scans its index
backwards. The expressions must stay exactly those of app.models and app.tasks (the
planner matches them literally).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_tasks_user_id_due_at_last_asc_id": "COALESCE(due_at, 'infinity'::timestamptz)",
    "ix_tasks_user_id_due_at_last_desc_id": "COALESCE(due_at, '-infinity'::timestamptz)",
    "ix_tasks_user_id_priority_last_asc_id": "COALESCE(priority_level, 5::smallint)",
    "ix_tasks_user_id_priority_last_desc_id": "COALESCE(priority_level, 0::smallint)",
}


def upgrade():
    for name, expression in INDEXES.items():
        op.create_index(name, "tasks", ["user_id", sa.literal_column(expression), "id"], unique=False)


def downgrade():
    for name in reversed(INDEXES):
        op.drop_index(name, table_name="tasks")
