"""GET /api/v1/sync: full and incremental sync, paging, tombstones, propagation, 410 and 422."""

import time

import pytest
from sqlalchemy import text

from app.extensions import db

from conftest import assert_problem

API = "/api/v1"
RULE = {"title": "standup", "rrule": "FREQ=DAILY", "dtstart": "2030-01-01T09:00:00", "timezone": "UTC"}
WINDOW = {"start": "2030-01-01T00:00:00Z", "end": "2030-01-04T00:00:00Z"}


def make(client, headers, path, body):
    response = client.post(f"{API}/{path}", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def get(client, headers, path, **query):
    response = client.get(f"{API}/{path}", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def sync(client, headers, since=None, **query):
    """One answer of /sync; every object in it at most once."""
    if since is not None:
        query["since"] = since
    body = get(client, headers, "sync", **query)
    assert set(body) == {"changes", "next_since", "has_more"}
    keys = [(change["type"], change["id"]) for change in body["changes"]]
    assert len(keys) == len(set(keys)), keys
    return body


def follow(client, headers, since=None, state=None, **query):
    """Sync until has_more is false, applying each change to `state` {(type, id): data}."""
    state = {} if state is None else state
    while True:
        body = sync(client, headers, since, **query)
        for change in body["changes"]:
            if change["deleted"]:
                assert set(change) <= {"type", "id", "deleted", "data"} and change.get("data") is None
                state.pop((change["type"], change["id"]), None)
            else:
                state[(change["type"], change["id"])] = change["data"]
        since = body["next_since"]
        if not body["has_more"]:
            return state, since


def changed(client, headers, since):
    """{(type, id): data or "deleted"} of everything after `since`."""
    found = {}
    while True:
        body = sync(client, headers, since)
        for change in body["changes"]:
            found[(change["type"], change["id"])] = "deleted" if change["deleted"] else change["data"]
        since = body["next_since"]
        if not body["has_more"]:
            return found, since


@pytest.fixture
def objects(client, user):
    """A tag, a task carrying it, a recurring task carrying it and three stored instances."""
    headers = user["headers"]
    tag = make(client, headers, "tags", {"name": "home", "color": "#112233"})
    task = make(client, headers, "tasks", {"title": "call mum", "tags": ["home"]})
    recurring = make(client, headers, "recurring-tasks", {**RULE, "tags": ["home"]})
    instances = get(client, headers, f"recurring-tasks/{recurring['id']}/instances", **WINDOW)["items"]
    return {"tag": tag, "task": task, "recurring": recurring, "instances": instances}


def test_a_full_sync_answers_every_live_object_as_its_own_get_does(client, user, objects):
    state, _ = follow(client, user["headers"])
    headers, recurring_id = user["headers"], objects["recurring"]["id"]
    expected = {
        ("tag", objects["tag"]["id"]): get(client, headers, f"tags/{objects['tag']['id']}"),
        ("task", objects["task"]["id"]): get(client, headers, f"tasks/{objects['task']['id']}"),
        ("recurring_task", recurring_id): get(client, headers, f"recurring-tasks/{recurring_id}"),
        **{("instance", item["id"]): item for item in objects["instances"]},
    }
    assert state == expected
    assert len(objects["instances"]) == 3


def test_an_incremental_sync_answers_only_what_changed(client, user, objects):
    headers = user["headers"]
    _, since = follow(client, headers)
    nothing = sync(client, headers, since)
    assert (nothing["changes"], nothing["has_more"]) == ([], False)
    new = make(client, headers, "tasks", {"title": "new"})
    response = client.patch(f"{API}/tasks/{objects['task']['id']}", json={"completed": True}, headers=headers)
    assert response.status_code == 200
    found, since = changed(client, headers, since)
    assert found == {
        ("task", new["id"]): get(client, headers, f"tasks/{new['id']}"),
        ("task", objects["task"]["id"]): response.get_json(),
    }
    assert changed(client, headers, since)[0] == {}


def test_a_deleted_task_is_a_tombstone(client, user, objects):
    headers, task_id = user["headers"], objects["task"]["id"]
    _, since = follow(client, headers)
    assert client.delete(f"{API}/tasks/{task_id}", headers=headers).status_code == 204
    body = sync(client, headers, since)
    assert body["changes"] == [{"type": "task", "id": task_id, "deleted": True, "data": None}]
    assert changed(client, headers, body["next_since"])[0] == {}
    # A full sync has no tombstones: only live objects.
    assert ("task", task_id) not in follow(client, headers)[0]


def test_paging_with_has_more_answers_every_object_once(client, user):
    headers = user["headers"]
    ids = {make(client, headers, "tasks", {"title": f"t{i}"})["id"] for i in range(7)}
    seen, since, answers = [], None, 0
    while True:
        body = sync(client, headers, since, limit=3)
        answers += 1
        assert len(body["changes"]) <= 3
        seen += [change["id"] for change in body["changes"]]
        since = body["next_since"]
        if not body["has_more"]:
            break
    assert sorted(seen) == sorted(ids)
    assert answers == 3


def test_a_page_boundary_inside_one_write_neither_skips_nor_repeats(client, user):
    # Renaming a tag stamps its 5 tasks with one stamp; pages of 2 cut through that group.
    headers = user["headers"]
    tag = make(client, headers, "tags", {"name": "work"})
    ids = {make(client, headers, "tasks", {"title": f"t{i}", "tags": ["work"]})["id"] for i in range(5)}
    _, since = follow(client, headers)
    assert client.patch(f"{API}/tags/{tag['id']}", json={"name": "job"}, headers=headers).status_code == 200
    seen = []
    while True:
        body = sync(client, headers, since, limit=2)
        seen += [(change["type"], change["id"]) for change in body["changes"]]
        since = body["next_since"]
        if not body["has_more"]:
            break
    assert sorted(seen) == sorted([("tag", tag["id"]), *[("task", i) for i in ids]])


def test_renaming_a_tag_changes_its_tasks_and_recurring_tasks(client, user, objects):
    headers = user["headers"]
    untagged = make(client, headers, "tasks", {"title": "no tags"})
    _, since = follow(client, headers)
    tag_id = objects["tag"]["id"]
    assert client.patch(f"{API}/tags/{tag_id}", json={"name": "house"}, headers=headers).status_code == 200
    found, since = changed(client, headers, since)
    assert set(found) == {
        ("tag", tag_id),
        ("task", objects["task"]["id"]),
        ("recurring_task", objects["recurring"]["id"]),
    }
    assert found[("task", objects["task"]["id"])]["tags"] == ["house"]
    assert found[("recurring_task", objects["recurring"]["id"])]["tags"] == ["house"]
    assert ("task", untagged["id"]) not in found
    # A new color does not change the tasks, which show tag names only.
    assert client.patch(f"{API}/tags/{tag_id}", json={"color": "#445566"}, headers=headers).status_code == 200
    assert set(changed(client, headers, since)[0]) == {("tag", tag_id)}


def test_deleting_a_tag_is_a_tombstone_and_changes_its_carriers(client, user, objects):
    headers, tag_id = user["headers"], objects["tag"]["id"]
    _, since = follow(client, headers)
    assert client.delete(f"{API}/tags/{tag_id}", headers=headers).status_code == 204
    found, _ = changed(client, headers, since)
    assert found[("tag", tag_id)] == "deleted"
    assert found[("task", objects["task"]["id"])]["tags"] == []
    assert found[("recurring_task", objects["recurring"]["id"])]["tags"] == []
    assert len(found) == 3


def test_tags_created_by_a_task_write_are_changes(client, user):
    headers = user["headers"]
    _, since = follow(client, headers)
    task = make(client, headers, "tasks", {"title": "t", "tags": ["new one"]})
    found, _ = changed(client, headers, since)
    tag_ids = [key[1] for key in found if key[0] == "tag"]
    assert [found[("tag", i)]["name"] for i in tag_ids] == ["new one"]
    assert ("task", task["id"]) in found


def test_deleting_a_recurring_task_leaves_a_tombstone_per_instance(client, user, objects):
    headers, recurring_id = user["headers"], objects["recurring"]["id"]
    _, since = follow(client, headers)
    assert client.delete(f"{API}/recurring-tasks/{recurring_id}", headers=headers).status_code == 204
    found, _ = changed(client, headers, since)
    assert found == {
        ("recurring_task", recurring_id): "deleted",
        **{("instance", item["id"]): "deleted" for item in objects["instances"]},
    }


def test_storing_completing_and_dropping_instances_are_changes(client, user):
    headers = user["headers"]
    recurring = make(client, headers, "recurring-tasks", RULE)
    path = f"recurring-tasks/{recurring['id']}/instances"
    _, since = follow(client, headers)
    stored = get(client, headers, path, **WINDOW)["items"]
    found, since = changed(client, headers, since)
    assert found == {("instance", item["id"]): item for item in stored}
    # Reading the same window again stores nothing and changes nothing.
    assert get(client, headers, path, **WINDOW)["items"] == stored
    assert changed(client, headers, since)[0] == {}

    done = client.patch(f"{API}/{path}/{stored[0]['id']}", json={"completed": True}, headers=headers)
    assert done.status_code == 200
    found, since = changed(client, headers, since)
    assert found == {("instance", stored[0]["id"]): done.get_json()}

    # A new rule drops the future instances not completed: a tombstone each.
    response = client.patch(
        f"{API}/recurring-tasks/{recurring['id']}", json={"rrule": "FREQ=WEEKLY"}, headers=headers
    )
    assert response.status_code == 200
    found, _ = changed(client, headers, since)
    assert found == {
        ("recurring_task", recurring["id"]): get(client, headers, f"recurring-tasks/{recurring['id']}"),
        **{("instance", item["id"]): "deleted" for item in stored[1:]},
    }


def test_another_users_changes_never_appear(client, user, other_user, objects):
    _, since = follow(client, other_user["headers"])
    assert follow(client, other_user["headers"])[0] == {}
    make(client, user["headers"], "tasks", {"title": "mine"})
    assert changed(client, other_user["headers"], since)[0] == {}


def test_a_token_older_than_the_retention_is_410(app, client, user, monkeypatch):
    _, since = follow(client, user["headers"])
    monkeypatch.setitem(app.config, "SYNC_RETENTION", 1)
    time.sleep(2.1)
    body = assert_problem(
        client.get(f"{API}/sync", query_string={"since": since}, headers=user["headers"]), 410
    )
    assert "full sync" in body["detail"]
    # A full sync always works, and hands out a fresh token.
    _, fresh = follow(client, user["headers"])
    assert sync(client, user["headers"], fresh)["changes"] == []


def test_a_token_from_before_pruned_tombstones_is_410(app, client, user):
    headers = user["headers"]
    task = make(client, headers, "tasks", {"title": "t"})
    _, before = follow(client, headers)
    assert client.delete(f"{API}/tasks/{task['id']}", headers=headers).status_code == 204
    _, after = follow(client, headers, before)
    with app.app_context():
        db.session.execute(text("UPDATE sync_tombstones SET deleted_at = now() - interval '31 days'"))
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["cleanup"])
    assert result.exit_code == 0, result.output
    assert "1 sync tombstones" in result.output
    assert_problem(client.get(f"{API}/sync", query_string={"since": before}, headers=headers), 410)
    # A token that had already seen the deletion needs nothing that was pruned.
    assert sync(client, headers, after)["changes"] == []


@pytest.mark.parametrize("since", ["garbage", "a" * 1001, "", "eyJ.bad.sig"])
def test_a_malformed_since_is_422_on_since(client, user, since):
    body = assert_problem(
        client.get(f"{API}/sync", query_string={"since": since}, headers=user["headers"]), 422
    )
    assert "since" in body["errors"]


def test_a_since_from_another_user_is_422_on_since(client, user, other_user):
    _, theirs = follow(client, other_user["headers"])
    response = client.get(f"{API}/sync", query_string={"since": theirs}, headers=user["headers"])
    assert "since" in assert_problem(response, 422)["errors"]


def test_a_task_cursor_is_not_a_sync_token(client, user):
    for i in range(3):
        make(client, user["headers"], "tasks", {"title": f"t{i}"})
    cursor = get(client, user["headers"], "tasks", limit=1)["next_cursor"]
    response = client.get(f"{API}/sync", query_string={"since": cursor}, headers=user["headers"])
    assert "since" in assert_problem(response, 422)["errors"]


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "many", "1.5"])
def test_limit_out_of_bounds_is_422_on_limit(client, user, limit):
    response = client.get(f"{API}/sync", query_string={"limit": limit}, headers=user["headers"])
    assert "limit" in assert_problem(response, 422)["errors"]


