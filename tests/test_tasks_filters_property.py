"""Property: for random tasks (timed, date-only and without a due) of a user in a random time
zone and any combination of filters, the list (walked over every page, with a random page size)
holds exactly the tasks a plain Python filter over the same data selects, in the sort's order."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from test_tasks_list import SORTS, expected_order, parse, walk

import app.tasks
from app.extensions import db

TASKS = "/api/v1/tasks"
WORDS = ["apple", "banana", "cherry", "plum"]
TAG_NAMES = ["red", "Green", "blue"]
ZONES = [
    "UTC",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Europe/Berlin",
    "America/Santiago",
    "Asia/Kolkata",
    "America/St_Johns",
]
# "now", frozen for the list's overdue filter: Berlin's spring-forward night (03:30 CEST), the
# 28th in Kiritimati and the 27th in Pago Pago.
NOW = datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
DATES = [date(2027, 3, day) for day in range(27, 30)]  # today is the 27th or the 28th
# Around now, and where the 28th starts in three zones (ties with date-only tasks).
MOMENTS = [
    *(NOW + timedelta(hours=hours) for hours in (-720, -24, -1, 0, 1, 24, 720)),
    datetime(2027, 3, 27, 10, tzinfo=UTC),
    datetime(2027, 3, 27, 23, tzinfo=UTC),
    datetime(2027, 3, 28, 11, tzinfo=UTC),
]

dues = st.one_of(
    st.just({}),
    st.sampled_from(MOMENTS).map(lambda moment: {"due_at": moment.isoformat()}),
    st.sampled_from(DATES).map(lambda day: {"due_date": day.isoformat()}),
)
task_specs = st.lists(
    st.tuples(
        st.fixed_dictionaries(
            {
                "title": st.lists(st.sampled_from(WORDS), min_size=1, max_size=2, unique=True).map(" ".join),
                "completed": st.booleans(),
                "priority": st.none() | st.sampled_from(["low", "medium", "high", "urgent"]),
                "tags": st.lists(st.sampled_from(TAG_NAMES), max_size=3, unique=True),
            }
        ),
        dues,
    ).map(lambda pair: {**pair[0], **pair[1]}),
    max_size=10,
)
FILTERS = {
    "completed": st.booleans(),
    "priority": st.sampled_from(["low", "medium", "high", "urgent"]),
    "tag": st.lists(st.sampled_from([n.upper() for n in TAG_NAMES] + TAG_NAMES), min_size=1, max_size=2),
    "due_after": st.sampled_from(MOMENTS),
    "due_before": st.sampled_from(MOMENTS),
    "overdue": st.booleans(),
    "q": st.sampled_from(WORDS),
    "sort": st.sampled_from(SORTS),
}
# Up to three filters at once: more would leave few examples with any task to list.
filters = st.lists(st.sampled_from(sorted(FILTERS)), max_size=3, unique=True).flatmap(
    lambda names: st.fixed_dictionaries({name: FILTERS[name] for name in names})
)


def day_start(day: date, zone: str) -> datetime:
    """The first second whose date on the wall clock of `zone` is `day` or later: a bisection
    over the clock itself, independent of how the app reads local midnight."""
    low = datetime.combine(day, datetime.min.time(), UTC) - timedelta(hours=16)  # before the day
    high = low + timedelta(hours=32)  # in it
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(ZoneInfo(zone)).date() >= day:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def stands_at(task: dict, zone: str) -> datetime | None:
    """Where the contract puts a task in time: its due_at, or the start of its due_date."""
    if task["due_at"]:
        return parse(task["due_at"])
    if task["due_date"]:
        return day_start(date.fromisoformat(task["due_date"]), zone)
    return None


def is_overdue(task: dict, zone: str) -> bool:
    if task["completed"]:
        return False
    if task["due_at"]:
        return parse(task["due_at"]) < NOW
    if task["due_date"]:  # once the whole day has passed: the next one has begun
        return day_start(date.fromisoformat(task["due_date"]) + timedelta(days=1), zone) <= NOW
    return False


def matches(task: dict, wanted: dict, zone: str) -> bool:
    due = stands_at(task, zone)
    checks = {
        "completed": lambda v: task["completed"] is v,
        "priority": lambda v: task["priority"] == v,
        "tag": lambda v: {n.lower() for n in v} <= {n.lower() for n in task["tags"]},
        "due_after": lambda v: due is not None and due >= v,
        "due_before": lambda v: due is not None and due < v,
        "overdue": lambda v: is_overdue(task, zone) is v,
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


@pytest.fixture
def frozen_now(monkeypatch):
    monkeypatch.setattr(app.tasks, "now", lambda: NOW)


def set_zone(client, user, zone: str) -> None:
    response = client.patch("/api/v1/auth/me", json={"timezone": zone}, headers=user["headers"])
    assert response.status_code == 200, response.get_json()


def spec(due: dict, completed: bool = False) -> dict:
    return {"title": "apple", "completed": completed, "priority": None, "tags": [], **due}


# Cases that random draws reach too rarely to rely on: the user's today, yesterday and
# tomorrow as due dates under overdue; a date-only task tied with a timed one at the start
# of a 23-hour day; tasks written in one zone and listed in the opposite one.
AROUND_TODAY = [
    spec({"due_date": f"2027-03-{day}"}, completed) for day in (27, 28, 29) for completed in (False, True)
]


@example(AROUND_TODAY, {"overdue": True}, "UTC", "UTC", 2)
@example(AROUND_TODAY, {"overdue": False}, "Pacific/Kiritimati", "Pacific/Pago_Pago", 1)
@example(AROUND_TODAY, {"overdue": True, "sort": "-due_at"}, "Pacific/Pago_Pago", "Pacific/Kiritimati", 3)
@example(
    [spec({"due_at": "2027-03-27T23:00:00+00:00"}), spec({"due_date": "2027-03-28"}), spec({})] * 2,
    {"sort": "due_at", "due_before": MOMENTS[-1]},
    "UTC",
    "Europe/Berlin",
    1,
)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    specs=task_specs,
    wanted=filters,
    created_in=st.sampled_from(ZONES),
    listed_in=st.sampled_from(ZONES),
    limit=st.integers(min_value=1, max_value=4),
)
def test_list_equals_a_python_filter_over_the_same_tasks(
    app, client, user, frozen_now, specs, wanted, created_in, listed_in, limit
):
    with app.app_context():
        db.session.execute(text("DELETE FROM tasks; DELETE FROM tags"))
        db.session.commit()
    # The tasks are written in one zone and listed in another: the change moves the date-only ones.
    set_zone(client, user, created_in)
    created = []
    for spec in specs:
        response = client.post(TASKS, json=spec, headers=user["headers"])
        assert response.status_code == 201, response.get_json()
        created.append(response.get_json())
    set_zone(client, user, listed_in)
    listed = walk(client, user, limit=limit, **as_query(wanted))
    chosen = [task for task in created if matches(task, wanted, listed_in)]
    sort = wanted.get("sort", "-created_at")
    assert [t["id"] for t in listed] == expected_order(chosen, sort, lambda task: stands_at(task, listed_in))
