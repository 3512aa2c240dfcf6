"""Tasks: create, read, change (with ETags) and delete, at /api/v1/tasks and /api/v1/tasks/{id}."""

import threading
from datetime import UTC, datetime, timedelta

import pytest

from conftest import TASK_FIELDS

TASKS = "/api/v1/tasks"


def create_task(client, headers, **body):
    response = client.post(TASKS, json={"title": "a task", **body}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_create_with_defaults(client, user):
    response = client.post(TASKS, json={"title": "  Buy milk  "}, headers=user["headers"])
    assert response.status_code == 201
    task = response.get_json()
    assert set(task) == TASK_FIELDS
    assert task["title"] == "Buy milk"
    assert task["description"] == ""
    assert task["completed"] is False
    assert task["completed_at"] is None
    assert task["due_at"] is None
    assert task["priority"] is None
    assert task["tags"] == []
    assert task["created_at"] == task["updated_at"]
    assert abs(parse(task["created_at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert response.headers["Location"].endswith(f"/api/v1/tasks/{task['id']}")
    assert client.get(response.headers["Location"], headers=user["headers"]).get_json() == task


def test_create_with_every_field(client, user):
    task = create_task(
        client,
        user["headers"],
        title="Report",
        description="Quarterly numbers",
        completed=True,
        due_at="2030-05-01T09:30:00+02:00",
        priority="urgent",
        tags=["work", "Admin", "WORK", " q3 "],
    )
    assert task["description"] == "Quarterly numbers"
    assert task["completed"] is True
    assert abs(parse(task["completed_at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert parse(task["due_at"]) == datetime(2030, 5, 1, 7, 30, tzinfo=UTC)
    assert task["due_at"].endswith(("Z", "+00:00"))
    assert task["priority"] == "urgent"
    assert task["tags"] == ["Admin", "q3", "work"]


def test_tags_reuse_existing_ones_ignoring_case(client, user):
    client.post("/api/v1/tags", json={"name": "Work"}, headers=user["headers"])
    assert create_task(client, user["headers"], tags=["work", "home"])["tags"] == ["home", "Work"]
    names = [t["name"] for t in client.get("/api/v1/tags", headers=user["headers"]).get_json()["items"]]
    assert names == ["home", "Work"]


def test_naive_due_at_is_in_the_users_time_zone(client, user):
    client.patch("/api/v1/auth/me", json={"timezone": "America/New_York"}, headers=user["headers"])
    task = create_task(client, user["headers"], due_at="2030-01-15T09:00:00")
    assert parse(task["due_at"]) == datetime(2030, 1, 15, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": None}, "title"),
        ({"title": 7}, "title"),
        ({"title": "t", "description": "x" * 10001}, "description"),
        ({"title": "t", "description": None}, "description"),
        ({"title": "t", "completed": "maybe"}, "completed"),
        ({"title": "t", "completed": None}, "completed"),
        ({"title": "t", "due_at": "tomorrow"}, "due_at"),
        ({"title": "t", "due_at": "2030-02-30T10:00:00"}, "due_at"),
        ({"title": "t", "due_at": 1700000000}, "due_at"),
        ({"title": "t", "due_at": "9999-12-31T23:00:00-05:00"}, "due_at"),
        ({"title": "t", "priority": "critical"}, "priority"),
        ({"title": "t", "priority": 3}, "priority"),
        ({"title": "t", "tags": "work"}, "tags"),
        ({"title": "t", "tags": None}, "tags"),
        ({"title": "t", "tags": [f"t{i}" for i in range(21)]}, "tags"),
        ({"title": "t", "tags": ["ok", ""]}, "tags.1"),
        ({"title": "t", "tags": ["ok", "x" * 51]}, "tags.1"),
        ({"title": "t", "tags": ["ok", 5]}, "tags.1"),
        ({"title": "t", "id": 5}, "id"),
        ({"title": "t", "created_at": "2030-01-01T00:00:00Z"}, "created_at"),
        ({"title": "t", "owner": 1}, "owner"),
    ],
)
def test_create_rejects_invalid_fields(client, user, body, field):
    response = client.post(TASKS, json=body, headers=user["headers"])
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert field in response.get_json()["errors"]
    assert client.get(TASKS, headers=user["headers"]).get_json()["items"] == []


def test_limits_are_inclusive(client, user):
    task = create_task(
        client,
        user["headers"],
        title=" " + "t" * 200 + " ",
        description="d" * 10000,
        tags=[f"t{i}" for i in range(20)],
    )
    assert len(task["title"]) == 200
    assert len(task["tags"]) == 20
    # Twenty names that collapse to fewer are fine too: repeats count once.
    assert len(create_task(client, user["headers"], tags=["a", "A"] * 15)["tags"]) == 1


def test_invalid_body_creates_no_tag(client, user):
    client.post(TASKS, json={"title": "", "tags": ["orphan"]}, headers=user["headers"])
    assert client.get("/api/v1/tags", headers=user["headers"]).get_json()["items"] == []


def test_get_answers_a_strong_etag(client, user):
    task = create_task(client, user["headers"])
    response = client.get(f"{TASKS}/{task['id']}", headers=user["headers"])
    assert response.status_code == 200
    assert response.get_json() == task
    etag = response.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).headers["ETag"] == etag


def test_patch_is_partial_and_changes_updated_at_and_etag(client, user):
    task = create_task(client, user["headers"], description="keep", priority="low", tags=["a"])
    etag = client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).headers["ETag"]
    response = client.patch(f"{TASKS}/{task['id']}", json={"title": " new "}, headers=user["headers"])
    assert response.status_code == 200
    changed = response.get_json()
    assert changed["title"] == "new"
    assert {k: changed[k] for k in ("description", "priority", "tags", "created_at")} == {
        "description": "keep",
        "priority": "low",
        "tags": ["a"],
        "created_at": task["created_at"],
    }
    assert parse(changed["updated_at"]) > parse(task["updated_at"])
    assert response.headers["ETag"] != etag
    assert (
        client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).headers["ETag"]
        == response.headers["ETag"]
    )


def test_empty_patch_still_touches_updated_at(client, user):
    task = create_task(client, user["headers"])
    changed = client.patch(f"{TASKS}/{task['id']}", json={}, headers=user["headers"]).get_json()
    assert parse(changed["updated_at"]) > parse(task["updated_at"])


def test_patch_tags_replaces_the_set(client, user):
    task = create_task(client, user["headers"], tags=["a", "b"])
    changed = client.patch(
        f"{TASKS}/{task['id']}", json={"tags": ["C", "b"]}, headers=user["headers"]
    ).get_json()
    assert changed["tags"] == ["b", "C"]
    assert (
        client.patch(f"{TASKS}/{task['id']}", json={"tags": []}, headers=user["headers"]).get_json()["tags"]
        == []
    )


def test_patch_null_clears_due_at_and_priority(client, user):
    task = create_task(client, user["headers"], due_at="2030-01-01T00:00:00Z", priority="high")
    changed = client.patch(
        f"{TASKS}/{task['id']}", json={"due_at": None, "priority": None}, headers=user["headers"]
    )
    assert changed.get_json()["due_at"] is None
    assert changed.get_json()["priority"] is None


def test_completing_stamps_completed_at_and_reopening_clears_it(client, user):
    task = create_task(client, user["headers"])
    done = client.patch(f"{TASKS}/{task['id']}", json={"completed": True}, headers=user["headers"]).get_json()
    assert done["completed"] is True
    stamped = parse(done["completed_at"])
    assert parse(task["created_at"]) < stamped <= parse(done["updated_at"])
    again = client.patch(
        f"{TASKS}/{task['id']}", json={"completed": True}, headers=user["headers"]
    ).get_json()
    assert again["completed_at"] == done["completed_at"]
    reopened = client.patch(
        f"{TASKS}/{task['id']}", json={"completed": False}, headers=user["headers"]
    ).get_json()
    assert reopened["completed"] is False
    assert reopened["completed_at"] is None


def test_completed_at_cannot_be_written(client, user):
    task = create_task(client, user["headers"])
    response = client.patch(
        f"{TASKS}/{task['id']}", json={"completed_at": "2030-01-01T00:00:00Z"}, headers=user["headers"]
    )
    assert response.status_code == 422
    assert "completed_at" in response.get_json()["errors"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": None}, "title"),
        ({"description": "x" * 10001}, "description"),
        ({"completed": None}, "completed"),
        ({"due_at": "soon"}, "due_at"),
        ({"priority": "none"}, "priority"),
        ({"tags": None}, "tags"),
        ({"tags": ["a", " "]}, "tags.1"),
        ({"updated_at": "2030-01-01T00:00:00Z"}, "updated_at"),
    ],
)
def test_patch_rejects_invalid_fields_and_changes_nothing(client, user, body, field):
    task = create_task(client, user["headers"], tags=["a"])
    response = client.patch(f"{TASKS}/{task['id']}", json=body, headers=user["headers"])
    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    assert client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).get_json() == task


def test_if_match_current_etag_or_star_succeeds(client, user):
    task = create_task(client, user["headers"])
    etag = client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).headers["ETag"]
    response = client.patch(
        f"{TASKS}/{task['id']}", json={"title": "b"}, headers={**user["headers"], "If-Match": etag}
    )
    assert response.status_code == 200
    response = client.patch(
        f"{TASKS}/{task['id']}", json={"title": "c"}, headers={**user["headers"], "If-Match": "*"}
    )
    assert response.status_code == 200
    listed = f'"x", {response.headers["ETag"]}'
    response = client.patch(
        f"{TASKS}/{task['id']}", json={"title": "d"}, headers={**user["headers"], "If-Match": listed}
    )
    assert response.status_code == 200


