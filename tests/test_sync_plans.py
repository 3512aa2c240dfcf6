"""With 100,000 tasks, a sync with nothing changed is one statement of index scans that read
no task at all: its cost does not grow with the number of tasks."""

import re

import pytest
from sqlalchemy import text
from test_sync import follow

from app.extensions import db

from conftest import sent_statements

pytestmark = pytest.mark.slow


@pytest.fixture
def synced(app, client, user):
    """A client's token after a full sync, then 100,000 more tasks (bulk-inserted with stamp 0,
    as rows that predate sync: older than the token)."""
    client.post("/api/v1/tasks", json={"title": "first"}, headers=user["headers"])
    _, since = follow(client, user["headers"])
    with app.app_context():
        db.session.execute(
            text(
                """
                INSERT INTO tasks (user_id, title)
                SELECT users.id, 'task ' || i FROM users, generate_series(1, 100000) AS i;
                ANALYZE tasks; ANALYZE users;
                """
            )
        )
        db.session.commit()
    return since


def test_an_empty_sync_is_one_statement_of_index_scans(app, client, user, synced):
    with sent_statements(app) as statements:
        follow(client, user["headers"], synced)
    syncing = [(s, p) for s, p in statements if "sync_tombstones" in s]
    # The sync itself, which also checks the token's session; nothing else.
    assert len(statements) == 1 and len(syncing) == 1, statements
    statement, parameters = syncing[0]
    with app.app_context(), db.engine.connect() as connection:
        rows = connection.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
    plan = "\n".join(row[0] for row in rows)
    assert "Seq Scan on tasks" not in plan and "ix_tasks_user_id_sync_seq_id" in plan, plan
    # The whole statement touches a few pages (an index descent per table), not 100,000 tasks.
    buffers = re.search(r"Buffers: shared hit=(\d+)(?: read=(\d+))?", plan)
    assert int(buffers[1]) + int(buffers[2] or 0) <= 40, plan
