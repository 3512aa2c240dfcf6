"""Property: for random tasks and any combination of filters, the list (walked over every page)
holds exactly the tasks a plain Python filter over the same data selects, in the sort's order."""

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from test_tasks_list import SORTS, expected_order, parse, walk

from app.extensions import db

TASKS = "/api/v1/tasks"
WORDS = ["apple", "banana", "cherry", "plum"]
TAG_NAMES = ["red", "Green", "blue"]
# Far from now on either side, so that "overdue" cannot change while an example runs.
NOW = datetime.now(UTC).replace(microsecond=0)
MOMENTS = [NOW + timedelta(days=days) for days in (-30, -2, 2, 30)]

task_specs = st.lists(
    st.fixed_dictionaries(
        {
            "title": st.lists(st.sampled_from(WORDS), min_size=1, max_size=2, unique=True).map(" ".join),
            "completed": st.booleans(),
            "due_at": st.none() | st.sampled_from(MOMENTS).map(datetime.isoformat),
            "priority": st.none() | st.sampled_from(["low", "medium", "high", "urgent"]),
            "tags": st.lists(st.sampled_from(TAG_NAMES), max_size=3, unique=True),
        }
    ),
    max_size=8,
)
filters = st.fixed_dictionaries(
    {},
    optional={
        "completed": st.booleans(),
        "priority": st.sampled_from(["low", "medium", "high", "urgent"]),
        "tag": st.lists(st.sampled_from([n.upper() for n in TAG_NAMES] + TAG_NAMES), min_size=1, max_size=2),
        "due_after": st.sampled_from([*MOMENTS, NOW]),
        "due_before": st.sampled_from([*MOMENTS, NOW]),
        "overdue": st.booleans(),
        "q": st.sampled_from(WORDS),
        "sort": st.sampled_from(SORTS),
    },
)


def matches(task: dict, wanted: dict) -> bool:
    due = parse(task["due_at"]) if task["due_at"] else None
    overdue = due is not None and due < datetime.now(UTC) and not task["completed"]
    checks = {
        "completed": lambda v: task["completed"] is v,
        "priority": lambda v: task["priority"] == v,
        "tag": lambda v: {n.lower() for n in v} <= {n.lower() for n in task["tags"]},
        "due_after": lambda v: due is not None and due >= v,
        "due_before": lambda v: due is not None and due < v,
        "overdue": lambda v: overdue is v,
        "q": lambda v: v in task["title"].split(),
        "sort": lambda v: True,
    }
    return all(checks[name](value) for name, value in wanted.items())


def as_query(wanted: dict) -> dict:
    query = {}
    for name, value in wanted.items():
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, datetime):
            value = value.isoformat()
        query[name] = value
    return query


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(specs=task_specs, wanted=filters)
def test_list_equals_a_python_filter_over_the_same_tasks(app, client, user, specs, wanted):
    with app.app_context():
        db.session.execute(text("DELETE FROM tasks; DELETE FROM tags"))
        db.session.commit()
    created = []
    for spec in specs:
        response = client.post(TASKS, json=spec, headers=user["headers"])
        assert response.status_code == 201, response.get_json()
        created.append(response.get_json())
    listed = walk(client, user, limit=3, **as_query(wanted))
    chosen = [task for task in created if matches(task, wanted)]
    assert [t["id"] for t in listed] == expected_order(chosen, wanted.get("sort", "-created_at"))
