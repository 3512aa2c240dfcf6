"""Plain reads run without a transaction block; writes and locking reads keep theirs."""

import psycopg2.errors
import psycopg2.extensions
import pytest
from sqlalchemy import select, text, update

from app import create_app
from app.extensions import db
from app.models import User
from config import TestConfig

from conftest import register, sent_statements


@pytest.fixture
def autocommit_per_statement(app):
    """For each statement the app sends from now on, through the ORM session or psycopg2 alone:
    was psycopg2's autocommit on?"""
    with sent_statements(app, lambda cursor, _query, _parameters: cursor.connection.autocommit) as seen:
        yield seen


def test_a_read_sends_no_begin_and_no_rollback(client, user, autocommit_per_statement):
    assert client.post("/api/v1/tasks", json={"title": "one"}, headers=user["headers"]).status_code == 201
    autocommit_per_statement.clear()
    assert client.get("/api/v1/tasks", headers=user["headers"]).status_code == 200
    # One statement checks the token's session and reads the page, outside a transaction block.
    assert autocommit_per_statement == [True]


def test_a_write_is_one_transaction(client, user, autocommit_per_statement):
    response = client.patch("/api/v1/auth/me", json={"first_name": "Ada"}, headers=user["headers"])
    assert response.status_code == 200
    assert autocommit_per_statement and not any(autocommit_per_statement)


def test_a_create_is_one_message_which_postgresql_runs_as_one_transaction(app, client, user):
    # The stamp and the create go as one message in autocommit: if its second statement fails,
    # the first (the user's change counter) is rolled back with it.
    with sent_statements(app) as sent:
        assert client.post("/api/v1/tasks", json={"title": "one"}, headers=user["headers"]).status_code == 201
    ((message, parameters),) = sent
    counter = "SELECT sync_seq FROM users WHERE email = 'ada@example.com'"
    with app.app_context():
        before = db.session.execute(text(counter)).scalar_one()
        connection = db.engine.raw_connection()
        try:
            connection.driver_connection.autocommit = True
            with pytest.raises(psycopg2.errors.CheckViolation), connection.cursor() as cursor:
                cursor.execute(message, {**parameters, "title": ""})  # a blank title: CHECK fails
        finally:
            connection.close()
        assert db.session.execute(text(counter)).scalar_one() == before
        db.session.rollback()


def test_reading_instances_stores_them_inside_a_transaction(client, user, autocommit_per_statement):
    body = {"title": "Stand-up", "rrule": "FREQ=DAILY", "dtstart": "2030-01-01T09:00:00", "timezone": "UTC"}
    created = client.post("/api/v1/recurring-tasks", json=body, headers=user["headers"]).get_json()
    autocommit_per_statement.clear()
    window = "start=2030-01-01T00:00:00Z&end=2030-01-08T00:00:00Z"
    url = f"/api/v1/recurring-tasks/{created['id']}/instances?{window}"
    response = client.get(url, headers=user["headers"])
    assert response.status_code == 200
    assert len(response.get_json()["items"]) == 7
    # The token's session, the definition, the window (empty); then under the user's lock (the
    # change counter) the definition again, the INSERT and the window: one transaction.
    assert autocommit_per_statement == [False] * 7
    autocommit_per_statement.clear()
    assert client.get(url, headers=user["headers"]).get_json() == response.get_json()
    # Stored already: the token's session, the definition, the window; nothing written.
    assert autocommit_per_statement == [False] * 3


def test_connections_go_back_to_the_pool_transactional(app, client, user):
    for _ in range(3):
        assert client.get("/api/v1/tasks", headers=user["headers"]).status_code == 200
    with app.app_context():
        pool = db.engine.pool
        connections = [pool.connect() for _ in range(max(1, pool.checkedin()))]
        try:
            assert [c.driver_connection.autocommit for c in connections] == [False] * len(connections)
        finally:
            for connection in connections:
                connection.close()


def test_a_read_that_writes_without_its_transaction_is_refused(database_url):
    app = create_app(TestConfig)  # its own app: a route is added before its first request

    def rename_everyone():
        db.session.execute(update(User).values(first_name="Mallory"))
        db.session.commit()
        return {}

    app.add_url_rule("/rename-everyone", view_func=rename_everyone)
    client = app.test_client()
    register(client, first_name="Ada")
    # A 500 in production; the test app lets the exception through.
    with pytest.raises(RuntimeError, match="rename_everyone writes under GET: mark it @locking_read"):
        client.get("/rename-everyone")
    with app.app_context():
        assert db.session.scalars(select(User.first_name)).all() == ["Ada"]
        db.engine.dispose()
