"""Recurring tasks: the definitions' CRUD, validation and ownership, over HTTP."""

import pytest

from conftest import bearer, login, register

BASE = "/api/v1/recurring-tasks"


def create(client, headers, **fields):
    body = {"title": "Standup", "rrule": "FREQ=DAILY", "dtstart": "2027-03-25T09:00:00", **fields}
    response = client.post(BASE, json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_answers_the_definition_with_location(client, user):
    response = client.post(
        BASE,
        json={
            "title": " Standup ",
            "rrule": "FREQ=WEEKLY;BYDAY=MO,WE",
            "dtstart": "2027-03-25T09:00:00",
            "timezone": "Europe/Berlin",
            "priority": "high",
            "tags": ["work", "Daily", "WORK"],
        },
        headers=user["headers"],
    )
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"].endswith(f"{BASE}/{body['id']}")
    assert body["title"] == "Standup"
    assert body["description"] == ""
    assert body["priority"] == "high"
    assert body["tags"] == ["Daily", "work"]
    assert body["rrule"] == "FREQ=WEEKLY;BYDAY=MO,WE"
    assert body["dtstart"] == "2027-03-25T09:00:00"
    assert body["timezone"] == "Europe/Berlin"
    assert body["next_occurrences"] == [
        "2027-03-29T07:00:00+00:00",
        "2027-03-31T07:00:00+00:00",
        "2027-04-05T07:00:00+00:00",
        "2027-04-07T07:00:00+00:00",
        "2027-04-12T07:00:00+00:00",
    ]
    assert client.get(response.headers["Location"], headers=user["headers"]).get_json() == body


def test_timezone_defaults_to_the_users(client):
    register(client, timezone="America/New_York")
    headers = bearer(login(client)["access_token"])
    body = create(client, headers)
    assert body["timezone"] == "America/New_York"
    assert body["next_occurrences"][0] == "2027-03-25T13:00:00+00:00"


def test_dtstart_with_an_offset_becomes_wall_clock_in_the_zone(client, user):
    body = create(client, user["headers"], dtstart="2027-03-25T08:00:00Z", timezone="Europe/Berlin")
    assert body["dtstart"] == "2027-03-25T09:00:00"
    body = create(client, user["headers"], dtstart="2027-03-25T09:00:00.123456", timezone="Asia/Tokyo")
    assert body["dtstart"] == "2027-03-25T09:00:00"


def test_list_get_patch_delete(client, user):
    first = create(client, user["headers"])
    second = create(client, user["headers"], title="Review", tags=["x"])
    listed = client.get(BASE, headers=user["headers"]).get_json()["items"]
    assert [item["id"] for item in listed] == [first["id"], second["id"]]
    response = client.patch(
        f"{BASE}/{second['id']}", json={"tags": [], "priority": None, "title": "R"}, headers=user["headers"]
    )
    assert response.status_code == 200
    patched = response.get_json()
    assert (patched["title"], patched["tags"], patched["priority"]) == ("R", [], None)
    assert patched["updated_at"] > second["updated_at"]
    assert patched["created_at"] == second["created_at"]
    assert client.delete(f"{BASE}/{second['id']}", headers=user["headers"]).status_code == 204
    assert client.get(f"{BASE}/{second['id']}", headers=user["headers"]).status_code == 404


@pytest.mark.parametrize(
    "rrule",
    [
        "FREQ=MINUTELY",
        "FREQ=SECONDLY",
        "RRULE:FREQ=DAILY",
        "FREQ=DAILY\nCOUNT=3",
        "DTSTART:20270101T090000\nRRULE:FREQ=DAILY",
        "FREQ=DAILY;EXDATE=20270101",
        "FREQ=DAILY COUNT=3",
        " FREQ=DAILY",
        "FREQ=DAILY;",
        "FREQ=DAILY;FREQ=WEEKLY",
        "COUNT=3",
        "FREQ=FORTNIGHTLY",
        "FREQ=DAILY;COUNT=0",
        "FREQ=DAILY;COUNT=-1",
        "FREQ=DAILY;INTERVAL=0",
        "FREQ=DAILY;INTERVAL=" + "9" * 5000,
        "FREQ=DAILY;UNTIL=20270101T000000",
        "FREQ=DAILY;UNTIL=tomorrow",
        "FREQ=DAILY;COUNT=3;UNTIL=20280101",
        "FREQ=MONTHLY;BYMONTHDAY=32",
        "FREQ=MONTHLY;BYMONTHDAY=0",
        "FREQ=YEARLY;BYMONTH=13",
        "FREQ=DAILY;BYHOUR=24",
        "FREQ=WEEKLY;BYDAY=XX",
        "FREQ=MONTHLY;BYDAY=0MO",
        "FREQ=YEARLY;BYEASTER=1",
        "FREQ=DAILY;WKST=XX",
        "FREQ=HOURLY;INTERVAL=2;BYHOUR=1,3",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=10",
        "",
        "ÄÖ",
    ],
)
def test_bad_rules_are_422_on_rrule(client, user, rrule):
    response = client.post(
        BASE, json={"title": "t", "rrule": rrule, "dtstart": "2027-03-25T10:00:00"}, headers=user["headers"]
    )
    assert response.status_code == 422, rrule
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "rrule" in response.get_json()["errors"]


def test_rule_text_is_answered_as_sent(client, user):
    assert create(client, user["headers"], rrule="freq=daily;byday=mo")["rrule"] == "freq=daily;byday=mo"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"description": "x" * 10001}, "description"),
        ({"priority": "highest"}, "priority"),
        ({"tags": [f"t{i}" for i in range(21)]}, "tags"),
        ({"tags": [""]}, "tags.0"),
        ({"dtstart": "tomorrow"}, "dtstart"),
        ({"dtstart": 5}, "dtstart"),
        ({"dtstart": "0001-01-01T00:00:00"}, "dtstart"),
        ({"dtstart": "9999-12-31T23:00:00"}, "dtstart"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"rrule": 7}, "rrule"),
        ({"next_occurrences": []}, "next_occurrences"),
        ({"id": 1}, "id"),
        ({"color": "red"}, "color"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(client, user, body, field):
    full = {"title": "t", "rrule": "FREQ=DAILY", "dtstart": "2027-03-25T10:00:00", **body}
    response = client.post(BASE, json=full, headers=user["headers"])
    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    created = create(client, user["headers"])
    response = client.patch(f"{BASE}/{created['id']}", json=body, headers=user["headers"])
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_required_fields(client, user):
    response = client.post(BASE, json={}, headers=user["headers"])
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"title", "rrule", "dtstart"}


