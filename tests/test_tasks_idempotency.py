"""POST /api/v1/tasks with an Idempotency-Key: replays, conflicts, expiry and races."""

import threading
import time
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select, text

from app.extensions import db
from app.models import Task

TASKS = "/api/v1/tasks"


def post(client, user, body, key, **headers):
    return client.post(TASKS, json=body, headers={**user["headers"], "Idempotency-Key": key, **headers})


def task_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Task))


def run_sql(app, statement: str, **params) -> None:
    with app.app_context():
        db.session.execute(text(statement), params)
        db.session.commit()


def test_same_key_and_body_replays_the_first_answer(app, client, user):
    body = {"title": "pay rent", "tags": ["home"], "priority": "high"}
    first = post(client, user, body, "key-1")
    assert first.status_code == 201
    client.patch(
        f"{TASKS}/{first.get_json()['id']}", json={"title": "changed since"}, headers=user["headers"]
    )
    # The same JSON, spelled differently: keys reordered, other whitespace.
    again = client.post(
        TASKS,
        data='{ "priority":"high",  "tags":["home"], "title":"pay rent" }',
        content_type="application/json",
        headers={**user["headers"], "Idempotency-Key": "key-1"},
    )
    assert again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert task_count(app) == 1


def test_same_key_with_another_body_is_422_naming_the_header(app, client, user):
    assert post(client, user, {"title": "one"}, "key-1").status_code == 201
    response = post(client, user, {"title": "two"}, "key-1")
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert "Idempotency-Key" in response.get_json()["errors"]
    assert task_count(app) == 1


def test_keys_belong_to_their_user(app, client, user, other_user):
    assert post(client, user, {"title": "one"}, "shared").status_code == 201
    response = post(client, other_user, {"title": "one"}, "shared")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    assert task_count(app) == 2


def test_different_keys_create_separately(app, client, user):
    assert post(client, user, {"title": "one"}, "a").status_code == 201
    assert post(client, user, {"title": "one"}, "b").status_code == 201
    assert task_count(app) == 2


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_invalid_key_is_422_naming_the_header(app, client, user, key):
    response = post(client, user, {"title": "t"}, key)
    assert response.status_code == 422
    assert "Idempotency-Key" in response.get_json()["errors"]
    assert task_count(app) == 0


def test_key_of_255_characters_is_accepted(client, user):
    assert post(client, user, {"title": "t"}, "k" * 255).status_code == 201


def test_rejected_request_does_not_spend_the_key(app, client, user):
    assert post(client, user, {"title": ""}, "retry-me").status_code == 422
    assert post(client, user, {"title": "fixed"}, "retry-me").status_code == 201
    assert task_count(app) == 1


@contextmanager
def failing(app, event: str, table: str, condition: str):
    """A real database failure: a trigger raises on `event` of `table` rows meeting `condition`."""
    run_sql(
        app,
        f"""
        CREATE FUNCTION fail_on_purpose() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF {condition} THEN RAISE EXCEPTION 'rejected' USING ERRCODE = 'check_violation'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER fail_on_purpose BEFORE {event} ON {table}
            FOR EACH ROW EXECUTE FUNCTION fail_on_purpose();
        """,
    )
    try:
        yield
    finally:
        run_sql(app, f"DROP TRIGGER fail_on_purpose ON {table}; DROP FUNCTION fail_on_purpose();")


def test_failure_inside_the_request_releases_the_key(app, client, user):
    # The task's INSERT fails.
    with failing(app, "INSERT", "tasks", "NEW.title = 'boom'"):
        assert post(client, user, {"title": "boom"}, "flaky").status_code == 422
    assert post(client, user, {"title": "boom"}, "flaky").status_code == 201
    assert task_count(app) == 1


def test_task_and_answer_are_one_transaction(app, client, user):
    # Storing the answer fails, after the task was inserted.
    with failing(app, "UPDATE", "idempotency_keys", "NEW.status_code IS NOT NULL"):
        assert post(client, user, {"title": "once"}, "atomic").status_code == 422
        # Neither the task nor the claim outlived the failure.
        assert task_count(app) == 0
    first = post(client, user, {"title": "once"}, "atomic")
    assert first.status_code == 201
    assert post(client, user, {"title": "once"}, "atomic").get_json() == first.get_json()
    assert task_count(app) == 1


def claim_directly(app, user_id: int, key: str, age: str, **answer) -> None:
    """A key row as an earlier request left it, `age` ago."""
    run_sql(
        app,
        "INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, created_at) "
        "VALUES (:user_id, :key, 'whatever', :status, now() - CAST(:age AS interval))",
        user_id=user_id,
        key=key,
        status=answer.get("status"),
        age=age,
    )


def me(client, user) -> int:
    return client.get("/api/v1/auth/me", headers=user["headers"]).get_json()["id"]


def test_key_in_flight_is_409_for_the_same_body(app, client, user):
    body = {"title": "slow"}
    answers = {}
    with app.app_context(), db.engine.connect() as blocker:
        # Hold every insert into tasks: the first request claims its key, then waits.
        blocker.execute(text("LOCK TABLE tasks IN SHARE MODE"))

        def first():
            answers["first"] = post(app.test_client(), user, body, "slow-key").status_code

        thread = threading.Thread(target=first)
        thread.start()
        try:
            wait_for_claim(app, "slow-key")
            second = post(client, user, body, "slow-key")
            assert second.status_code == 409
            assert second.content_type == "application/problem+json"
            assert post(client, user, {"title": "other"}, "slow-key").status_code == 422
        finally:
            blocker.rollback()
            thread.join(timeout=30)
    assert answers["first"] == 201
    assert task_count(app) == 1
    replay = post(client, user, body, "slow-key")
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"


def wait_for_claim(app, key: str) -> None:
    for _ in range(200):
        with app.app_context():
            if db.session.scalar(text("SELECT count(*) FROM idempotency_keys WHERE key = :k"), {"k": key}):
                return
        time.sleep(0.05)
    raise AssertionError("the first request never claimed its key")


def test_abandoned_claim_and_expired_key_are_taken_again(app, client, user):
    user_id = me(client, user)
    claim_directly(app, user_id, "abandoned", "11 minutes")
    claim_directly(app, user_id, "expired", "25 hours", status=201)
    assert post(client, user, {"title": "t"}, "abandoned").status_code == 201
    response = post(client, user, {"title": "t"}, "expired")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    assert task_count(app) == 2


def test_two_requests_with_one_key_at_once_create_one_task(app, user):
    barrier = threading.Barrier(2)
    answers = []

    def create():
        client = app.test_client()
        barrier.wait(timeout=10)
        response = post(client, user, {"title": "once", "tags": ["t"]}, "race")
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    statuses = sorted(status for status, _ in answers)
    assert statuses in ([201, 201], [201, 409])
    if statuses == [201, 201]:
        assert answers[0][1] == answers[1][1]
    assert task_count(app) == 1
