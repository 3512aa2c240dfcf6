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
    yield Client(speed_of_light.app)
    if speed_of_light._pool is not None:
        speed_of_light._pool.closeall()
        speed_of_light._pool = None


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


def test_stages_time_the_list_page_and_each_of_its_stages(app, loaded, user):
    timings = stages.stages(app, user["tokens"]["access_token"], loaded["user_id"], calls=2)
    assert list(timings) == [
        "whole request (WSGI app, in-process)",
        "page query, ORM (51 Task objects)",
        "page query, psycopg2 (speed-of-light SQL)",
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