@pytest.mark.parametrize("limit", [1, 1000])
def test_limit_bounds_are_inclusive(client, user, limit):
    for i in range(2):
        make(client, user["headers"], "tasks", {"title": f"t{i}"})
    body = sync(client, user["headers"], limit=limit)
    assert len(body["changes"]) == min(limit, 2)
    assert body["has_more"] is (limit == 1)


def test_the_default_limit_is_500(app, client, user):
    with app.app_context():
        user_id = db.session.execute(text("SELECT id FROM users")).scalar_one()
        db.session.execute(
            text("INSERT INTO tasks (user_id, title) SELECT :u, 't' || i FROM generate_series(1, 501) i"),
            {"u": user_id},
        )
        db.session.commit()
    body = sync(client, user["headers"])
    assert len(body["changes"]) == 500 and body["has_more"] is True
    assert len(sync(client, user["headers"], body["next_since"])["changes"]) == 1


def test_unknown_query_parameters_and_no_token(client, user):
    response = client.get(f"{API}/sync", query_string={"after": "x"}, headers=user["headers"])
    assert "after" in assert_problem(response, 422)["errors"]
    assert_problem(client.get(f"{API}/sync"), 401)


def test_a_paged_full_sync_completes_after_tombstones_were_pruned(app, client, user):
    # Old objects keep stamps below the pruned mark; a full sync in pages must still get them all.
    headers = user["headers"]
    ids = [make(client, headers, "tasks", {"title": f"t{i}"})["id"] for i in range(3)]
    assert client.delete(f"{API}/tasks/{ids[0]}", headers=headers).status_code == 204
    with app.app_context():
        db.session.execute(text("UPDATE sync_tombstones SET deleted_at = now() - interval '31 days'"))
        db.session.commit()
    assert "1 sync tombstones" in app.test_cli_runner().invoke(args=["cleanup"]).output
    state, since = follow(client, headers, limit=1)
    assert set(state) == {("task", ids[1]), ("task", ids[2])}
    assert sync(client, headers, since)["changes"] == []
