"""Delta sync: a change counter per user, a stamp per row, tombstones (see app/sync.py).

`ADD COLUMN ... NOT NULL DEFAULT 0` only writes the catalog on PostgreSQL 11 and later: the
existing rows read the default without being rewritten, so this is quick on a large tasks
table. task_instances gets its owner's id (copied from the definition) so that a sync reads
each table by one index on (user_id, sync_seq, id), whatever the number of rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

STAMPED = ("tasks", "tags", "recurring_tasks", "task_instances")


def _seq_column(name: str = "sync_seq") -> sa.Column:
    return sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)


def upgrade():
    op.add_column("users", _seq_column())
    op.add_column("users", _seq_column("sync_pruned_seq"))
    for table in STAMPED:
        op.add_column(table, _seq_column())
    op.add_column("task_instances", sa.Column("user_id", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE task_instances SET user_id = recurring_tasks.user_id FROM recurring_tasks "
        "WHERE recurring_tasks.id = task_instances.recurring_task_id"
    )
    op.alter_column("task_instances", "user_id", nullable=False)
    op.create_foreign_key(
        op.f("fk_task_instances_user_id_users"),
        "task_instances",
        "users",
        ["user_id"],
        ["id"],
        ondelete="CASCADE",
    )
    for table in STAMPED:
        op.create_index(f"ix_{table}_user_id_sync_seq_id", table, ["user_id", "sync_seq", "id"])
    op.create_table(
        "sync_tombstones",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("sync_seq", sa.BigInteger(), nullable=False),
        sa.Column("object_type", sa.Text(collation="C"), nullable=False),
        sa.Column("object_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sync_tombstones_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "user_id", "sync_seq", "object_type", "object_id", name=op.f("pk_sync_tombstones")
        ),
    )
    op.create_index(op.f("ix_sync_tombstones_deleted_at"), "sync_tombstones", ["deleted_at"])


def downgrade():
    op.drop_index(op.f("ix_sync_tombstones_deleted_at"), table_name="sync_tombstones")
    op.drop_table("sync_tombstones")
    for table in reversed(STAMPED):
        op.drop_index(f"ix_{table}_user_id_sync_seq_id", table_name=table)
    op.drop_constraint(op.f("fk_task_instances_user_id_users"), "task_instances", type_="foreignkey")
    op.drop_column("task_instances", "user_id")
    for table in reversed(STAMPED):
        op.drop_column(table, "sync_seq")
    op.drop_column("users", "sync_pruned_seq")
    op.drop_column("users", "sync_seq")
