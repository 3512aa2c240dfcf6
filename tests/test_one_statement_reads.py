"""A read is one statement that also checks the token's session; a create is one statement after
its change stamp.

The session check joins the data's statement: a dead session is still the revoked-token 401,
a missing or foreign task still a 404, and a tag committed by another request while a create
runs still gets its link."""

import threading
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from conftest import assert_problem, sent_statements

TASKS = "/api/v1/tasks"
ME = "/api/v1/auth/me"
REVOKED = "The token has been revoked."


@pytest.fixture
def statements(app):
    """(SQL, parameters) of every statement the app sends from now on."""
    with sent_statements(app) as sent:
        yield sent


@pytest.fixture
def task(client, user):
    response = client.post(TASKS, json={"title": "one", "tags": ["a"]}, headers=user["headers"])
    assert response.status_code == 201
    return response.get_json()


@pytest.mark.parametrize("path", [TASKS, f"{TASKS}?tag=A&sort=due_at&limit=5", "task", ME])
def test_a_read_is_one_statement(client, user, task, statements, path):
    path = f"{TASKS}/{task['id']}" if path == "task" else path
    assert client.get(path, headers=user["headers"]).status_code == 200
    assert len(statements) == 1


def test_an_empty_sync_is_one_statement_and_a_dead_session_is_401(client, user, task, statements):
    since = client.get("/api/v1/sync", headers=user["headers"]).get_json()["next_since"]
    statements.clear()
    response = client.get(f"/api/v1/sync?since={since}", headers=user["headers"])
    assert response.status_code == 200
    assert response.get_json()["changes"] == []
    assert len(statements) == 1
    assert client.post("/api/v1/auth/logout", headers=user["headers"]).status_code == 204
    for path in ("/api/v1/sync", f"/api/v1/sync?since={since}"):
        assert assert_problem(client.get(path, headers=user["headers"]), 401)["detail"] == REVOKED


def test_a_create_is_the_change_stamp_and_one_statement_in_one_round_trip(client, user, statements):
    body = {"title": "t", "priority": "high", "tags": ["x", "Y"], "due_at": "2030-01-01T00:00:00Z"}
    response = client.post(TASKS, json=body, headers=user["headers"])
    assert response.status_code == 201
    assert response.get_json()["tags"] == ["x", "Y"]
    assert len(statements) == 1
    stamp, create = statements[0][0].split(";", 1)
    assert stamp.split()[:4] == ["UPDATE", "users", "SET", "sync_seq"] and "INSERT INTO tasks" in create
    # One transaction: the stamp is drawn once, and the task carries it.
    synced = client.get("/api/v1/sync", headers=user["headers"]).get_json()
    task = next(change for change in synced["changes"] if change["type"] == "task")
    assert task["id"] == response.get_json()["id"] and task["data"]["title"] == "t"


def test_a_create_under_an_idempotency_key_stays_in_the_session_transaction(client, user, statements):
    headers = {**user["headers"], "Idempotency-Key": "k-1"}
    response = client.post(TASKS, json={"title": "t"}, headers=headers)
    assert response.status_code == 201
    sent = [sql.split()[0] for sql, _ in statements]
    assert ";" not in " ".join(sql for sql, _ in statements) and sent.count("UPDATE") >= 1, sent


def test_a_datetime_without_offset_takes_the_users_zone_in_a_second_statement(client, user, statements):
    client.patch(ME, json={"timezone": "Asia/Tokyo"}, headers=user["headers"])
    client.post(TASKS, json={"title": "t", "due_at": "2030-01-01T08:00:00"}, headers=user["headers"])
    statements.clear()
    items = client.get(f"{TASKS}?due_after=2030-01-01T08:00:00", headers=user["headers"]).get_json()["items"]
    assert [item["due_at"] for item in items] == ["2029-12-31T23:00:00+00:00"]
    assert len(statements) == 2


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", TASKS, None),
        ("get", "task", None),
        ("get", ME, None),
        ("post", TASKS, {"title": "t", "tags": ["n"]}),
    ],
)
def test_a_dead_session_is_401_and_does_nothing(client, user, task, method, path, body):
    path = f"{TASKS}/{task['id']}" if path == "task" else path
    assert client.post("/api/v1/auth/logout", headers=user["headers"]).status_code == 204
    response = getattr(client, method)(path, json=body, headers=user["headers"])
    assert assert_problem(response, 401)["detail"] == REVOKED
    assert response.headers["WWW-Authenticate"] == "Bearer"
    tokens = client.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": user["password"]}
    ).get_json()
    tags = client.get("/api/v1/tags", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert [tag["name"] for tag in tags.get_json()["items"]] == ["a"]


def test_a_missing_or_foreign_task_is_404(client, user, other_user, task):
    assert_problem(client.get(f"{TASKS}/{task['id']}", headers=other_user["headers"]), 404)
    assert_problem(client.get(f"{TASKS}/{task['id'] + 1}", headers=user["headers"]), 404)


def test_a_tag_committed_while_a_create_runs_still_gets_its_link(app, client, user, task):
    """The create's INSERT ... ON CONFLICT waits for the other transaction's tag; once that
    commits, the tag is not in the statement's snapshot, and the create falls back."""
    owner = client.get(ME, headers=user["headers"]).get_json()["id"]
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=NullPool)
    answers = []
    with other.connect() as connection:
        connection.execute(
            text("INSERT INTO tags (user_id, name) VALUES (:owner, 'Shared')"), {"owner": owner}
        )
        creating = threading.Thread(
            target=lambda: answers.append(
                app.test_client().post(
                    TASKS, json={"title": "t", "tags": ["shared", "b"]}, headers=user["headers"]
                )
            )
        )
        creating.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _waiting_on_a_lock(other):
            time.sleep(0.05)
        assert _waiting_on_a_lock(other), "the create never waited for the other transaction's tag"
        connection.commit()
    creating.join(timeout=10)
    other.dispose()
    assert answers[0].status_code == 201, answers[0].get_json()
    assert answers[0].get_json()["tags"] == ["b", "Shared"]
    stored = client.get(f"{TASKS}/{answers[0].get_json()['id']}", headers=user["headers"]).get_json()
    assert stored["tags"] == ["b", "Shared"]


def _waiting_on_a_lock(engine) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            )
        )


def test_a_dead_session_is_401_when_a_datetime_needs_the_users_zone(client, user):
    assert client.post("/api/v1/auth/logout", headers=user["headers"]).status_code == 204
    response = client.get(f"{TASKS}?due_after=2030-01-01T08:00:00", headers=user["headers"])
    assert assert_problem(response, 401)["detail"] == REVOKED


def test_a_patch_is_three_statements_and_a_dead_session_is_401_before_404(client, user, task, statements):
    path = f"{TASKS}/{task['id']}"
    done = client.patch(path, json={"completed": True}, headers=user["headers"])
    assert done.status_code == 200
    # The change stamp (app/changes.py: the user's lock first), the locked task with the session
    # check and the clock, then the UPDATE: no read-back.
    assert len(statements) == 3
    assert done.get_json()["completed_at"] == done.get_json()["updated_at"]
    assert done.headers["ETag"] == client.get(path, headers=user["headers"]).headers["ETag"]
    assert client.post("/api/v1/auth/logout", headers=user["headers"]).status_code == 204
    for missing_or_not in (path, f"{TASKS}/{task['id'] + 1}"):
        response = client.patch(missing_or_not, json={"completed": False}, headers=user["headers"])
        assert assert_problem(response, 401)["detail"] == REVOKED
