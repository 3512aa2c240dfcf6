"""With 100,000 tasks for one user, every sort and filter of the task list runs on indexes:
the plan of the exact statement the app sends has no sequential scan of tasks. A quarter of
the tasks are date-only (due_date), standing at the start of their day in the user's zone,
mixed with timed ones in the due_at sorts; those sorts read their index in order (no Sort)."""

import re
from datetime import UTC, date, datetime
from itertools import pairwise

import pytest
from sqlalchemy import text
from test_tasks_list import SORTS, first_cursor, list_tasks, my_id

from app.extensions import db
from app.models import local_day_start

from conftest import sent_statements

pytestmark = pytest.mark.slow
ZONE = "Pacific/Kiritimati"

FILTERS = [
    {},
    {"completed": "true"},
    {"completed": "false"},
    {"priority": "urgent"},
    {"tag": "tag 7"},
    {"tag": ["tag 7", "tag 3"]},
    {"due_after": "2030-10-01T00:00:00Z"},
    {"due_before": "2020-02-01T00:00:00Z"},
    {"due_after": "2030-06-01T00:00:00Z", "due_before": "2030-06-08T00:00:00Z"},
    {"overdue": "true"},
    {"overdue": "false"},
    {"q": "needle"},
]


@pytest.fixture
def many_tasks(app, client, user, other_user):
    """100,000 tasks of the user (plus some of another user), a tenth of them tagged."""
    user_id = my_id(client, user)
    with app.app_context():
        db.session.execute(
            text(
                """
                UPDATE users SET timezone = :zone WHERE id = :user_id;
                -- Half timed, a quarter date-only (starting at midnight +14: 10:00 UTC the day
                -- before, as app.models.local_day_start has it), a quarter without a due.
                INSERT INTO tasks (user_id, title, description, completed, completed_at,
                                   created_at, updated_at, due_at, due_date, due_date_start,
                                   priority_level)
                SELECT :user_id, 'task ' || i || CASE WHEN i % 5000 = 0 THEN ' needle' ELSE '' END, '',
                       i % 3 = 0, CASE WHEN i % 3 = 0 THEN now() END,
                       timestamptz '2030-01-01' + i * interval '1 minute',
                       timestamptz '2030-01-01' + (i % 1000) * interval '1 minute',
                       CASE WHEN i % 4 IN (1, 2)
                            THEN timestamptz '2020-01-01' + (i % 4000) * interval '1 day' END,
                       CASE WHEN i % 4 = 3 THEN date '2020-01-01' + i % 4000 END,
                       CASE WHEN i % 4 = 3
                            THEN timestamptz '2019-12-31 10:00+00' + (i % 4000) * interval '1 day' END,
                       NULLIF(i % 5, 0)
                FROM generate_series(1, 100000) AS i;
                INSERT INTO tasks (user_id, title)
                SELECT users.id, 'theirs' FROM users, generate_series(1, 1000) WHERE users.id <> :user_id;
                INSERT INTO tags (user_id, name) SELECT :user_id, 'tag ' || i FROM generate_series(1, 10) i;
                INSERT INTO task_tags (task_id, tag_id)
                SELECT tasks.id, tags.id FROM tasks JOIN tags ON tags.user_id = tasks.user_id
                WHERE tasks.id % 10 = 0
                  AND substr(tags.name, 5)::int IN ((tasks.id / 10) % 10 + 1, (tasks.id / 100) % 10 + 1);
                ANALYZE tasks; ANALYZE tags; ANALYZE task_tags;
                """
            ),
            {"user_id": user_id, "zone": ZONE},
        )
        db.session.commit()


def plan_of_list_query(app, client, user, params) -> str:
    """The EXPLAIN of the statement the app ran to read a page of tasks."""
    with sent_statements(app) as sent:
        list_tasks(client, user, **params)
    # The page is the one statement reading from tasks (the token's check reads sessions).
    captured = [(statement, parameters) for statement, parameters in sent if "\nFROM tasks" in statement]
    assert len(captured) == 1, captured
    statement, parameters = captured[0]
    with app.app_context(), db.engine.connect() as connection:
        rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters).all()
    return "\n".join(row[0] for row in rows)


# With these filters the due sorts' page is the first rows of their index: no Sort between the
# LIMIT and the scan, whether timed or date-only tasks come first.
IN_INDEX_ORDER = [{}, {"completed": "false"}, {"overdue": "false"}]


def reads_in_order(plan: str, sort: str) -> bool:
    """The page's LIMIT sits right on a scan of the sort's index. (The statement then joins the
    page to the token's session row and orders those 51 rows again; that Sort is above the LIMIT.)"""
    if sort not in ("due_at", "-due_at"):
        return True
    index = f"ix_tasks_user_id_due_last_{'desc' if sort.startswith('-') else 'asc'}_id"
    lines = plan.splitlines()
    return any(
        re.match(r"\s*->  Limit ", line)
        and re.match(rf"\s*->  Index Scan (Backward )?using {index} on tasks", following)
        for line, following in pairwise(lines)
    )


@pytest.mark.parametrize("sort", SORTS)
def test_every_sort_and_filter_avoids_a_sequential_scan(app, client, user, many_tasks, sort):
    failures = {}
    for params in FILTERS:
        for with_cursor in (False, True):
            query = {"sort": sort, "limit": 50, **params}
            if with_cursor:
                query["cursor"] = first_cursor(client, user, **{"sort": sort, **params})
            plan = plan_of_list_query(app, client, user, query)
            if "Seq Scan on tasks" in plan or (params in IN_INDEX_ORDER and not reads_in_order(plan, sort)):
                failures[str(query)] = plan
    assert not failures, "\n\n".join(f"{q}\n{p}" for q, p in failures.items())


def test_a_date_only_start_in_the_fixture_is_where_the_app_puts_it():
    # The fixture writes due_date_start by hand; it must be what the app would store.
    assert local_day_start(date(2020, 1, 1), ZONE) == datetime(2019, 12, 31, 10, tzinfo=UTC)
