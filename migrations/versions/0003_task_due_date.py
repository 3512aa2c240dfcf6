"""Date-only due dates: tasks.due_date, the instant it stands at, and the due sort's indexes.

A task is due at an instant (due_at) or on a calendar day (due_date), never both. A
date-only task stands, for the due_after/due_before filters and the due_at sorts, at the
first instant of its day in its user's current time zone. That instant depends on a row of
another table (users.timezone), so no index expression can compute it; it is stored in
due_date_start and kept by the application (app.tasks): set when a task's due_date is
written, and recomputed for all of a user's date-only tasks, in the same transaction, when
the user's timezone changes. The keyset indexes of 0002 on COALESCE(due_at, stand-in)
become COALESCE(due_at, due_date_start, stand-in).

local_day_start(day, zone) is that first instant. PostgreSQL's `day::timestamp AT TIME
ZONE zone` (00:00 local) is right on almost every day, but 00:00 does not always happen
exactly once:
- When the clocks spring forward at midnight (America/Santiago in September, Asia/Beirut
  in March until 2022, America/Havana in March), 00:00 does not exist; PostgreSQL reads a
  nonexistent time with the offset in force before the change, which gives the instant of
  the change: 01:00 local, the first instant of that day. Right as it is.
- When the clocks fall back from 01:00 to 00:00 (America/Havana in November), 00:00 happens
  twice; PostgreSQL takes the later one (the offset after the change), an hour into the day.
  The function takes the earlier one: 00:00 read with the offset of the day before, when
  that instant still shows the day on the local clock.
- A day that does not exist at all (Pacific/Apia, 2011-12-30) starts where the next one
  does.
- Years long ago run on local mean time: 0001-01-01 00:00 in Asia/Tokyo (+09:18:59) falls
  in 1 BC in UTC, which the application cannot represent; the result is clamped to
  0001-01-01 00:00 UTC (such a task sorts with timed tasks of that night by id).
A clock change that jumps over midnight without starting at it (none in the tz database
today) would give the first instant after the gap's length instead.

No rewrite and no long lock on a large table: the columns are nullable without a default
(catalog-only changes); the constraints are added NOT VALID (a brief lock) and validated in
a transaction of their own, which scans the table holding only a SHARE UPDATE EXCLUSIVE lock;
the indexes are built and dropped CONCURRENTLY, outside a transaction (autocommit blocks). A
lock_timeout makes the brief locks fail fast instead of queueing every query of the table
behind a long transaction. If a CONCURRENTLY build fails, it leaves an INVALID index: drop it
and run the upgrade again.

Revision ID: 0003_task_due_date
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_task_due_date"
down_revision = "0002"
branch_labels = None
depends_on = None

LOCAL_DAY_START = """
CREATE FUNCTION local_day_start(day date, zone text) RETURNS timestamptz
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$
    SELECT GREATEST(
        CASE WHEN timezone(zone, previous_offset)::date >= day
             THEN LEAST(previous_offset, own_offset) ELSE own_offset END,
        timestamptz '0001-01-01 00:00:00+00')
    FROM (SELECT day::timestamp AT TIME ZONE zone AS own_offset,
                 ((day - 1)::timestamp AT TIME ZONE zone) + interval '24 hours' AS previous_offset
         ) AS candidates
$$
"""
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
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.add_column("tasks", sa.Column("due_date", sa.Date(), nullable=True))
    op.add_column("tasks", sa.Column("due_date_start", sa.DateTime(timezone=True), nullable=True))
    op.execute(LOCAL_DAY_START)
    for name, condition in CONSTRAINTS.items():
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
    op.execute("DROP FUNCTION local_day_start(date, text)")
