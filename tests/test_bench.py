"""The benchmark's own parts: the bulk loader and the speed-of-light page (no timing here)."""

import psycopg2
import pytest
from sqlalchemy import make_url
from werkzeug.test import Client

from bench import load, speed_of_light, stages
from bench.servers import count_statements

from conftest import TASK_FIELDS, bearer


@pytest.fixture
def connection(database_url):
    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = psycopg2.connect(url)
    yield connection
    connection.close()


@pytest.fixture
def loaded(client, user, connection):
    """The fixture user with 60 bulk-loaded tasks; other users with 2 tasks each."""
    user_id = client.get("/api/v1/auth/me", headers=user["headers"]).get_json()["id"]
    tag_ids = load.ensure_tags(connection, user_id)
    ids = load.load_tasks(connection, user_id, 60, tag_ids)
    others = load.load_other_users(connection, 3, 2)
    connection.commit()
    return {"user_id": user_id, "ids": ids, "others": others}


def _scalar(connection, sql: str, *params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def test_bulk_loader_gives_the_user_exactly_n_searchable_tagged_tasks(loaded, connection):
    user_id = loaded["user_id"]
    assert len(loaded["ids"]) == 60
    assert _scalar(connection, "SELECT count(*) FROM tasks WHERE user_id = %s", user_id) == 60
    assert _scalar(connection, "SELECT count(*) FROM tasks WHERE user_id <> %s", user_id) == 6
    assert (
        _scalar(
            connection,
            "SELECT count(*) FROM task_tags tt JOIN tasks t ON t.id = tt.task_id "
            "JOIN tags g ON g.id = tt.tag_id WHERE t.user_id <> g.user_id",
        )
        == 0
    )
    assert _scalar(connection, "SELECT count(*) FROM task_tags") > 0
    # Some are date-only, standing at the start of their day in the user's zone (UTC here).
    assert (
        _scalar(connection, "SELECT count(*) FROM tasks WHERE user_id = %s AND due_date IS NOT NULL", user_id)
        > 0
    )
    assert (
        _scalar(
            connection,
            "SELECT count(*) FROM tasks WHERE due_date_start <> due_date::timestamp AT TIME ZONE 'UTC'",
        )
        == 0
    )
    matches = _scalar(
        connection,
        "SELECT count(*) FROM tasks WHERE user_id = %s AND search_vector @@ plainto_tsquery('english', %s)",
        user_id,
        load.WORDS[0],
    )
    assert matches > 0


def test_bulk_loaded_users_cannot_log_in(loaded, client, connection):
    email = _scalar(connection, "SELECT email FROM users WHERE id = %s", loaded["others"][0])
    response = client.post("/api/v1/auth/login", json={"email": email, "password": "anything-at-all"})
    assert response.status_code == 401


@pytest.fixture
def speed_of_light_app(loaded, app, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BENCH_USER_ID", str(loaded["user_id"]))
    monkeypatch.setenv("JWT_SECRET_KEY", app.config["JWT_SECRET_KEY"])
    monkeypatch.setenv("SECRET_KEY", app.config["SECRET_KEY"])
    yield Client(speed_of_light.app)
    if speed_of_light._pool is not None:
        speed_of_light._pool.closeall()
        speed_of_light._pool = None
    if speed_of_light._engine is not None:
        speed_of_light._engine.dispose()
        speed_of_light._engine = None


def test_speed_of_light_page_has_the_api_task_shape(speed_of_light_app):
    response = speed_of_light_app.get("/")
    assert response.status_code == 200
    page = response.get_json()
    assert set(page) == {"items", "next_cursor"}
    assert isinstance(page["next_cursor"], str)
    assert len(page["items"]) == 50
    for item in page["items"]:
        assert set(item) == TASK_FIELDS
        assert item["tags"] == sorted(item["tags"], key=str.lower)
        assert item["created_at"].endswith("+00:00")
    created = [item["created_at"] for item in page["items"]]
    assert created == sorted(created, reverse=True)


def test_speed_of_light_page_is_the_api_first_page(speed_of_light_app, client, user):
    page = speed_of_light_app.get("/").get_json()
    api = client.get("/api/v1/tasks?limit=50", headers=user["headers"])
    assert api.status_code == 200
    # The same page, item for item and field for field, as the API answers it.
    assert api.get_json()["items"] == page["items"]


@pytest.mark.parametrize("rung", ["/auth", "/flask"])
def test_authenticated_rungs_serve_the_token_holders_page(speed_of_light_app, client, user, other_user, rung):
    api = client.get("/api/v1/tasks?limit=50", headers=user["headers"]).get_json()
    response = speed_of_light_app.get(rung, headers=user["headers"])
    assert response.status_code == 200
    assert response.get_json()["items"] == api["items"]
    assert response.get_json()["next_cursor"] is not None
    # The page follows the token, not BENCH_USER_ID: the other user has no tasks.
    empty = speed_of_light_app.get(rung, headers=other_user["headers"])
    assert empty.status_code == 200
    assert empty.get_json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("rung", ["/auth", "/flask"])
def test_authenticated_rungs_refuse_what_the_api_refuses(speed_of_light_app, client, user, rung):
    token = user["tokens"]["access_token"]
    assert speed_of_light_app.get(rung).status_code == 401
    assert speed_of_light_app.get(rung, headers=bearer(token[:-2] + "xx")).status_code == 401
    assert speed_of_light_app.get(rung, headers=bearer(user["tokens"]["refresh_token"])).status_code == 401
    assert client.post("/api/v1/auth/logout", headers=user["headers"]).status_code == 204
    assert speed_of_light_app.get(rung, headers=user["headers"]).status_code == 401


# --- the references of get one task, me, /health and create task ---


# "/flask": the same reference as a bare Flask route on the API's pool (its pre-ping included).
@pytest.mark.parametrize("prefix", ["", "/flask"])
def test_get_one_task_reference_answers_what_the_api_answers(
    speed_of_light_app, client, user, other_user, loaded, prefix
):
    for task_id in loaded["ids"][:5]:
        path = f"/api/v1/tasks/{task_id}"
        api = client.get(path, headers=user["headers"])
        reference = speed_of_light_app.get(prefix + path, headers=user["headers"])
        assert (reference.status_code, api.status_code) == (200, 200)
        assert reference.get_json() == api.get_json()
        assert reference.headers["ETag"] == api.headers["ETag"]
    # Another user's task is a 404 on both.
    path = f"/api/v1/tasks/{loaded['ids'][0]}"
    assert client.get(path, headers=other_user["headers"]).status_code == 404
    assert speed_of_light_app.get(prefix + path, headers=other_user["headers"]).status_code == 404


@pytest.mark.parametrize("prefix", ["", "/flask"])
def test_me_reference_answers_what_the_api_answers(speed_of_light_app, client, user, other_user, prefix):
    names = {"first_name": "Ada", "last_name": "Lovelace", "timezone": "Europe/London"}
    assert client.patch("/api/v1/auth/me", json=names, headers=user["headers"]).status_code == 200
    for headers in (user["headers"], other_user["headers"]):
        api = client.get("/api/v1/auth/me", headers=headers)
        reference = speed_of_light_app.get(prefix + "/api/v1/auth/me", headers=headers)
        assert (reference.status_code, api.status_code) == (200, 200)
        assert reference.get_json() == api.get_json()


def test_health_reference_answers_what_the_api_answers(speed_of_light_app, client):
    reference = speed_of_light_app.get("/health")
    assert reference.status_code == 200
    assert reference.get_json() == client.get("/health").get_json() == {"status": "ok", "database": "ok"}


def _without_identity(task: dict) -> dict:
    """A task without what differs between two creates of the same body: its id and times."""
    assert task["completed_at"] is not None
    return {
        key: value
        for key, value in task.items()
        if key not in ("id", "completed_at", "created_at", "updated_at")
    }


def test_create_reference_stamps_its_change_as_the_api_does(speed_of_light_app, client, user):
    # The same work as the API's create, /sync included: the next sync carries the new task.
    since = client.get("/api/v1/sync", headers=user["headers"]).get_json()["next_since"]
    created = speed_of_light_app.post("/api/v1/tasks", json={"title": "stamped"}, headers=user["headers"])
    assert created.status_code == 201
    changes = client.get(f"/api/v1/sync?since={since}", headers=user["headers"]).get_json()["changes"]
    assert [(change["type"], change["id"]) for change in changes] == [("task", created.get_json()["id"])]


def test_create_reference_answers_and_stores_what_the_api_does(speed_of_light_app, client, user, loaded):
    # A zone of its own, so a due_at without an offset must be read in it; "WORK" and
    # "groceries" are existing tags (matched ignoring case); "Brand-New" is created, its
    # repeat counted once.
    assert (
        client.patch(
            "/api/v1/auth/me", json={"timezone": "America/New_York"}, headers=user["headers"]
        ).status_code
        == 200
    )
    assert client.post("/api/v1/tags", json={"name": "Groceries"}, headers=user["headers"]).status_code == 201
    body = {
        "title": "  Pay rent ",
        "description": "before the 5th",
        "priority": "urgent",
        "completed": True,
        "tags": ["WORK", "groceries", "Brand-New", "brand-new"],
        "due_at": "2027-01-15T09:00:00",
    }
    reference = speed_of_light_app.post("/api/v1/tasks", json=body, headers=user["headers"])
    assert reference.status_code == 201
    created = reference.get_json()
    assert reference.headers["Location"] == f"http://localhost/api/v1/tasks/{created['id']}"
    # What the reference stored is what the API reads back, and what the API's own create answers.
    stored = client.get(f"/api/v1/tasks/{created['id']}", headers=user["headers"]).get_json()
    assert created == stored
    assert (
        created["tags"] == ["Brand-New", "Groceries", "work"]
        and created["due_at"] == "2027-01-15T14:00:00+00:00"
    )
    api = client.post("/api/v1/tasks", json=body, headers=user["headers"])
    assert api.status_code == 201
    assert api.headers["Location"] == f"http://localhost/api/v1/tasks/{api.get_json()['id']}"
    assert _without_identity(api.get_json()) == _without_identity(created)
    assert set(created) == TASK_FIELDS


@pytest.mark.parametrize(
    "body",
    [
        {"title": "   "},
        {"description": "no title"},
        {"title": "x", "priority": "critical"},
        {"title": "x", "tags": ["a" * 51]},
        {"title": "x", "completed": "yes"},
        {"title": "x", "due_at": "tomorrow"},
        {"title": "x", "colour": "red"},
    ],
)
def test_create_reference_refuses_what_the_api_refuses(speed_of_light_app, client, user, body):
    api = client.post("/api/v1/tasks", json=body, headers=user["headers"])
    reference = speed_of_light_app.post("/api/v1/tasks", json=body, headers=user["headers"])
    assert (reference.status_code, api.status_code) == (422, 422)
    assert set(reference.get_json()["errors"]) == set(api.get_json()["errors"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/tasks/{id}"),
        ("GET", "/api/v1/auth/me"),
        ("POST", "/api/v1/tasks"),
        ("GET", "/flask/api/v1/tasks/{id}"),
        ("GET", "/flask/api/v1/auth/me"),
    ],
)
def test_token_checking_references_refuse_what_the_api_refuses(
    speed_of_light_app, client, user, loaded, method, path
):
    path = path.format(id=loaded["ids"][0])
    body = {"title": "never made"} if method == "POST" else None

    def status(headers=None):
        return speed_of_light_app.open(path, method=method, json=body, headers=headers or {}).status_code

    token = user["tokens"]["access_token"]
    assert status() == 401
    assert status(bearer(token[:-2] + "xx")) == 401
    assert status(bearer(user["tokens"]["refresh_token"])) == 401
    assert client.post("/api/v1/auth/logout", headers=user["headers"]).status_code == 204
    assert status(user["headers"]) == 401
    api_path = path.removeprefix("/flask")
    assert client.open(api_path, method=method, json=body, headers=user["headers"]).status_code == 401


def test_stages_time_the_list_page_and_each_of_its_stages(app, loaded, user):
    timings = stages.stages(app, user["tokens"]["access_token"], loaded["user_id"], calls=2)
    assert list(timings) == [
        "whole request (WSGI app, in-process)",
        "page query, ORM (51 Task objects)",
        "page query, psycopg2 (speed-of-light SQL)",
        "page query, psycopg2 (the API's JSON built by PostgreSQL)",
        "marshmallow dump of 50 tasks",
        "JSON encoding of the page",
        "token decode (flask-jwt-extended)",
        "session check query (ORM)",
        "one round trip (SELECT 1, psycopg2)",
    ]
    assert all(microseconds > 0 for microseconds in timings.values())


def test_statement_count_reads_only_the_api_lines_after_the_offset(tmp_path):
    log = tmp_path / "log"
    log.write_text("todo-api|LOG:  statement: SELECT 2\n")
    offset = log.stat().st_size
    with log.open("a") as lines:
        lines.write("todo-api|LOG:  statement: SELECT 1\ntodo-api|LOG:  statement: BEGIN\n")
        lines.write("todo-api|LOG:  statement: SELECT users.id\n  FROM users\n")
        lines.write("bench|LOG:  statement: SELECT 3\ntodo-api|LOG:  statement: COMMIT\n")
    assert count_statements(log, offset) == (1, 4)
