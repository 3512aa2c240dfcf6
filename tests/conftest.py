"""Test fixtures: one PostgreSQL database built by the migrations, emptied before each test.

The database is a throwaway embedded server (pgserver) unless TEST_DATABASE_URL
names a server; either way the suite creates a database of its own on it and
drops it at the end. Tests commit for real and are isolated by truncation, not by
a rolled-back transaction: the concurrency tests need several connections to see
each other's commits, exactly as in production.
"""

import os
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import flask_migrate
import pgserver
import psycopg2.extensions
import pytest
from flask import Flask
from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.pool import NullPool

from app import create_app
from app.extensions import db
from config import TestConfig

from openapi_check import MISMATCHES, DocumentCheckedClient

PASSWORD = "correct horse battery"

PROBLEM = "application/problem+json"
# The Task representation's fields (API.md), as every answer carrying a task has them.
TASK_FIELDS = {
    "id",
    "title",
    "description",
    "completed",
    "completed_at",
    "due_at",
    "due_date",
    "priority",
    "tags",
    "created_at",
    "updated_at",
}


# Every test client of every app the suite builds checks each answer against /openapi.json.
Flask.test_client_class = DocumentCheckedClient


@pytest.fixture(autouse=True)
def _answers_match_the_document():
    """Fail the test if any of its answers broke the document, also one in a thread of the test."""
    MISMATCHES.clear()
    yield
    if MISMATCHES:
        found = list(MISMATCHES)
        MISMATCHES.clear()
        pytest.fail("answers that /openapi.json does not describe:\n" + "\n".join(found), pytrace=False)


def assert_problem(response, status):
    """An RFC 9457 problem with `status`, carrying its request id; returns the body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == PROBLEM
    body = response.get_json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    assert response.headers["X-Request-ID"]
    return body


def _admin_url() -> str:
    if url := os.environ.get("TEST_DATABASE_URL"):
        return url
    # Not under pytest's tmp_path: pytest prunes old run folders there, which would
    # delete the data directory of a run still going in another terminal.
    server = pgserver.get_server(Path(tempfile.mkdtemp(prefix="todo-test-pg-")), cleanup_mode="delete")
    return server.get_uri()


class DatabaseServer:
    """The PostgreSQL server the suite runs on; makes and drops databases of its own."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url).set(drivername="postgresql+psycopg2")
        self.admin = create_engine(self.admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")

    def create_database(self) -> str:
        name = f"todo_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{make_url(url).database}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_server():
    server = DatabaseServer(_admin_url())
    yield server
    server.admin.dispose()


@pytest.fixture
def empty_database(database_server, monkeypatch):
    """A database with no schema at all, named by TEST_DATABASE_URL for this test only."""
    url = database_server.create_database()
    monkeypatch.setenv("TEST_DATABASE_URL", url)
    yield url
    database_server.drop_database(url)


@pytest.fixture(scope="session")
def database_url(database_server):
    """A fresh, migrated database for this run; dropped afterwards."""
    url = database_server.create_database()
    previous = os.environ.get("TEST_DATABASE_URL")
    os.environ["TEST_DATABASE_URL"] = url
    app = create_app(TestConfig)
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()
    yield url
    if previous is None:
        os.environ.pop("TEST_DATABASE_URL", None)
    else:
        os.environ["TEST_DATABASE_URL"] = previous
    database_server.drop_database(url)


@pytest.fixture(scope="session")
def app(database_url):
    return create_app(TestConfig)


@pytest.fixture(autouse=True)
def _empty_database(request):
    """Start every test that uses the database from no users (priorities stay)."""
    if "database_url" not in request.fixturenames:
        yield
        return
    yield
    engine = create_engine(os.environ["TEST_DATABASE_URL"], poolclass=NullPool)
    with engine.begin() as connection:
        # Every table of user data hangs off users by ON DELETE CASCADE foreign keys.
        connection.execute(text("TRUNCATE users RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def register(client, email: str = "ada@example.com", password: str = PASSWORD, **fields):
    response = client.post("/api/v1/auth/register", json={"email": email, "password": password, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def login(client, email: str = "ada@example.com", password: str = PASSWORD) -> dict:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def user(client):
    """A registered user with a logged-in session: {"email", "password", "tokens", "headers"}."""
    register(client)
    tokens = login(client)
    return {
        "email": "ada@example.com",
        "password": PASSWORD,
        "tokens": tokens,
        "headers": bearer(tokens["access_token"]),
    }


@pytest.fixture
def other_user(client):
    """A second user, to check that one user never sees another's data."""
    register(client, email="grace@example.com")
    tokens = login(client, email="grace@example.com")
    return {"email": "grace@example.com", "tokens": tokens, "headers": bearer(tokens["access_token"])}


ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def sent_statements(app, what=lambda cursor, query, parameters: (query, parameters)):
    """Every statement the app sends inside the block, in order, as `what(cursor, SQL,
    parameters)` (by default (SQL, parameters)): whatever runs them, the ORM session or psycopg2
    alone (app.transactions.read_rows). Recorded at the driver, by the cursors of every
    connection checked out of the app's pool meanwhile. BEGIN, COMMIT and the pool's pre-ping
    (run before the checkout hands the connection out) are not in it."""
    sent = []

    class RecordingCursor(psycopg2.extensions.cursor):
        def execute(self, query, vars=None):
            sent.append(what(self, query, vars))
            return super().execute(query, vars)

        def executemany(self, query, vars_list):
            sent.append(what(self, query, vars_list))
            return super().executemany(query, vars_list)

    def record(dbapi_connection, _record, _proxy):
        dbapi_connection.cursor_factory = RecordingCursor

    def stop_recording(dbapi_connection, _record):
        if dbapi_connection is not None:
            dbapi_connection.cursor_factory = psycopg2.extensions.cursor

    with app.app_context():
        engine = db.engine
    event.listen(engine, "checkout", record)
    event.listen(engine, "checkin", stop_recording)
    try:
        yield sent
    finally:
        event.remove(engine, "checkout", record)
        event.remove(engine, "checkin", stop_recording)
