"""Lines of the contract (shared API.md) not pinned by the per-resource tests, checked over HTTP.

Mostly cross-cutting rules asserted on every resource: the error table, token first, 404 for
another user's or a malformed id, UTC answers, Location headers, and the OpenAPI document.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest

from conftest import PASSWORD, assert_problem, bearer, login, register

API = "/api/v1"
UTC_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$")
BAD_TOKEN = {"Authorization": "Bearer garbage"}
RULE = {"title": "standup", "rrule": "FREQ=DAILY", "dtstart": "2027-03-25T09:00:00"}


def make(client, headers, path, body):
    response = client.post(f"{API}/{path}", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def resources(client, user):
    """One of each resource of `user`: {"tag", "task", "recurring", "instance"} ids."""
    tag = make(client, user["headers"], "tags", {"name": "home"})
    task = make(client, user["headers"], "tasks", {"title": "t", "tags": ["home"]})
    recurring = make(client, user["headers"], "recurring-tasks", {**RULE, "dtstart": "2020-01-01T09:00:00"})
    instances = client.get(
        f"{API}/recurring-tasks/{recurring['id']}/instances", headers=user["headers"]
    ).get_json()["items"]
    return {
        "tag": tag["id"],
        "task": task["id"],
        "recurring": recurring["id"],
        "instance": instances[0]["id"],
    }


def item_routes(ids):
    """(method, path, body) of every item route of tags, tasks, recurring tasks and instances."""
    tag, task, rec, inst = ids["tag"], ids["task"], ids["recurring"], ids["instance"]
    return [
        ("get", f"tags/{tag}", None),
        ("patch", f"tags/{tag}", {"name": "x"}),
        ("delete", f"tags/{tag}", None),
        ("get", f"tasks/{task}", None),
        ("patch", f"tasks/{task}", {"title": "x"}),
        ("delete", f"tasks/{task}", None),
        ("get", f"recurring-tasks/{rec}", None),
        ("patch", f"recurring-tasks/{rec}", {"title": "x"}),
        ("delete", f"recurring-tasks/{rec}", None),
        ("get", f"recurring-tasks/{rec}/instances", None),
        ("patch", f"recurring-tasks/{rec}/instances/{inst}", {"completed": True}),
    ]


# --- Conventions and the error table, on every resource ---


def test_another_users_resources_are_404_on_every_item_route(client, user, other_user, resources):
    for method, path, body in item_routes(resources):
        response = getattr(client, method)(f"{API}/{path}", json=body, headers=other_user["headers"])
        assert_problem(response, 404)
    # ...and nothing changed for the owner.
    for method, path, _ in item_routes(resources):
        if method == "get":
            assert client.get(f"{API}/{path}", headers=user["headers"]).status_code == 200


@pytest.mark.parametrize("bad_id", ["abc", "0", "-1", "1.5", str(2**63), str(2**64), "99999999"])
def test_malformed_or_out_of_range_ids_are_404_on_every_item_route(client, user, resources, bad_id):
    routes = item_routes({"tag": bad_id, "task": bad_id, "recurring": bad_id, "instance": bad_id})
    routes.append(
        ("patch", f"recurring-tasks/{resources['recurring']}/instances/{bad_id}", {"completed": True})
    )
    for method, path, body in routes:
        response = getattr(client, method)(f"{API}/{path}", json=body, headers=user["headers"])
        assert_problem(response, 404)


def test_instance_of_another_definition_is_404(client, user, resources):
    other = make(client, user["headers"], "recurring-tasks", RULE)
    path = f"{API}/recurring-tasks/{other['id']}/instances/{resources['instance']}"
    assert_problem(client.patch(path, json={"completed": True}, headers=user["headers"]), 404)


def test_token_first_on_every_protected_route(client, user, resources):
    """A bad token is 401 even with an invalid JSON body, a non-object, or unknown query parameters."""
    routes = [(m, p) for m, p, _ in item_routes(resources)] + [
        ("get", "tags"),
        ("post", "tags"),
        ("get", "tasks"),
        ("post", "tasks"),
        ("get", "recurring-tasks"),
        ("post", "recurring-tasks"),
        ("get", "priorities"),
        ("get", "auth/me"),
        ("patch", "auth/me"),
        ("delete", "auth/me"),
        ("post", "auth/logout"),
        ("get", "auth/sessions"),
        ("delete", "auth/sessions/00000000-0000-0000-0000-000000000000"),
        ("post", "auth/change-password"),
        ("post", "auth/refresh"),
        ("get", "sync"),
    ]
    for method, path in routes:
        for headers in ({}, BAD_TOKEN):
            call = getattr(client, method)
            response = call(
                f"{API}/{path}?bogus=1", data="{not json", content_type="application/json", headers=headers
            )
            assert_problem(response, 401)
            response = call(f"{API}/{path}", json=[1, 2], headers=headers)
            assert_problem(response, 401)


def test_token_first_even_before_the_content_type(client):
    response = client.post(f"{API}/tasks", data="title=x", content_type="text/plain", headers=BAD_TOKEN)
    assert_problem(response, 401)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "tags"),
        ("patch", "tags/{tag}"),
        ("post", "tasks"),
        ("patch", "tasks/{task}"),
        ("post", "recurring-tasks"),
        ("patch", "recurring-tasks/{recurring}"),
        ("patch", "recurring-tasks/{recurring}/instances/{instance}"),
        ("patch", "auth/me"),
        ("post", "auth/change-password"),
    ],
)
def test_body_errors_on_every_writing_route(client, user, resources, method, path):
    url = f"{API}/{path.format(**resources)}"
    call = getattr(client, method)
    assert_problem(call(url, data="{not json", content_type="application/json", headers=user["headers"]), 400)
    for payload in ("[1, 2]", "42", '"text"'):
        assert_problem(call(url, data=payload, content_type="application/json", headers=user["headers"]), 422)
    assert_problem(call(url, data='{"a": 1}', content_type="text/plain", headers=user["headers"]), 415)
    assert_problem(
        call(url, data="x=1", content_type="application/x-www-form-urlencoded", headers=user["headers"]), 415
    )
    big = '{"title": "' + "x" * (1024 * 1024) + '"}'
    assert_problem(call(url, data=big, content_type="application/json", headers=user["headers"]), 413)
    body = assert_problem(call(url, json={"surprise": 1}, headers=user["headers"]), 422)
    assert "surprise" in body["errors"]


@pytest.mark.parametrize(
    "path",
    [
        "tags",
        "tasks",
        "recurring-tasks",
        "recurring-tasks/{recurring}/instances",
        "priorities",
        "auth/sessions",
        "auth/me",
        "sync",
    ],
)
def test_unknown_query_parameters_are_422_on_every_list(client, user, resources, path):
    url = f"{API}/{path.format(**resources)}?colour=red"
    body = assert_problem(client.get(url, headers=user["headers"]), 422)
    assert "colour" in body["errors"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", "tasks/{task}", {"GET", "PATCH", "DELETE"}),
        ("delete", "tasks", {"GET", "POST"}),
        ("put", "tags/{tag}", {"GET", "PATCH", "DELETE"}),
        ("patch", "tags", {"GET", "POST"}),
        ("post", "recurring-tasks/{recurring}", {"GET", "PATCH", "DELETE"}),
        ("post", "recurring-tasks/{recurring}/instances", {"GET"}),
        ("get", "recurring-tasks/{recurring}/instances/{instance}", {"PATCH"}),
        ("post", "priorities", {"GET"}),
        ("get", "auth/login", {"POST"}),
        ("post", "auth/me", {"GET", "PATCH", "DELETE"}),
        ("post", "/health", {"GET"}),
        ("post", "sync", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow_everywhere(client, user, resources, method, path, allowed):
    url = path if path.startswith("/") else f"{API}/{path.format(**resources)}"
    response = getattr(client, method)(url, json={}, headers=user["headers"])
    assert_problem(response, 405)
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v1/tasks/1/nothing", "/nothing", "/api/v2/tasks"])
def test_unknown_routes_are_404_problems(client, user, path):
    assert_problem(client.get(path, headers=user["headers"]), 404)
    assert_problem(client.post(path, data="x", content_type="text/plain", headers=user["headers"]), 404)


def test_request_id_echo_rules_on_errors_and_on_success(client, user):
    rid = "A-z.0_9" * 18 + "ab"  # 128 characters
    assert (
        client.get(f"{API}/tasks", headers={**user["headers"], "X-Request-ID": rid}).headers["X-Request-ID"]
        == rid
    )
    assert client.get("/nowhere", headers={"X-Request-ID": "abc"}).headers["X-Request-ID"] == "abc"
    fresh = client.get("/nowhere", headers={"X-Request-ID": "a/b"}).headers["X-Request-ID"]
    assert fresh and fresh != "a/b"
    assert client.get("/nowhere").headers["X-Request-ID"] != client.get("/nowhere").headers["X-Request-ID"]


def test_every_timestamp_is_answered_in_utc(client):
    register(client, timezone="Asia/Tokyo")
    headers = bearer(login(client)["access_token"])
    bodies = [
        client.get(f"{API}/auth/me", headers=headers).get_json(),
        client.get(f"{API}/auth/sessions", headers=headers).get_json()["items"][0],
        make(client, headers, "tags", {"name": "x"}),
        make(
            client, headers, "tasks", {"title": "t", "completed": True, "due_at": "2027-01-01T09:00:00+09:00"}
        ),
    ]
    recurring = make(client, headers, "recurring-tasks", RULE)
    bodies.append({k: v for k, v in recurring.items() if k != "dtstart"})
    url = f"{API}/recurring-tasks/{recurring['id']}/instances"
    window = "start=2027-03-25T00:00:00Z&end=2027-03-26T00:00:00Z"
    instance = client.get(f"{url}?{window}", headers=headers).get_json()["items"][0]
    done = client.patch(f"{url}/{instance['id']}", json={"completed": True}, headers=headers).get_json()
    bodies.append(done)
    for body in bodies:
        for name, value in body.items():
            if name.endswith("_at") and value is not None:
                assert UTC_STAMP.match(value), (name, value)
    assert recurring["next_occurrences"] and all(UTC_STAMP.match(v) for v in recurring["next_occurrences"])
    assert bodies[3]["due_at"].startswith("2027-01-01T00:00:00")


def test_naive_due_at_and_window_follow_a_changed_timezone(client, user):
    client.patch(f"{API}/auth/me", json={"timezone": "America/New_York"}, headers=user["headers"])
    task = make(client, user["headers"], "tasks", {"title": "t", "due_at": "2027-07-01T09:00:00"})
    assert task["due_at"] in ("2027-07-01T13:00:00Z", "2027-07-01T13:00:00+00:00")
    listed = client.get(
        f"{API}/tasks?due_after=2027-07-01T09:00:00&due_before=2027-07-01T09:00:01", headers=user["headers"]
    )
    assert [t["id"] for t in listed.get_json()["items"]] == [task["id"]]
    listed = client.get(f"{API}/tasks?due_before=2027-07-01T09:00:00", headers=user["headers"])
    assert listed.get_json()["items"] == []


# --- Locations and list shapes ---


def test_every_201_has_a_location_that_answers_the_resource(client, user):
    for path, body in (("tags", {"name": "x"}), ("tasks", {"title": "t"}), ("recurring-tasks", RULE)):
        response = client.post(f"{API}/{path}", json=body, headers=user["headers"])
        assert response.status_code == 201
        location = response.headers["Location"]
        assert location.endswith(f"{API}/{path}/{response.get_json()['id']}")
        again = client.get(location, headers=user["headers"])
        assert again.status_code == 200
        assert again.get_json()["id"] == response.get_json()["id"]


def test_lists_are_items_and_only_the_task_list_is_paged(client, user, resources):
    for path in (
        "tags",
        "recurring-tasks",
        f"recurring-tasks/{resources['recurring']}/instances",
        "priorities",
        "auth/sessions",
    ):
        body = client.get(f"{API}/{path}", headers=user["headers"]).get_json()
        assert set(body) == {"items"}, path
    assert set(client.get(f"{API}/tasks", headers=user["headers"]).get_json()) == {"items", "next_cursor"}


# --- Auth ---


def test_user_object_has_exactly_the_contract_fields(client, user):
    fields = {"id", "email", "first_name", "last_name", "timezone", "created_at"}
    assert set(client.get(f"{API}/auth/me", headers=user["headers"]).get_json()) == fields
    patched = client.patch(f"{API}/auth/me", json={"first_name": "Ada"}, headers=user["headers"]).get_json()
    assert set(patched) == fields
    assert (patched["first_name"], patched["last_name"], patched["timezone"]) == ("Ada", "", "UTC")


def test_register_normalizes_the_email_and_login_matches_it_the_same_way(client):
    created = register(client, email="  Mixed.Case@Example.COM ")
    assert created["email"] == "mixed.case@example.com"
    assert (
        client.post(
            f"{API}/auth/login", json={"email": " MIXED.case@example.com", "password": PASSWORD}
        ).status_code
        == 200
    )
    response = client.post(
        f"{API}/auth/register", json={"email": "MIXED.CASE@example.com", "password": PASSWORD}
    )
    assert_problem(response, 409)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "a@" + "b" * 250 + ".com", "password": PASSWORD}, "email"),
        ({"email": "no-at-sign", "password": PASSWORD}, "email"),
        ({"email": "a@example.com", "password": "x" * 7}, "password"),
        ({"email": "a@example.com", "password": "x" * 129}, "password"),
        ({"email": "a@example.com", "password": PASSWORD, "first_name": "x" * 101}, "first_name"),
        ({"email": "a@example.com", "password": PASSWORD, "timezone": "Mars/Olympus"}, "timezone"),
        ({"password": PASSWORD}, "email"),
    ],
)
def test_register_limits(client, body, field):
    body_ = assert_problem(client.post(f"{API}/auth/register", json=body), 422)
    assert field in body_["errors"]


def test_register_limits_are_inclusive(client):
    register(client, email="a@example.com", password="x" * 8, first_name="f" * 100, last_name="l" * 100)
    register(client, email="b@example.com", password="x" * 128)


def test_login_answers_the_same_401_for_unknown_email_and_wrong_password(client, user):
    unknown = client.post(f"{API}/auth/login", json={"email": "nobody@example.com", "password": PASSWORD})
    wrong = client.post(f"{API}/auth/login", json={"email": user["email"], "password": "wrong password"})
    assert_problem(unknown, 401)
    assert unknown.get_json() == wrong.get_json()
    tokens = user["tokens"]
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}


def test_refresh_answers_the_login_shape_and_a_spent_token_revokes_the_session(client, user):
    first = client.post(f"{API}/auth/refresh", headers=bearer(user["tokens"]["refresh_token"]))
    assert first.status_code == 200
    pair = first.get_json()
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert pair["token_type"] == "Bearer"
    assert client.get(f"{API}/auth/me", headers=bearer(pair["access_token"])).status_code == 200
    assert_problem(client.post(f"{API}/auth/refresh", headers=bearer(user["tokens"]["refresh_token"])), 401)
    # The reuse ended the whole session: the new pair and the original access token too.
    assert_problem(client.get(f"{API}/auth/me", headers=bearer(pair["access_token"])), 401)
    assert_problem(client.post(f"{API}/auth/refresh", headers=bearer(pair["refresh_token"])), 401)
    assert_problem(client.get(f"{API}/auth/me", headers=user["headers"]), 401)


def test_logout_is_204_and_revokes_both_tokens(client, user):
    response = client.post(f"{API}/auth/logout", headers=user["headers"])
    assert response.status_code == 204 and response.data == b""
    assert "Content-Type" not in response.headers
    assert_problem(client.get(f"{API}/auth/me", headers=user["headers"]), 401)
    assert_problem(client.post(f"{API}/auth/refresh", headers=bearer(user["tokens"]["refresh_token"])), 401)


def test_sessions_are_newest_first_and_revoked_ones_leave_the_list(client, user):
    second = login(client)
    third = login(client)
    items = client.get(f"{API}/auth/sessions", headers=bearer(second["access_token"])).get_json()["items"]
    assert len(items) == 3
    assert [item["current"] for item in items] == [False, True, False]
    stamps = [item["created_at"] for item in items]
    assert stamps == sorted(stamps, reverse=True)
    assert client.post(f"{API}/auth/logout", headers=bearer(third["access_token"])).status_code == 204
    left = client.get(f"{API}/auth/sessions", headers=user["headers"]).get_json()["items"]
    assert len(left) == 2
    assert_problem(client.delete(f"{API}/auth/sessions/{items[0]['id']}", headers=user["headers"]), 404)


def test_delete_me_then_the_email_can_register_again(client, user):
    response = client.delete(f"{API}/auth/me", json={"password": PASSWORD}, headers=user["headers"])
    assert response.status_code == 204
    assert_problem(client.post(f"{API}/auth/refresh", headers=bearer(user["tokens"]["refresh_token"])), 401)
    assert_problem(client.post(f"{API}/auth/login", json={"email": user["email"], "password": PASSWORD}), 401)
    register(client)


def test_password_reset_is_202_for_unknown_and_known_emails(client, user):
    for email in ("nobody@example.com", user["email"]):
        assert client.post(f"{API}/auth/password-reset", json={"email": email}).status_code == 202


def test_password_reset_confirm_400_is_a_problem(client):
    response = client.post(
        f"{API}/auth/password-reset/confirm", json={"token": "x" * 43, "new_password": PASSWORD}
    )
    assert_problem(response, 400)


def test_wrong_passwords_are_400_problems(client, user):
    assert_problem(
        client.delete(f"{API}/auth/me", json={"password": "wrong password"}, headers=user["headers"]), 400
    )
    body = {"current_password": "wrong password", "new_password": "another password"}
    assert_problem(client.post(f"{API}/auth/change-password", json=body, headers=user["headers"]), 400)


# --- Priorities and tags ---


def test_priorities_exactly(client, user):
    assert client.get(f"{API}/priorities", headers=user["headers"]).get_json() == {
        "items": [
            {"name": "low", "label": "Low", "level": 1},
            {"name": "medium", "label": "Medium", "level": 2},
            {"name": "high", "label": "High", "level": 3},
            {"name": "urgent", "label": "Urgent", "level": 4},
        ]
    }


def test_tag_object_fields_and_color_forms(client, user):
    tag = make(client, user["headers"], "tags", {"name": "x", "color": "#a1B2c3"})
    assert set(tag) == {"id", "name", "color", "created_at"}
    assert tag["color"].lower() == "#a1b2c3"
    for color in ("#abc", "red", "a1b2c3", "#a1b2c3 ", "#GGGGGG", "#a1b2c3d", 123):
        body = assert_problem(
            client.patch(f"{API}/tags/{tag['id']}", json={"color": color}, headers=user["headers"]), 422
        )
        assert "color" in body["errors"]
    patched = client.patch(f"{API}/tags/{tag['id']}", json={"color": None}, headers=user["headers"])
    assert patched.get_json()["color"] is None


def test_tag_names_sort_ignoring_case_on_a_task(client, user):
    task = make(
        client, user["headers"], "tasks", {"title": "t", "tags": ["beta", "Alpha", "gamma", "ALPHA", "Beta"]}
    )
    assert task["tags"] == ["Alpha", "beta", "gamma"]
    listed = client.get(f"{API}/tags", headers=user["headers"]).get_json()["items"]
    assert [tag["name"] for tag in listed] == ["Alpha", "beta", "gamma"]
    again = client.get(f"{API}/tasks?tag=ALPHA&tag=Gamma", headers=user["headers"]).get_json()["items"]
    assert [t["id"] for t in again] == [task["id"]]


# --- Tasks ---


def test_bad_fourth_tag_is_named_by_a_dotted_path(client, user):
    body = {"title": "t", "tags": ["a", "b", "c", "   "]}
    errors = assert_problem(client.post(f"{API}/tasks", json=body, headers=user["headers"]), 422)["errors"]
    assert "tags.3" in errors
    errors = assert_problem(
        client.post(f"{API}/tasks", json={"title": "t", "tags": ["a", 5]}, headers=user["headers"]), 422
    )["errors"]
    assert "tags.1" in errors


def test_twenty_tags_after_dedupe_are_allowed_and_twenty_one_are_not(client, user):
    names = [f"t{i}" for i in range(20)]
    task = make(client, user["headers"], "tasks", {"title": "t", "tags": [*names, "T0"]})
    assert len(task["tags"]) == 20
    body = {"title": "t", "tags": [*names, "t20"]}
    assert (
        "tags"
        in assert_problem(client.post(f"{API}/tasks", json=body, headers=user["headers"]), 422)["errors"]
    )


def test_task_defaults_and_null_description_is_rejected(client, user):
    task = make(client, user["headers"], "tasks", {"title": " x "})
    assert task["title"] == "x" and task["description"] == "" and task["tags"] == []
    assert task["completed"] is False and task["completed_at"] is None
    assert task["due_at"] is None and task["priority"] is None


def test_completed_on_create_stamps_completed_at(client, user):
    task = make(client, user["headers"], "tasks", {"title": "x", "completed": True})
    assert task["completed"] is True and task["completed_at"] is not None


def test_patch_answers_the_new_etag_which_get_agrees_with(client, user):
    task = make(client, user["headers"], "tasks", {"title": "x"})
    patched = client.patch(f"{API}/tasks/{task['id']}", json={"priority": "high"}, headers=user["headers"])
    got = client.get(f"{API}/tasks/{task['id']}", headers=user["headers"])
    assert patched.headers["ETag"] == got.headers["ETag"]
    assert not patched.headers["ETag"].startswith("W/")
    stale = client.patch(
        f"{API}/tasks/{task['id']}", json={"title": "y"}, headers={**user["headers"], "If-Match": '"x"'}
    )
    assert_problem(stale, 412)


def test_idempotent_replay_across_users_and_after_delete(client, user):
    headers = {**user["headers"], "Idempotency-Key": "k1"}
    first = client.post(f"{API}/tasks", json={"title": "x", "tags": ["a"]}, headers=headers)
    again = client.post(f"{API}/tasks", json={"tags": ["a"], "title": "x"}, headers=headers)
    assert again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert len(client.get(f"{API}/tasks", headers=user["headers"]).get_json()["items"]) == 1


@pytest.mark.parametrize(
    "query",
    [
        "completed=maybe",
        "priority=none",
        "priority=",
        "tag=",
        "due_after=yesterday",
        "due_before=2027-13-01T00:00:00",
        "overdue=sometimes",
        "q=",
        "sort=title",
        "sort=-title",
        "limit=0",
        "limit=101",
        "limit=ten",
        "cursor=nonsense",
    ],
)
def test_bad_task_list_parameters_are_422_naming_them(client, user, query):
    body = assert_problem(client.get(f"{API}/tasks?{query}", headers=user["headers"]), 422)
    name = query.split("=")[0]
    assert any(field == name or field.startswith(f"{name}.") for field in body["errors"])


def test_sort_by_priority_puts_nulls_last_both_ways_and_ties_by_id(client, user):
    ids = {}
    for name, priority in (("n1", None), ("low", "low"), ("u1", "urgent"), ("u2", "urgent"), ("n2", None)):
        ids[name] = make(client, user["headers"], "tasks", {"title": name, "priority": priority})["id"]
    up = [
        t["title"]
        for t in client.get(f"{API}/tasks?sort=priority", headers=user["headers"]).get_json()["items"]
    ]
    down = [
        t["title"]
        for t in client.get(f"{API}/tasks?sort=-priority", headers=user["headers"]).get_json()["items"]
    ]
    assert up == ["low", "u1", "u2", "n1", "n2"]
    assert down == ["u2", "u1", "low", "n2", "n1"]


def test_sort_by_due_at_puts_nulls_last_both_ways(client, user):
    for name, due in (("none", None), ("late", "2027-02-01T00:00:00Z"), ("early", "2027-01-01T00:00:00Z")):
        make(client, user["headers"], "tasks", {"title": name, "due_at": due})
    up = [
        t["title"]
        for t in client.get(f"{API}/tasks?sort=due_at", headers=user["headers"]).get_json()["items"]
    ]
    down = [
        t["title"]
        for t in client.get(f"{API}/tasks?sort=-due_at", headers=user["headers"]).get_json()["items"]
    ]
    assert up == ["early", "late", "none"]
    assert down == ["late", "early", "none"]


def test_overdue_false_includes_tasks_without_due_and_completed_ones(client, user):
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    overdue = make(client, user["headers"], "tasks", {"title": "o", "due_at": past})
    done = make(client, user["headers"], "tasks", {"title": "d", "due_at": past, "completed": True})
    none = make(client, user["headers"], "tasks", {"title": "n"})
    got = client.get(f"{API}/tasks?overdue=true", headers=user["headers"]).get_json()["items"]
    assert [t["id"] for t in got] == [overdue["id"]]
    got = client.get(f"{API}/tasks?overdue=false", headers=user["headers"]).get_json()["items"]
    assert {t["id"] for t in got} == {done["id"], none["id"]}


# --- Recurring tasks ---


def test_recurring_task_shape_and_defaults(client, user):
    created = make(client, user["headers"], "recurring-tasks", RULE)
    assert set(created) == {
        "id", "title", "description", "priority", "tags", "rrule", "dtstart", "timezone",
        "created_at", "updated_at", "next_occurrences",
    }  # fmt: skip
    assert created["description"] == "" and created["priority"] is None and created["tags"] == []
    assert created["timezone"] == "UTC" and created["dtstart"] == "2027-03-25T09:00:00"
    assert len(created["next_occurrences"]) == 5
    listed = client.get(f"{API}/recurring-tasks", headers=user["headers"]).get_json()["items"]
    assert listed[0]["next_occurrences"] == created["next_occurrences"]


def test_recurring_tags_are_sorted_and_null_priority_clears(client, user):
    created = make(
        client, user["headers"], "recurring-tasks", {**RULE, "tags": ["b", "A", "a"], "priority": "high"}
    )
    assert created["tags"] == ["A", "b"] and created["priority"] == "high"
    patched = client.patch(
        f"{API}/recurring-tasks/{created['id']}", json={"priority": None}, headers=user["headers"]
    )
    assert patched.status_code == 200 and patched.get_json()["priority"] is None


def test_instance_shape_and_patch(client, user):
    rec = make(client, user["headers"], "recurring-tasks", RULE)
    url = f"{API}/recurring-tasks/{rec['id']}/instances"
    items = client.get(
        f"{url}?start=2027-03-25T00:00:00Z&end=2027-03-28T00:00:00Z", headers=user["headers"]
    ).get_json()["items"]
    assert [i["occurs_at"][:19] for i in items] == [
        "2027-03-25T09:00:00",
        "2027-03-26T09:00:00",
        "2027-03-27T09:00:00",
    ]
    assert set(items[0]) == {
        "id",
        "recurring_task_id",
        "occurs_at",
        "original_occurs_at",
        "skipped",
        "completed",
        "completed_at",
    }
    assert items[0]["recurring_task_id"] == rec["id"] and items[0]["completed_at"] is None
    done = client.patch(f"{url}/{items[0]['id']}", json={"completed": True}, headers=user["headers"])
    assert done.status_code == 200 and done.get_json()["completed"] is True
    # Every field is optional: an empty body changes nothing.
    unchanged = client.patch(f"{url}/{items[0]['id']}", json={}, headers=user["headers"])
    assert unchanged.status_code == 200 and unchanged.get_json() == done.get_json()
    bad = client.patch(f"{url}/{items[0]['id']}", json={"completed": 1}, headers=user["headers"])
    assert "completed" in assert_problem(bad, 422)["errors"]


def test_instance_window_end_before_start_is_422(client, user):
    rec = make(client, user["headers"], "recurring-tasks", RULE)
    url = f"{API}/recurring-tasks/{rec['id']}/instances"
    assert_problem(
        client.get(f"{url}?start=2027-03-25T00:00:00Z&end=2027-03-24T00:00:00Z", headers=user["headers"]), 422
    )
    # Only `end`, before the default start (now).
    assert_problem(client.get(f"{url}?end=2000-01-01T00:00:00Z", headers=user["headers"]), 422)


# --- Health and documentation ---


def test_health_is_a_plain_json_status_document(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_openapi_lists_every_route_of_the_contract_with_schemas(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    paths = {re.sub(r"\{[^}]+\}", "{}", path): ops for path, ops in spec["paths"].items()}
    expected = {
        "/health": {"get"},
        "/api/v1/auth/register": {"post"},
        "/api/v1/auth/login": {"post"},
        "/api/v1/auth/refresh": {"post"},
        "/api/v1/auth/logout": {"post"},
        "/api/v1/auth/sessions": {"get"},
        "/api/v1/auth/sessions/{}": {"delete"},
        "/api/v1/auth/me": {"get", "patch", "delete"},
        "/api/v1/auth/change-password": {"post"},
        "/api/v1/auth/password-reset": {"post"},
        "/api/v1/auth/password-reset/confirm": {"post"},
        "/api/v1/priorities": {"get"},
        "/api/v1/tags": {"get", "post"},
        "/api/v1/tags/{}": {"get", "patch", "delete"},
        "/api/v1/tasks": {"get", "post"},
        "/api/v1/tasks/{}": {"get", "patch", "delete"},
        "/api/v1/recurring-tasks": {"get", "post"},
        "/api/v1/recurring-tasks/{}": {"get", "patch", "delete"},
        "/api/v1/recurring-tasks/{}/instances": {"get"},
        "/api/v1/recurring-tasks/{}/instances/{}": {"patch"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), path
        for method in methods:
            operation = paths[path][method]
            assert operation.get("summary"), (path, method)
            if method in ("post", "patch") and path not in ("/api/v1/auth/refresh", "/api/v1/auth/logout"):
                assert "application/json" in operation["requestBody"]["content"], (path, method)
            success = [code for code in operation["responses"] if code.startswith("2")]
            assert success, (path, method)
            for code in success:
                if code != "204" and not path.endswith("password-reset"):
                    assert operation["responses"][code].get("content"), (path, method, code)


def test_docs_is_an_html_page(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, "1"])
def test_a_boolean_field_takes_only_json_booleans(client, user, value):
    body = assert_problem(
        client.post(f"{API}/tasks", json={"title": "t", "completed": value}, headers=user["headers"]), 422
    )
    assert "completed" in body["errors"]
    rec = make(client, user["headers"], "recurring-tasks", {**RULE, "dtstart": "2020-01-01T09:00:00"})
    url = f"{API}/recurring-tasks/{rec['id']}/instances"
    instance = client.get(url, headers=user["headers"]).get_json()["items"][0]
    response = client.patch(f"{url}/{instance['id']}", json={"completed": value}, headers=user["headers"])
    assert "completed" in assert_problem(response, 422)["errors"]


@pytest.mark.parametrize("query", ["completed=1", "completed=yes", "overdue=0", "overdue=on"])
def test_boolean_query_parameters_are_true_or_false(client, user, query):
    assert_problem(client.get(f"{API}/tasks?{query}", headers=user["headers"]), 422)
    for value in ("true", "false", "True", "FALSE"):
        name = query.split("=")[0]
        assert client.get(f"{API}/tasks?{name}={value}", headers=user["headers"]).status_code == 200


def test_an_address_at_a_reserved_test_domain_is_syntactically_valid(client):
    assert register(client, email="someone@example.test")["email"] == "someone@example.test"


@pytest.mark.parametrize(
    "data",
    [b"[" * 100_000 + b"]" * 100_000, b'{"title": "x", "priority": ' + b"9" * 5000 + b"}", b"\xff\xfe{}"],
)
def test_json_the_server_cannot_read_is_400_not_500(client, user, data):
    assert_problem(
        client.post(f"{API}/tasks", data=data, content_type="application/json", headers=user["headers"]), 400
    )


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("tasks", {"title": "a\u0000b"}, "title"),
        ("tasks", {"title": "x", "description": "\ud800"}, "description"),
        ("tasks", {"title": "x", "tags": ["ok", "a\u0000"]}, "tags.1"),
        ("tags", {"name": "a\u0000b"}, "name"),
        ("recurring-tasks", {**RULE, "title": "a\u0000"}, "title"),
        (
            "auth/change-password",
            {"current_password": PASSWORD, "new_password": "x\u0000" * 8},
            "new_password",
        ),
    ],
)
def test_strings_postgresql_cannot_store_are_422(client, user, path, body, field):
    response = client.post(f"{API}/{path}", json=body, headers=user["headers"])
    assert field in assert_problem(response, 422)["errors"]


def test_nul_in_a_query_or_a_header_is_422(client, user):
    for query in ("q=a%00b", "tag=a%00", "cursor=%00"):
        assert_problem(client.get(f"{API}/tasks?{query}", headers=user["headers"]), 422)
    headers = {**user["headers"], "Idempotency-Key": "a\u0000"}
    assert_problem(client.post(f"{API}/tasks", json={"title": "x"}, headers=headers), 422)
    response = client.post(
        f"{API}/auth/register", json={"email": "a\u0000@example.com", "password": PASSWORD}
    )
    assert "email" in assert_problem(response, 422)["errors"]


def test_a_deep_but_parsable_body_is_not_a_500(client, user):
    for depth in (800, 900, 950, 980):
        data = b'{"title": "x", "tags": ' + b"[" * depth + b"]" * depth + b"}"
        headers = user["headers"]
        response = client.post(f"{API}/tasks", data=data, content_type="application/json", headers=headers)
        assert response.status_code in (400, 422)
        assert_problem(response, response.status_code)
