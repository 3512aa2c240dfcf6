"""Instances of recurring tasks: the stored window, its limits, completion and concurrency."""

import threading
from datetime import UTC, datetime, timedelta

import pytest

from conftest import bearer, login, register

BASE = "/api/v1/recurring-tasks"


def create(client, headers, **fields):
    body = {
        "title": "t",
        "rrule": "FREQ=DAILY",
        "dtstart": "2027-03-01T09:00:00",
        "timezone": "UTC",
        **fields,
    }
    response = client.post(BASE, json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def window(client, headers, definition_id, **query):
    return client.get(f"{BASE}/{definition_id}/instances", query_string=query, headers=headers)


def items(client, headers, definition_id, **query):
    response = window(client, headers, definition_id, **query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def test_instances_are_stored_on_first_read_and_keep_their_ids(client, user):
    definition_id = create(client, user["headers"])
    first = items(
        client, user["headers"], definition_id, start="2027-03-01T00:00:00Z", end="2027-03-04T00:00:00Z"
    )
    assert [(i["occurs_at"], i["completed"], i["completed_at"]) for i in first] == [
        ("2027-03-01T09:00:00+00:00", False, None),
        ("2027-03-02T09:00:00+00:00", False, None),
        ("2027-03-03T09:00:00+00:00", False, None),
    ]
    assert {i["recurring_task_id"] for i in first} == {definition_id}
    overlapping = items(
        client, user["headers"], definition_id, start="2027-03-02T00:00:00Z", end="2027-03-05T00:00:00Z"
    )
    assert [i["id"] for i in overlapping[:2]] == [i["id"] for i in first[1:]]
    assert len(overlapping) == 3


def test_window_start_is_inclusive_and_end_exclusive(client, user):
    definition_id = create(client, user["headers"])
    found = items(
        client, user["headers"], definition_id, start="2027-03-02T09:00:00Z", end="2027-03-04T09:00:00Z"
    )
    assert [i["occurs_at"][:10] for i in found] == ["2027-03-02", "2027-03-03"]
    assert (
        items(
            client, user["headers"], definition_id, start="2027-03-02T09:00:00Z", end="2027-03-02T09:00:00Z"
        )
        == []
    )


def test_naive_window_bounds_are_in_the_users_timezone(client):
    register(client, timezone="Asia/Tokyo")
    headers = bearer(login(client)["access_token"])
    definition_id = create(client, headers)
    # 2027-03-02T18:00 Tokyo is 09:00 UTC: the start includes that day's occurrence.
    found = items(client, headers, definition_id, start="2027-03-02T18:00:00", end="2027-03-03T18:00:00")
    assert [i["occurs_at"] for i in found] == ["2027-03-02T09:00:00+00:00"]


def test_window_defaults_to_the_next_30_days(client, user):
    now = datetime.now(UTC)
    dtstart = (now - timedelta(days=3)).replace(tzinfo=None).isoformat(timespec="seconds")
    definition_id = create(client, user["headers"], dtstart=dtstart)
    found = [datetime.fromisoformat(i["occurs_at"]) for i in items(client, user["headers"], definition_id)]
    assert len(found) in (29, 30, 31)
    assert now - timedelta(minutes=1) <= found[0] <= now + timedelta(days=1)
    assert found[-1] < now + timedelta(days=30, minutes=1)
    only_start = items(client, user["headers"], definition_id, start=(now + timedelta(days=100)).isoformat())
    assert len(only_start) == 30


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "2027-03-10T00:00:00Z", "end": "2027-03-09T00:00:00Z"}, "end"),
        ({"end": "2020-01-01T00:00:00Z"}, "end"),
        ({"start": "2027-01-01T00:00:00Z", "end": "2028-01-02T00:00:01Z"}, "end"),
        ({"start": "yesterday"}, "start"),
        ({"start": "0001-01-01T00:00:00"}, "start"),
        ({"end": "9999-12-31T23:59:59+00:00"}, "end"),
        ({"limit": "5"}, "limit"),
    ],
)
def test_bad_windows_are_422(client, user, query, field):
    definition_id = create(client, user["headers"])
    response = window(client, user["headers"], definition_id, **query)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_a_window_of_366_days_is_allowed(client, user):
    definition_id = create(client, user["headers"])
    found = items(
        client, user["headers"], definition_id, start="2027-03-01T00:00:00Z", end="2028-03-01T00:00:00Z"
    )
    assert len(found) == 366


def test_over_1000_occurrences_is_422_and_stores_nothing(client, user):
    definition_id = create(client, user["headers"], rrule="FREQ=HOURLY")
    response = window(
        client, user["headers"], definition_id, start="2027-03-01T00:00:00Z", end="2027-04-15T00:00:00Z"
    )
    assert response.status_code == 422
    assert "end" in response.get_json()["errors"]
    exactly = items(
        client, user["headers"], definition_id, start="2027-03-01T09:00:00Z", end="2027-04-12T01:00:00Z"
    )
    assert len(exactly) == 1000
    assert (
        items(
            client, user["headers"], definition_id, start="2027-03-01T00:00:00Z", end="2027-03-01T09:00:00Z"
        )
        == []
    )


