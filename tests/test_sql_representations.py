"""Property: every representation PostgreSQL builds (STYLE.md, "When a representation is built in
SQL") equals the marshmallow schema's dump of the same row loaded through the ORM, field for field.

Rows are inserted directly (random values the API would rarely produce: years 1 and 9999,
microseconds zero or not, unicode, every priority, 0..20 tags in mixed case); the SQL side is
read through the real routes, whose answers are those bytes."""

from datetime import UTC, date, datetime, time
from zoneinfo import available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.extensions import db
from app.models import Tag, Task, User, task_tags
from app.schemas.auth import UserSchema
from app.schemas.tasks import TaskSchema
from app.tasks import _etag

TASKS = "/api/v1/tasks"
# PostgreSQL's text holds neither NUL nor a lone surrogate (the API refuses both with a 422).
STORABLE = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")


def texts(min_size: int, max_size: int):
    return st.text(STORABLE, min_size=min_size, max_size=max_size)


def _exact(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


# Far (years 1 and 9999) and near; whole seconds as often as not, since the answer drops
# zero microseconds the way isoformat() does.
moments = st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999), timezones=st.just(UTC))
moments = (
    moments
    | moments.map(_exact)
    | st.datetimes(datetime(2026, 1, 1), datetime(2028, 1, 1), timezones=st.just(UTC))
)
tag_names = st.lists(
    texts(1, 50).filter(lambda name: name.strip() == name and name),
    max_size=20,
    unique_by=str.lower,
)
days = st.dates(date(1, 1, 1), date(9999, 12, 31))


def _one_due(spec: dict) -> dict:
    """At most one of due_at and due_date, as the table's constraint has it; a due_date's start
    (not part of the representation) is stored beside it."""
    if spec["due_date"] is not None:
        spec["due_at"] = None
        spec["due_date_start"] = datetime.combine(spec["due_date"], time(), UTC)
    return spec


tasks = st.fixed_dictionaries(
    {
        "title": texts(1, 200).filter(str.strip),  # the API trims, so no stored title is blank
        "description": texts(0, 300),
        "completed_at": st.none() | moments,
        "due_at": st.none() | moments,
        "due_date": st.none() | days,
        "priority_level": st.none() | st.integers(1, 4),
        "created_at": moments,
        "updated_at": moments,
        "tags": tag_names,
    }
).map(_one_due)
users = st.fixed_dictionaries(
    {
        "first_name": texts(0, 100),
        "last_name": texts(0, 100),
        "timezone": st.sampled_from(sorted(available_timezones())),
        "created_at": moments,
    }
)
PROPERTY = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def user_id(app, client, user) -> int:
    return client.get("/api/v1/auth/me", headers=user["headers"]).get_json()["id"]


def insert_task(app, user_id: int, spec: dict) -> int:
    """Insert a task and its tags as given; returns its id."""
    spec = dict(spec)
    names = spec.pop("tags")
    with app.app_context():
        task_id = db.session.scalar(
            insert(Task)
            .values(user_id=user_id, completed=spec["completed_at"] is not None, **spec)
            .returning(Task.id)
        )
        for name in names:
            # Names distinct to Python's lower() may still be one to PostgreSQL's: reuse the tag.
            tag_id = db.session.scalar(
                select(Tag.id).where(Tag.user_id == user_id, func.lower(Tag.name) == func.lower(name))
            )
            if tag_id is None:
                tag_id = db.session.scalar(insert(Tag).values(user_id=user_id, name=name).returning(Tag.id))
            db.session.execute(
                pg_insert(task_tags).values(task_id=task_id, tag_id=tag_id).on_conflict_do_nothing()
            )
        db.session.commit()
    return task_id


def dumped_task(app, task_id: int) -> dict:
    """TaskSchema's dump of the task as the ORM loads it."""
    with app.app_context():
        return TaskSchema().dump(db.session.get(Task, task_id))


def clear_tasks(app, user_id: int) -> None:
    with app.app_context():
        db.session.execute(delete(Task).where(Task.user_id == user_id))
        db.session.execute(delete(Tag).where(Tag.user_id == user_id))
        db.session.commit()


@PROPERTY
@given(spec=tasks)
def test_task_in_get_equals_the_schemas_dump(app, client, user, user_id, spec):
    task_id = insert_task(app, user_id, spec)
    try:
        response = client.get(f"{TASKS}/{task_id}", headers=user["headers"])
        assert response.status_code == 200
        expected = dumped_task(app, task_id)
        assert response.get_json() == expected
        # PATCH compares If-Match against the schema's dump: the same tag GET answered.
        assert response.headers["ETag"] == _etag(expected)
    finally:
        clear_tasks(app, user_id)


@PROPERTY
@given(spec=tasks)
def test_task_in_list_equals_the_schemas_dump(app, client, user, user_id, spec):
    task_id = insert_task(app, user_id, spec)
    try:
        response = client.get(TASKS, headers=user["headers"])
        assert response.status_code == 200
        assert response.get_json() == {"items": [dumped_task(app, task_id)], "next_cursor": None}
    finally:
        clear_tasks(app, user_id)


@PROPERTY
@given(spec=users)
def test_user_in_me_equals_the_schemas_dump(app, client, user, user_id, spec):
    with app.app_context():
        db.session.execute(User.__table__.update().where(User.id == user_id).values(**spec))
        db.session.commit()
    response = client.get("/api/v1/auth/me", headers=user["headers"])
    assert response.status_code == 200
    with app.app_context():
        assert response.get_json() == UserSchema().dump(db.session.get(User, user_id))


# A create's body as a client sends it: tags in any case, some of them the user's already.
EXISTING_TAGS = ["Work", "home", "ÄRGER"]
create_bodies = st.fixed_dictionaries(
    {"title": texts(1, 200).filter(str.strip)},
    optional={
        "description": texts(0, 300),
        "completed": st.booleans(),
        "due_at": st.none() | moments.map(datetime.isoformat),
        "due_date": st.none() | days.map(date.isoformat),
        "priority": st.none() | st.sampled_from(["low", "medium", "high", "urgent"]),
        "tags": st.lists(
            st.sampled_from([*EXISTING_TAGS, *(name.swapcase() for name in EXISTING_TAGS)])
            | texts(1, 50).filter(lambda name: name.strip() == name and name),
            max_size=20,
            unique_by=str.lower,
        ),
    },
).filter(lambda body: body.get("due_at") is None or body.get("due_date") is None)


@PROPERTY
@given(body=create_bodies)
def test_create_answer_equals_the_schemas_dump(app, client, user, user_id, body):
    with app.app_context():
        db.session.execute(insert(Tag), [{"user_id": user_id, "name": name} for name in EXISTING_TAGS])
        db.session.commit()
    try:
        response = client.post(TASKS, json=body, headers=user["headers"])
        assert response.status_code == 201, response.get_json()
        assert response.get_json() == dumped_task(app, response.get_json()["id"])
    finally:
        clear_tasks(app, user_id)