def test_patch_rechecks_the_whole_schedule(client, user):
    created = create(client, user["headers"], rrule="FREQ=DAILY;UNTIL=20270401")
    response = client.patch(
        f"{BASE}/{created['id']}", json={"dtstart": "2027-05-01T09:00:00"}, headers=user["headers"]
    )
    assert response.status_code == 422
    assert "rrule" in response.get_json()["errors"]
    unchanged = client.get(f"{BASE}/{created['id']}", headers=user["headers"]).get_json()
    assert unchanged["dtstart"] == "2027-03-25T09:00:00"


def test_another_users_definition_is_404(client, user, other_user):
    theirs = create(client, other_user["headers"])
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(f"{BASE}/{theirs['id']}", json={}, headers=user["headers"])
        assert response.status_code == 404
    response = client.get(f"{BASE}/{theirs['id']}/instances", headers=user["headers"])
    assert response.status_code == 404
    assert client.get(BASE, headers=user["headers"]).get_json() == {"items": []}


@pytest.mark.parametrize("path", ["0", "-1", "abc", "1.5", str(2**63), "99999"])
def test_malformed_or_unknown_ids_are_404(client, user, path):
    assert client.get(f"{BASE}/{path}", headers=user["headers"]).status_code == 404
    assert client.get(f"{BASE}/{path}/instances", headers=user["headers"]).status_code == 404


def test_a_bad_token_is_401_before_the_body(client):
    response = client.post(BASE, json={"rrule": "nonsense"}, headers=bearer("nope"))
    assert response.status_code == 401