@pytest.mark.parametrize("stale", ["old", "weak", '"nonsense"', "unquoted"])
def test_stale_or_weak_if_match_is_412_and_changes_nothing(client, user, stale):
    task = create_task(client, user["headers"])
    etag = client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).headers["ETag"]
    if stale == "old":
        client.patch(f"{TASKS}/{task['id']}", json={"title": "moved on"}, headers=user["headers"])
        header = etag
    elif stale == "weak":
        header = f"W/{etag}"
    elif stale == "unquoted":
        header = etag.strip('"')
    else:
        header = stale
    before = client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).get_json()
    response = client.patch(
        f"{TASKS}/{task['id']}",
        json={"title": "lost", "tags": ["x"]},
        headers={**user["headers"], "If-Match": header},
    )
    assert response.status_code == 412
    assert response.content_type == "application/problem+json"
    assert client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).get_json() == before
    assert client.get("/api/v1/tags", headers=user["headers"]).get_json()["items"] == []


def test_etag_changes_when_a_tag_is_renamed(client, user):
    task = create_task(client, user["headers"], tags=["old"])
    etag = client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).headers["ETag"]
    tag = client.get("/api/v1/tags", headers=user["headers"]).get_json()["items"][0]
    client.patch(f"/api/v1/tags/{tag['id']}", json={"name": "new"}, headers=user["headers"])
    assert client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).headers["ETag"] != etag


