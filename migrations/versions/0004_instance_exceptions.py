"""Instance exceptions (skip, move) and the calendar feed.

An occurrence is now identified by the rule's slot, `original_occurs_at`, and listed by
`occurs_at`, where it is now: the unique index moves to the slot, and `occurs_at` keeps a plain
index for the windows. No statement rewrites the table: on PostgreSQL 11+ ADD COLUMN with a
constant default (`skipped`, `detached`) or with no default (`original_occurs_at`) only changes
the catalog. `original_occurs_at` is then filled by one UPDATE (new row versions, no exclusive
rewrite) and made NOT NULL (one scan). Like every migration here it runs in one transaction.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade():
    op.add_column("task_instances", sa.Column("original_occurs_at", TZ, nullable=True))
    op.add_column(
        "task_instances", sa.Column("skipped", sa.Boolean(), server_default="false", nullable=False)
    )
    op.add_column(
        "task_instances", sa.Column("detached", sa.Boolean(), server_default="false", nullable=False)
    )
    op.execute("UPDATE task_instances SET original_occurs_at = occurs_at")
    op.alter_column("task_instances", "original_occurs_at", nullable=False)
    op.create_index(
        "uq_task_instances_recurring_task_id_original_occurs_at",
        "task_instances",
        ["recurring_task_id", "original_occurs_at"],
        unique=True,
    )
    op.drop_index("uq_task_instances_recurring_task_id_occurs_at", table_name="task_instances")
    op.create_index(
        "ix_task_instances_recurring_task_id_occurs_at",
        "task_instances",
        ["recurring_task_id", "occurs_at"],
        unique=False,
    )
    op.create_table(
        "calendar_feeds",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_calendar_feeds_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_calendar_feeds")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_calendar_feeds_secret_hash")),
    )


def downgrade():
    op.drop_table("calendar_feeds")
    # Moved occurrences go back to their slots: the old unique index is on occurs_at.
    op.execute(
        "UPDATE task_instances SET occurs_at = original_occurs_at WHERE occurs_at <> original_occurs_at"
    )
    op.drop_index("ix_task_instances_recurring_task_id_occurs_at", table_name="task_instances")
    op.create_index(
        "uq_task_instances_recurring_task_id_occurs_at",
        "task_instances",
        ["recurring_task_id", "occurs_at"],
        unique=True,
    )
    op.drop_index("uq_task_instances_recurring_task_id_original_occurs_at", table_name="task_instances")
    op.drop_column("task_instances", "detached")
    op.drop_column("task_instances", "skipped")
    op.drop_column("task_instances", "original_occurs_at")
