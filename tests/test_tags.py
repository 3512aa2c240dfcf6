"""Tags: /api/v1/tags and /api/v1/tags/{id}."""

import threading

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Tag

TAGS = "/api/v1/tags"


def create_tag(client, headers, **body):
    response = client.post(TAGS, json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_answers_201_with_location_and_trimmed_name(client, user):
    response = client.post(TAGS, json={"name": "  Work ", "color": "#1a2B3c"}, headers=user["headers"])
    assert response.status_code == 201
    tag = response.get_json()
    assert set(tag) == {"id", "name", "color", "created_at"}
    assert tag["name"] == "Work"
    assert tag["color"] == "#1a2B3c"
    assert tag["created_at"].endswith(("Z", "+00:00"))
    assert response.headers["Location"].endswith(f"/api/v1/tags/{tag['id']}")
    assert client.get(response.headers["Location"], headers=user["headers"]).get_json() == tag


def test_color_is_optional_and_nullable(client, user):
    assert create_tag(client, user["headers"], name="a")["color"] is None
    assert create_tag(client, user["headers"], name="b", color=None)["color"] is None


def test_list_is_sorted_by_name_ignoring_case(client, user):
    for name in ["beta", "Alpha", "gamma", "Delta", "_x", "a-b", "ab"]:
        create_tag(client, user["headers"], name=name)
    response = client.get(TAGS, headers=user["headers"])
    assert response.status_code == 200
    names = [t["name"] for t in response.get_json()["items"]]
    assert names == sorted(names, key=str.lower)


def test_list_shows_only_the_callers_tags(client, user, other_user):
    create_tag(client, user["headers"], name="mine")
    create_tag(client, other_user["headers"], name="theirs")
    assert [t["name"] for t in client.get(TAGS, headers=user["headers"]).get_json()["items"]] == ["mine"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 51}, "name"),
        ({"name": None}, "name"),
        ({"name": 5}, "name"),
        ({"name": "a", "color": "red"}, "color"),
        ({"name": "a", "color": "#12345"}, "color"),
        ({"name": "a", "color": "#1234567"}, "color"),
        ({"name": "a", "color": "#12345g"}, "color"),
        ({"name": "a", "color": "#123456\n"}, "color"),
        ({"name": "a", "extra": 1}, "extra"),
    ],
)
def test_create_rejects_invalid_fields(client, user, body, field):
    response = client.post(TAGS, json=body, headers=user["headers"])
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert field in response.get_json()["errors"]


def test_name_of_fifty_characters_after_trimming_is_accepted(client, user):
    assert create_tag(client, user["headers"], name=" " + "x" * 50 + " ")["name"] == "x" * 50


def test_taken_name_ignoring_case_is_409(client, user):
    create_tag(client, user["headers"], name="Work")
    response = client.post(TAGS, json={"name": " WORK "}, headers=user["headers"])
    assert response.status_code == 409
    assert response.content_type == "application/problem+json"


def test_another_user_may_have_the_same_name(client, user, other_user):
    create_tag(client, user["headers"], name="Work")
    create_tag(client, other_user["headers"], name="work")


def test_patch_renames_and_recolors(client, user):
    tag = create_tag(client, user["headers"], name="old", color="#000000")
    response = client.patch(f"{TAGS}/{tag['id']}", json={"name": " new "}, headers=user["headers"])
    assert response.status_code == 200
    assert response.get_json() == {**tag, "name": "new"}
    response = client.patch(f"{TAGS}/{tag['id']}", json={"color": None}, headers=user["headers"])
    assert response.get_json() == {**tag, "name": "new", "color": None}


def test_patch_to_a_taken_name_is_409_and_changes_nothing(client, user):
    create_tag(client, user["headers"], name="home")
    tag = create_tag(client, user["headers"], name="work")
    response = client.patch(f"{TAGS}/{tag['id']}", json={"name": "Home"}, headers=user["headers"])
    assert response.status_code == 409
    assert client.get(f"{TAGS}/{tag['id']}", headers=user["headers"]).get_json()["name"] == "work"


def test_patch_to_its_own_name_in_another_case_is_allowed(client, user):
    tag = create_tag(client, user["headers"], name="work")
    response = client.patch(f"{TAGS}/{tag['id']}", json={"name": "Work"}, headers=user["headers"])
    assert response.status_code == 200
    assert response.get_json()["name"] == "Work"


@pytest.mark.parametrize(
    ("body", "field"), [({"name": ""}, "name"), ({"color": "#GGGGGG"}, "color"), ({"id": 3}, "id")]
)
def test_patch_rejects_invalid_fields(client, user, body, field):
    tag = create_tag(client, user["headers"], name="a")
    response = client.patch(f"{TAGS}/{tag['id']}", json=body, headers=user["headers"])
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_renamed_tag_shows_on_its_tasks(client, user):
    task = client.post(
        "/api/v1/tasks", json={"title": "t", "tags": ["old"]}, headers=user["headers"]
    ).get_json()
    tag = client.get(TAGS, headers=user["headers"]).get_json()["items"][0]
    client.patch(f"{TAGS}/{tag['id']}", json={"name": "new"}, headers=user["headers"])
    assert client.get(f"/api/v1/tasks/{task['id']}", headers=user["headers"]).get_json()["tags"] == ["new"]


def test_delete_removes_the_tag_from_its_tasks_which_stay(client, user):
    task = client.post(
        "/api/v1/tasks", json={"title": "t", "tags": ["a", "b"]}, headers=user["headers"]
    ).get_json()
    tag_a = next(t for t in client.get(TAGS, headers=user["headers"]).get_json()["items"] if t["name"] == "a")
    response = client.delete(f"{TAGS}/{tag_a['id']}", headers=user["headers"])
    assert response.status_code == 204
    assert response.data == b""
    assert client.get(f"{TAGS}/{tag_a['id']}", headers=user["headers"]).status_code == 404
    assert client.get(f"/api/v1/tasks/{task['id']}", headers=user["headers"]).get_json()["tags"] == ["b"]


@pytest.mark.parametrize(("method", "body"), [("get", None), ("patch", {"name": "x"}), ("delete", None)])
def test_another_users_tag_is_404(client, user, other_user, method, body):
    tag = create_tag(client, other_user["headers"], name="theirs")
    response = getattr(client, method)(f"{TAGS}/{tag['id']}", json=body, headers=user["headers"])
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert client.get(f"{TAGS}/{tag['id']}", headers=other_user["headers"]).get_json()["name"] == "theirs"


@pytest.mark.parametrize(
    "tag_id", ["0", "-1", "abc", "1.5", str(2**63), "99999999999999999999", "9223372036854775807"]
)
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_malformed_or_unknown_ids_are_404(client, user, method, tag_id):
    response = getattr(client, method)(f"{TAGS}/{tag_id}", json={"name": "x"}, headers=user["headers"])
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", TAGS), ("post", TAGS), ("get", f"{TAGS}/1"), ("patch", f"{TAGS}/1"), ("delete", f"{TAGS}/1")],
)
def test_token_is_checked_before_the_body(client, method, path):
    response = getattr(client, method)(path, json={"name": ""}, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_two_requests_racing_for_one_name_make_one_tag(app, user):
    barrier = threading.Barrier(2)
    statuses = []

    def create():
        client = app.test_client()
        barrier.wait(timeout=10)
        statuses.append(client.post(TAGS, json={"name": "Race"}, headers=user["headers"]).status_code)

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [201, 409]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Tag)) == 1
