"""Initial schema: users and their sessions, priorities, tasks, tags, recurring tasks,
task instances, password reset tokens and idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PRIORITIES = [
    {"level": 1, "name": "low", "label": "Low"},
    {"level": 2, "name": "medium", "label": "Medium"},
    {"level": 3, "name": "high", "label": "High"},
    {"level": 4, "name": "urgent", "label": "Urgent"},
]

# Dropped in reverse order of dependency on downgrade.
TABLES = [
    "priorities",
    "users",
    "idempotency_keys",
    "password_reset_tokens",
    "recurring_tasks",
    "sessions",
    "tags",
    "tasks",
    "recurring_task_tags",
    "task_instances",
    "task_tags",
]


def upgrade():
    op.create_table(
        "priorities",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("level", name=op.f("pk_priorities")),
        sa.UniqueConstraint("name", name=op.f("uq_priorities_name")),
    )
    # The priorities are reference data: every database has them from the start.
    priorities = sa.table("priorities", sa.column("level"), sa.column("name"), sa.column("label"))
    op.bulk_insert(priorities, PRIORITIES)
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("first_name", sa.Text(), server_default="", nullable=False),
        sa.Column("last_name", sa.Text(), server_default="", nullable=False),
        sa.Column("timezone", sa.Text(), server_default="UTC", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("char_length(email) <= 254", name=op.f("ck_users_email_length")),
        sa.CheckConstraint("char_length(first_name) <= 100", name=op.f("ck_users_first_name_length")),
        sa.CheckConstraint("char_length(last_name) <= 100", name=op.f("ck_users_last_name_length")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_index(
        "uq_users_lower_email",
        "users",
        [sa.literal_column("lower(email)")],
        unique=True,
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_idempotency_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        op.f("ix_idempotency_keys_created_at"),
        "idempotency_keys",
        ["created_at"],
        unique=False,
    )
    op.create_table(
        "password_reset_tokens",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_password_reset_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_reset_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_reset_tokens_token_hash")),
    )
    op.create_index(
        op.f("ix_password_reset_tokens_expires_at"),
        "password_reset_tokens",
        ["expires_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_password_reset_tokens_user_id"),
        "password_reset_tokens",
        ["user_id"],
        unique=False,
    )
    op.create_table(
        "recurring_tasks",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("priority_level", sa.SmallInteger(), nullable=True),
        sa.Column("rrule", sa.Text(), nullable=False),
        sa.Column("dtstart", sa.DateTime(), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "char_length(description) <= 10000",
            name=op.f("ck_recurring_tasks_description_length"),
        ),
        sa.CheckConstraint(
            "char_length(title) BETWEEN 1 AND 200",
            name=op.f("ck_recurring_tasks_title_length"),
        ),
        sa.ForeignKeyConstraint(
            ["priority_level"],
            ["priorities.level"],
            name=op.f("fk_recurring_tasks_priority_level_priorities"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_recurring_tasks_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recurring_tasks")),
    )
    op.create_index(op.f("ix_recurring_tasks_user_id"), "recurring_tasks", ["user_id"], unique=False)
    op.create_table(
        "sessions",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("refresh_jti", sa.UUID(), nullable=False),
        sa.Column("user_agent", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_used_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    op.create_index(op.f("ix_sessions_expires_at"), "sessions", ["expires_at"], unique=False)
    op.create_index(op.f("ix_sessions_user_id"), "sessions", ["user_id"], unique=False)
    op.create_table(
        "tags",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("color", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("color ~ '^#[0-9A-Fa-f]{6}$'", name=op.f("ck_tags_color_format")),
        sa.CheckConstraint("char_length(name) BETWEEN 1 AND 50", name=op.f("ck_tags_name_length")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_tags_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
    )
    op.create_index(
        "uq_tags_user_id_lower_name",
        "tags",
        ["user_id", sa.literal_column("lower(name)")],
        unique=True,
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("completed", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("priority_level", sa.SmallInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "search_vector",
            postgresql.TSVECTOR(),
            sa.Computed(
                "to_tsvector('english'::regconfig, title || ' ' || description)",
                persisted=True,
            ),
            nullable=True,
        ),
        sa.CheckConstraint(
            "char_length(description) <= 10000",
            name=op.f("ck_tasks_description_length"),
        ),
        sa.CheckConstraint("char_length(title) BETWEEN 1 AND 200", name=op.f("ck_tasks_title_length")),
        sa.CheckConstraint(
            "completed = (completed_at IS NOT NULL)",
            name=op.f("ck_tasks_completed_at_set"),
        ),
        sa.ForeignKeyConstraint(
            ["priority_level"],
            ["priorities.level"],
            name=op.f("fk_tasks_priority_level_priorities"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_tasks_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    op.create_index(
        "ix_tasks_search_vector",
        "tasks",
        ["search_vector"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_tasks_user_id_created_at_id",
        "tasks",
        ["user_id", "created_at", "id"],
        unique=False,
    )
    op.create_index("ix_tasks_user_id_due_at_id", "tasks", ["user_id", "due_at", "id"], unique=False)
    op.create_index(
        "ix_tasks_user_id_priority_level_id",
        "tasks",
        ["user_id", "priority_level", "id"],
        unique=False,
    )
    op.create_index(
        "ix_tasks_user_id_updated_at_id",
        "tasks",
        ["user_id", "updated_at", "id"],
        unique=False,
    )
    op.create_table(
        "recurring_task_tags",
        sa.Column("recurring_task_id", sa.BigInteger(), nullable=False),
        sa.Column("tag_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["recurring_task_id"],
            ["recurring_tasks.id"],
            name=op.f("fk_recurring_task_tags_recurring_task_id_recurring_tasks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"],
            ["tags.id"],
            name=op.f("fk_recurring_task_tags_tag_id_tags"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("recurring_task_id", "tag_id", name=op.f("pk_recurring_task_tags")),
    )
    op.create_index(
        op.f("ix_recurring_task_tags_tag_id"),
        "recurring_task_tags",
        ["tag_id"],
        unique=False,
    )
    op.create_table(
        "task_instances",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("recurring_task_id", sa.BigInteger(), nullable=False),
        sa.Column("occurs_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "completed = (completed_at IS NOT NULL)",
            name=op.f("ck_task_instances_completed_at_set"),
        ),
        sa.ForeignKeyConstraint(
            ["recurring_task_id"],
            ["recurring_tasks.id"],
            name=op.f("fk_task_instances_recurring_task_id_recurring_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_instances")),
    )
    op.create_index(
        "uq_task_instances_recurring_task_id_occurs_at",
        "task_instances",
        ["recurring_task_id", "occurs_at"],
        unique=True,
    )
    op.create_table(
        "task_tags",
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("tag_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tag_id"],
            ["tags.id"],
            name=op.f("fk_task_tags_tag_id_tags"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_task_tags_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "tag_id", name=op.f("pk_task_tags")),
    )
    op.create_index(op.f("ix_task_tags_tag_id"), "task_tags", ["tag_id"], unique=False)


def downgrade():
    for table in reversed(TABLES):
        op.drop_table(table)
