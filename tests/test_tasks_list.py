"""GET /api/v1/tasks: filters, sorts, keyset pages and their cursors, and the statements it costs."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.extensions import db

from conftest import sent_statements

TASKS = "/api/v1/tasks"
PRIORITY_LEVELS = {"low": 1, "medium": 2, "high": 3, "urgent": 4}
SORTS = [
    "created_at",
    "-created_at",
    "due_at",
    "-due_at",
    "priority",
    "-priority",
    "updated_at",
    "-updated_at",
]
NOW = datetime.now(UTC)


def create_task(client, user, **body):
    response = client.post(TASKS, json={"title": "a task", **body}, headers=user["headers"])
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def list_tasks(client, user, **params):
    response = client.get(TASKS, query_string=params, headers=user["headers"])
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def titles(client, user, **params) -> list[str]:
    return [task["title"] for task in list_tasks(client, user, **params)["items"]]


def walk(client, user, cursor=None, **params) -> list[dict]:
    """Every task over every page (from `cursor` on), following next_cursor."""
    tasks = []
    for _ in range(1000):
        page = list_tasks(client, user, **params, **({"cursor": cursor} if cursor else {}))
        tasks += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return tasks
    raise AssertionError("the pages never ended")


def iso(moment: datetime) -> str:
    return moment.isoformat()


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def expected_order(tasks: list[dict], sort: str, stands_at=None) -> list[int]:
    """The contract's order: by the key, nulls last either way, ties by id in the same direction.
    `stands_at(task)`: the instant the due_at sorts put a task at (default: its due_at)."""
    descending, field = sort.startswith("-"), sort.lstrip("-")

    def key(task):
        if field == "due_at" and stands_at is not None:
            return stands_at(task)
        value = task[field]
        if value is None:
            return None
        return PRIORITY_LEVELS[value] if field == "priority" else parse(value)

    present = sorted(
        (t for t in tasks if key(t) is not None), key=lambda t: (key(t), t["id"]), reverse=descending
    )
    absent = sorted((t for t in tasks if key(t) is None), key=lambda t: t["id"], reverse=descending)
    return [t["id"] for t in present + absent]


def test_empty_list(client, user):
    assert list_tasks(client, user) == {"items": [], "next_cursor": None}


def test_default_sort_is_newest_first(client, user):
    for title in ["one", "two", "three"]:
        create_task(client, user, title=title)
    assert titles(client, user) == ["three", "two", "one"]


def test_completed_and_priority_filters(client, user):
    create_task(client, user, title="done", completed=True, priority="high")
    create_task(client, user, title="open high", priority="high")
    create_task(client, user, title="open none")
    assert titles(client, user, completed="true") == ["done"]
    assert titles(client, user, completed="false") == ["open none", "open high"]
    assert titles(client, user, priority="high", sort="created_at") == ["done", "open high"]
    assert titles(client, user, priority="high", completed="false") == ["open high"]


def test_tag_filter_requires_every_tag_ignoring_case(client, user):
    create_task(client, user, title="both", tags=["Work", "urgent"])
    create_task(client, user, title="work only", tags=["work"])
    create_task(client, user, title="none")
    assert titles(client, user, tag="WORK", sort="created_at") == ["both", "work only"]
    assert titles(client, user, tag=["work", " Urgent "]) == ["both"]
    assert titles(client, user, tag="unknown") == []


def test_due_range_is_inclusive_exclusive_and_skips_tasks_without_due(client, user):
    for day in (1, 2, 3):
        create_task(client, user, title=f"day {day}", due_at=f"2030-01-0{day}T12:00:00Z")
    create_task(client, user, title="no due")
    assert titles(client, user, due_after="2030-01-02T12:00:00Z", sort="due_at") == ["day 2", "day 3"]
    assert titles(client, user, due_before="2030-01-02T12:00:00Z", sort="due_at") == ["day 1"]
    both = {"due_after": "2030-01-01T12:00:00Z", "due_before": "2030-01-03T12:00:00Z", "sort": "due_at"}
    assert titles(client, user, **both) == ["day 1", "day 2"]


def test_naive_query_datetimes_are_in_the_users_time_zone(client, user):
    client.patch("/api/v1/auth/me", json={"timezone": "Asia/Tokyo"}, headers=user["headers"])
    create_task(client, user, title="9 UTC", due_at="2030-01-01T09:00:00Z")
    # 18:00 in Tokyo is 09:00 UTC.
    assert titles(client, user, due_after="2030-01-01T18:00:00") == ["9 UTC"]
    assert titles(client, user, due_after="2030-01-01T18:00:01") == []


def test_overdue_splits_the_tasks_in_two(client, user):
    past, future = iso(NOW - timedelta(days=1)), iso(NOW + timedelta(days=1))
    create_task(client, user, title="overdue", due_at=past)
    create_task(client, user, title="done late", due_at=past, completed=True)
    create_task(client, user, title="later", due_at=future)
    create_task(client, user, title="no due")
    assert titles(client, user, overdue="true") == ["overdue"]
    assert titles(client, user, overdue="false") == ["no due", "later", "done late"]


def test_full_text_search_over_title_and_description(client, user):
    create_task(client, user, title="Call the plumbers", description="")
    create_task(client, user, title="Groceries", description="milk, eggs and a plumbing part")
    create_task(client, user, title="Unrelated")
    assert titles(client, user, q="plumber", sort="created_at") == ["Call the plumbers"]
    assert titles(client, user, q="eggs milk") == ["Groceries"]
    assert titles(client, user, q='"the plumbers" or groceries', sort="created_at") == [
        "Call the plumbers",
        "Groceries",
    ]
    assert titles(client, user, q="the") == []  # a stop word alone matches nothing, and is no error


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"completed": "maybe"}, "completed"),
        ({"priority": "critical"}, "priority"),
        ({"priority": ""}, "priority"),
        ({"tag": ""}, "tag.0"),
        ({"tag": ["ok", "x" * 51]}, "tag.1"),
        ({"due_after": "yesterday"}, "due_after"),
        ({"due_before": "2030-13-01T00:00:00Z"}, "due_before"),
        ({"overdue": "sometimes"}, "overdue"),
        ({"q": "  "}, "q"),
        ({"sort": "title"}, "sort"),
        ({"sort": "-"}, "sort"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": ""}, "cursor"),
        ({"page": "2"}, "page"),
        ({"offset": "10"}, "offset"),
    ],
)
def test_bad_query_parameters_are_422_naming_the_parameter(client, user, params, field):
    response = client.get(TASKS, query_string=params, headers=user["headers"])
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert field in response.get_json()["errors"]


def test_limit_bounds_are_accepted(client, user):
    for _ in range(3):
        create_task(client, user)
    assert len(list_tasks(client, user, limit=1)["items"]) == 1
    assert len(list_tasks(client, user, limit=100)["items"]) == 3


def first_cursor(client, user, **params) -> str:
    cursor = list_tasks(client, user, limit=1, **params)["next_cursor"]
    assert cursor
    return cursor


@pytest.mark.parametrize(
    "change",
    [{"sort": "due_at"}, {"completed": "false"}, {"tag": "b"}, {"q": "task"}, {"overdue": "false"}],
)
def test_cursor_is_pinned_to_its_sort_and_filters(client, user, change):
    for _ in range(3):
        create_task(client, user, tags=["a"])
    cursor = first_cursor(client, user, tag="a")
    response = client.get(
        TASKS, query_string={"tag": "a", **change, "cursor": cursor}, headers=user["headers"]
    )
    assert response.status_code == 422
    assert "cursor" in response.get_json()["errors"]


def test_cursor_survives_a_new_limit_and_a_respelled_tag(client, user):
    for _ in range(3):
        create_task(client, user, tags=["a"])
    cursor = first_cursor(client, user, tag="a")
    assert len(list_tasks(client, user, tag=" A ", limit=5, cursor=cursor)["items"]) == 2


def test_tampered_cursor_is_422(client, user):
    for _ in range(2):
        create_task(client, user)
    cursor = first_cursor(client, user)
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    response = client.get(TASKS, query_string={"cursor": tampered}, headers=user["headers"])
    assert response.status_code == 422
    assert "cursor" in response.get_json()["errors"]


def test_another_users_cursor_shows_nothing_of_theirs(client, user, other_user):
    for _ in range(3):
        create_task(client, user, title="mine")
    cursor = first_cursor(client, user)
    page = list_tasks(client, other_user, cursor=cursor)
    assert page == {"items": [], "next_cursor": None}


def insert_tasks(app, user_id: int, sql_select: str, **params) -> None:
    with app.app_context():
        db.session.execute(
            text(
                "INSERT INTO tasks (user_id, title, completed, completed_at, "
                "created_at, updated_at, due_at, priority_level) " + sql_select
            ),
            {"user_id": user_id, **params},
        )
        db.session.commit()


def my_id(client, user) -> int:
    return client.get("/api/v1/auth/me", headers=user["headers"]).get_json()["id"]


@pytest.fixture
def tasks_with_ties(app, client, user):
    """37 tasks whose every sort key repeats, with nulls among due_at and priority."""
    insert_tasks(
        app,
        my_id(client, user),
        """
        SELECT :user_id, 'task ' || i, false, NULL,
               timestamptz '2030-01-01' + (i % 3) * interval '1 hour',
               timestamptz '2030-01-01' + (i % 4) * interval '1 hour',
               CASE WHEN i % 5 = 0 THEN NULL ELSE timestamptz '2030-02-01' + (i % 3) * interval '1 day' END,
               NULLIF(i % 5, 0)
        FROM generate_series(1, 37) AS i
        """,
    )
    return walk(client, user, limit=100)


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("limit", [1, 4, 100])
def test_walking_the_pages_returns_each_task_once_in_order(client, user, tasks_with_ties, sort, limit):
    walked = walk(client, user, sort=sort, limit=limit)
    assert [t["id"] for t in walked] == expected_order(tasks_with_ties, sort)


def test_pages_hold_limit_tasks_and_the_last_has_no_cursor(client, user, tasks_with_ties):
    first = list_tasks(client, user, limit=10)
    assert len(first["items"]) == 10
    assert first["next_cursor"]
    last = list_tasks(client, user, limit=30, cursor=first["next_cursor"])
    assert len(last["items"]) == 27
    assert last["next_cursor"] is None


def test_exactly_a_full_page_has_no_next_cursor(client, user):
    for _ in range(2):
        create_task(client, user)
    assert list_tasks(client, user, limit=2)["next_cursor"] is None


def test_tasks_added_while_paging_do_not_shift_pages(client, user, tasks_with_ties):
    first = list_tasks(client, user, limit=5, sort="created_at")
    create_task(client, user, title="new")  # created now, so sorted before the 2030 tasks: not in the rest
    rest = walk(client, user, limit=5, sort="created_at", cursor=first["next_cursor"])
    ids = [t["id"] for t in first["items"] + rest]
    assert ids == expected_order(tasks_with_ties, "created_at")


def test_a_page_costs_the_same_few_statements_whatever_its_size(app, client, user):
    insert_tasks(
        app,
        my_id(client, user),
        "SELECT :user_id, 'task ' || i, false, NULL, now(), now(), NULL, NULL FROM generate_series(1, 120) i",
    )
    with app.app_context():
        db.session.execute(
            text(
                "INSERT INTO tags (user_id, name) SELECT users.id, 'tag ' || i"
                " FROM users, generate_series(1, 3) AS i;"
                "INSERT INTO task_tags SELECT tasks.id, tags.id FROM tasks, tags"
            )
        )
        db.session.commit()
    counts = {}
    for limit in (1, 100):
        with sent_statements(app) as statements:
            page = list_tasks(client, user, limit=limit, tag="tag 1")
        assert len(page["items"]) == limit
        assert all(len(task["tags"]) == 3 for task in page["items"])
        counts[limit] = len(statements)
    # The token's session, the page, the page's tags.
    assert counts[1] == counts[100] <= 3