def test_delete(client, user):
    task = create_task(client, user["headers"], tags=["kept"])
    response = client.delete(f"{TASKS}/{task['id']}", headers=user["headers"])
    assert response.status_code == 204
    assert response.data == b""
    assert client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).status_code == 404
    assert client.delete(f"{TASKS}/{task['id']}", headers=user["headers"]).status_code == 404
    assert [t["name"] for t in client.get("/api/v1/tags", headers=user["headers"]).get_json()["items"]] == [
        "kept"
    ]


ITEM_ROUTES = [("get", None), ("patch", {"title": "mine now"}), ("delete", None)]


@pytest.mark.parametrize(("method", "body"), ITEM_ROUTES)
def test_another_users_task_is_404(client, user, other_user, method, body):
    task = create_task(client, other_user["headers"], title="theirs")
    response = getattr(client, method)(f"{TASKS}/{task['id']}", json=body, headers=user["headers"])
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert client.get(f"{TASKS}/{task['id']}", headers=other_user["headers"]).get_json() == task


@pytest.mark.parametrize(
    "task_id", ["0", "-1", "abc", "1.5", "1e3", str(2**63), "99999999999999999999", "9223372036854775807"]
)
@pytest.mark.parametrize(("method", "body"), ITEM_ROUTES)
def test_malformed_out_of_range_or_unknown_ids_are_404(client, user, method, body, task_id):
    response = getattr(client, method)(f"{TASKS}/{task_id}", json=body, headers=user["headers"])
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"


def test_other_users_list_is_separate(client, user, other_user):
    create_task(client, other_user["headers"], title="theirs")
    assert client.get(TASKS, headers=user["headers"]).get_json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", TASKS),
        ("post", TASKS),
        ("get", f"{TASKS}/1"),
        ("patch", f"{TASKS}/1"),
        ("delete", f"{TASKS}/1"),
    ],
)
def test_token_is_checked_before_the_body(client, method, path):
    response = getattr(client, method)(path, json={"title": ""}, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_two_patches_with_one_etag_one_wins(app, user):
    client = app.test_client()
    task = create_task(client, user["headers"])
    etag = client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).headers["ETag"]
    barrier = threading.Barrier(2)
    results = {}

    def patch(title):
        own_client = app.test_client()
        barrier.wait(timeout=10)
        response = own_client.patch(
            f"{TASKS}/{task['id']}", json={"title": title}, headers={**user["headers"], "If-Match": etag}
        )
        results[title] = response.status_code

    threads = [threading.Thread(target=patch, args=(title,)) for title in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results.values()) == [200, 412]
    winner = next(title for title, status in results.items() if status == 200)
    assert client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).get_json()["title"] == winner