def test_completing_and_reopening_an_instance(client, user):
    definition_id = create(client, user["headers"])
    instance = items(
        client, user["headers"], definition_id, start="2027-03-01T00:00:00Z", end="2027-03-02T00:00:00Z"
    )[0]
    url = f"{BASE}/{definition_id}/instances/{instance['id']}"
    response = client.patch(url, json={"completed": True}, headers=user["headers"])
    assert response.status_code == 200
    done = response.get_json()
    assert done["completed"] is True
    completed_at = datetime.fromisoformat(done["completed_at"])
    assert abs(completed_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert {k: done[k] for k in ("id", "recurring_task_id", "occurs_at")} == {
        k: instance[k] for k in ("id", "recurring_task_id", "occurs_at")
    }
    reopened = client.patch(url, json={"completed": False}, headers=user["headers"]).get_json()
    assert (reopened["completed"], reopened["completed_at"]) == (False, None)
    unchanged = client.patch(url, json={}, headers=user["headers"])
    assert (unchanged.status_code, unchanged.get_json()) == (200, reopened)
    for body, field in (
        ({"completed": "maybe"}, "completed"),
        ({"completed": None}, "completed"),
        ({"skipped": "yes"}, "skipped"),
        ({"skipped": None}, "skipped"),
        ({"occurs_at": "tomorrow"}, "occurs_at"),
        ({"occurs_at": "0001-01-01T00:00:00"}, "occurs_at"),
        ({"original_occurs_at": "2027-01-01T00:00:00Z"}, "original_occurs_at"),
        ({"completed_at": "2027-01-01T00:00:00Z"}, "completed_at"),
    ):
        response = client.patch(url, json=body, headers=user["headers"])
        assert response.status_code == 422, body
        assert response.headers["Content-Type"] == "application/problem+json"
        assert field in response.get_json()["errors"], body


def test_instances_of_other_users_or_other_definitions_are_404(client, user, other_user):
    mine = create(client, user["headers"])
    also_mine = create(client, user["headers"])
    theirs = create(client, other_user["headers"])
    span = {"start": "2027-03-01T00:00:00Z", "end": "2027-03-02T00:00:00Z"}
    their_instance = items(client, other_user["headers"], theirs, **span)[0]["id"]
    my_instance = items(client, user["headers"], mine, **span)[0]["id"]
    for path in (
        f"{theirs}/instances/{their_instance}",
        f"{mine}/instances/{their_instance}",
        f"{also_mine}/instances/{my_instance}",
        f"{mine}/instances/0",
        f"{mine}/instances/abc",
        f"{mine}/instances/{2**63}",
    ):
        response = client.patch(f"{BASE}/{path}", json={"completed": True}, headers=user["headers"])
        assert response.status_code == 404, path
    assert window(client, user["headers"], theirs, **span).status_code == 404


def test_schedule_change_drops_future_uncompleted_instances_and_keeps_completed(client, user):
    definition_id = create(client, user["headers"])
    span = {"start": "2027-03-01T00:00:00Z", "end": "2027-03-08T00:00:00Z"}
    before = items(client, user["headers"], definition_id, **span)
    done = before[2]
    client.patch(
        f"{BASE}/{definition_id}/instances/{done['id']}", json={"completed": True}, headers=user["headers"]
    )
    unchanged = client.patch(
        f"{BASE}/{definition_id}", json={"title": "new", "rrule": "FREQ=DAILY"}, headers=user["headers"]
    )
    assert unchanged.status_code == 200
    assert [i["id"] for i in items(client, user["headers"], definition_id, **span)] == [
        i["id"] for i in before
    ]
    response = client.patch(
        f"{BASE}/{definition_id}", json={"dtstart": "2027-03-01T10:00:00"}, headers=user["headers"]
    )
    assert response.status_code == 200
    after = items(client, user["headers"], definition_id, **span)
    kept = [i for i in after if i["completed"]]
    assert [(i["id"], i["occurs_at"]) for i in kept] == [(done["id"], done["occurs_at"])]
    fresh = [i for i in after if not i["completed"]]
    assert [i["occurs_at"][11:16] for i in fresh] == ["10:00"] * 7
    assert not {i["id"] for i in fresh} & {i["id"] for i in before}


def test_deleting_the_definition_deletes_its_instances(client, user, app):
    definition_id = create(client, user["headers"])
    items(client, user["headers"], definition_id, start="2027-03-01T00:00:00Z", end="2027-03-08T00:00:00Z")
    assert client.delete(f"{BASE}/{definition_id}", headers=user["headers"]).status_code == 204
    from app.extensions import db
    from app.models import TaskInstance

    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(TaskInstance)) == 0


def test_concurrent_readers_store_each_occurrence_once(app, user):
    definition_id = create(app.test_client(), user["headers"], rrule="FREQ=HOURLY")
    span = {"start": "2027-03-01T00:00:00Z", "end": "2027-03-21T00:00:00Z"}
    barrier = threading.Barrier(6)
    answers, errors = [], []

    def read():
        client = app.test_client()
        try:
            barrier.wait(timeout=10)
            response = window(client, user["headers"], definition_id, **span)
            answers.append(
                (response.status_code, [(i["id"], i["occurs_at"]) for i in response.get_json()["items"]])
            )
        except Exception as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=read) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert len(answers) == 6
    assert {status for status, _ in answers} == {200}
    assert len({tuple(found) for _, found in answers}) == 1
    assert len(answers[0][1]) == 20 * 24 - 9
