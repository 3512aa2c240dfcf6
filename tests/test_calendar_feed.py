"""The calendar feed: its secret URL, what the .ics holds, ETag and 304, and what never leaks."""

import hashlib
import logging
import re
import uuid
from datetime import date

import icalendar
import pytest
from sqlalchemy import text
from test_recurring_instances import BASE, create, items

from app import create_app
from app.extensions import db
from config import TestConfig

from conftest import assert_problem

FEED = "/api/v1/calendar-feed"
SECRET_URL = re.compile(r"http://localhost/calendar/([A-Za-z0-9_-]{43,})\.ics")


def new_feed(client, headers) -> str:
    """POST a feed; the path of its URL."""
    response = client.post(FEED, headers=headers)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert set(body) == {"url", "created_at"}
    assert SECRET_URL.fullmatch(body["url"]), body["url"]
    return body["url"].removeprefix("http://localhost")


def fetch(client, path, **headers):
    return client.get(path, headers=headers)


def calendar(client, path) -> icalendar.Calendar:
    response = fetch(client, path)
    assert response.status_code == 200, response.get_data(as_text=True)
    return icalendar.Calendar.from_ical(response.data)


def events(cal, uid_prefix=""):
    return [e for e in cal.walk("VEVENT") if str(e["UID"]).startswith(uid_prefix)]


def test_post_gives_a_secret_url_that_serves_the_calendar_without_a_token(client, user):
    path = new_feed(client, user["headers"])
    response = fetch(client, path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Cache-Control"] == "private"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["ETag"]
    body = response.get_data(as_text=True)
    assert body.startswith("BEGIN:VCALENDAR\r\n") and body.endswith("END:VCALENDAR\r\n")
    cal = icalendar.Calendar.from_ical(response.data)
    assert (str(cal["VERSION"]), str(cal["X-WR-CALNAME"])) == ("2.0", "Tasks")
    assert str(cal["PRODID"])


def test_get_answers_created_at_only_and_404_without_a_feed(client, user):
    assert_problem(client.get(FEED, headers=user["headers"]), 404)
    created = client.post(FEED, headers=user["headers"]).get_json()
    response = client.get(FEED, headers=user["headers"])
    assert response.status_code == 200
    assert response.get_json() == {"created_at": created["created_at"]}


def test_a_new_post_replaces_the_url_and_delete_revokes_it(client, user):
    old = new_feed(client, user["headers"])
    new = new_feed(client, user["headers"])
    assert old != new
    assert_problem(fetch(client, old), 404)
    assert fetch(client, new).status_code == 200
    response = client.delete(FEED, headers=user["headers"])
    assert response.status_code == 204 and response.data == b""
    assert_problem(fetch(client, new), 404)
    assert_problem(client.get(FEED, headers=user["headers"]), 404)
    assert client.delete(FEED, headers=user["headers"]).status_code == 204


def test_only_the_secrets_hash_is_stored(client, user, app):
    path = new_feed(client, user["headers"])
    secret = SECRET_URL.fullmatch("http://localhost" + path)[1]
    with app.app_context():
        rows = db.session.execute(text("SELECT * FROM calendar_feeds")).mappings().all()
    assert len(rows) == 1
    assert bytes(rows[0]["secret_hash"]) == hashlib.sha256(secret.encode()).digest()
    assert secret not in repr(dict(rows[0]))


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_the_api_routes_need_a_token(client, method):
    assert_problem(getattr(client, method)(FEED), 401)


@pytest.mark.parametrize("secret", ["x" * 43, "short", "a" * 300, "%00" * 20, "ab.cd" * 10])
def test_unknown_secrets_are_404_problems(client, user, secret):
    new_feed(client, user["headers"])
    assert_problem(fetch(client, f"/calendar/{secret}.ics"), 404)


def test_open_tasks_with_a_due_are_events_in_utc(client, user, other_user):
    headers = user["headers"]
    task = client.post(
        "/api/v1/tasks",
        json={
            "title": "Pay rent; call Bob, then\nrelax",
            "description": "Line one\nLine two, with ; and \\",
            "due_at": "2027-03-25T09:30:00+01:00",
            "tags": ["home", "money"],
        },
        headers=headers,
    ).get_json()
    client.post("/api/v1/tasks", json={"title": "no due"}, headers=headers)
    done = client.post(
        "/api/v1/tasks", json={"title": "done", "due_at": "2027-03-01T00:00:00Z"}, headers=headers
    )
    client.patch(f"/api/v1/tasks/{done.get_json()['id']}", json={"completed": True}, headers=headers)
    client.post(
        "/api/v1/tasks",
        json={"title": "theirs", "due_at": "2027-03-01T00:00:00Z"},
        headers=other_user["headers"],
    )
    path = new_feed(client, headers)
    raw = fetch(client, path).get_data(as_text=True)
    assert "DTSTART:20270325T083000Z\r\n" in raw
    (event,) = events(icalendar.Calendar.from_ical(raw), "task-")
    assert str(event["UID"]) == f"task-{task['id']}@todo-api"
    assert str(event["SUMMARY"]) == task["title"]
    assert str(event["DESCRIPTION"]) == task["description"]
    assert [str(c) for c in event["CATEGORIES"].cats] == ["home", "money"]
    updated = event["LAST-MODIFIED"].dt.isoformat()
    assert updated == event["DTSTAMP"].dt.isoformat() == task["updated_at"].split(".")[0] + "+00:00"


def test_date_only_tasks_are_all_day_events(client, user):
    headers = user["headers"]
    client.patch("/api/v1/auth/me", json={"timezone": "Pacific/Kiritimati"}, headers=headers)
    task = client.post(
        "/api/v1/tasks", json={"title": "Pay rent", "due_date": "2027-03-01"}, headers=headers
    ).get_json()
    raw = fetch(client, new_feed(client, headers)).get_data(as_text=True)
    assert "DTSTART;VALUE=DATE:20270301\r\n" in raw
    (event,) = events(icalendar.Calendar.from_ical(raw), "task-")
    assert str(event["UID"]) == f"task-{task['id']}@todo-api"
    assert event["DTSTART"].dt == date(2027, 3, 1)


def test_recurring_tasks_carry_their_zone_rule_exdate_and_overrides(client, user):
    headers = user["headers"]
    berlin = create(
        client, headers, rrule="FREQ=WEEKLY;BYDAY=TH", dtstart="2027-03-25T09:00:00", timezone="Europe/Berlin"
    )
    create(
        client,
        headers,
        rrule="FREQ=DAILY;UNTIL=20270410",
        dtstart="2027-04-01T08:00:00",
        timezone="America/New_York",
    )
    listed = items(client, headers, berlin, start="2027-03-25T00:00:00Z", end="2027-04-15T00:00:00Z")
    url = f"{BASE}/{berlin}/instances"
    client.patch(f"{url}/{listed[1]['id']}", json={"skipped": True}, headers=headers)
    client.patch(f"{url}/{listed[2]['id']}", json={"occurs_at": "2027-04-09T16:00:00Z"}, headers=headers)
    raw = fetch(client, new_feed(client, headers)).get_data(as_text=True)
    assert "DTSTART;TZID=Europe/Berlin:20270325T090000\r\n" in raw
    assert "RRULE:FREQ=WEEKLY;BYDAY=TH\r\n" in raw
    assert "EXDATE;TZID=Europe/Berlin:20270401T090000\r\n" in raw
    assert "RECURRENCE-ID;TZID=Europe/Berlin:20270408T090000\r\n" in raw
    assert "DTSTART;TZID=Europe/Berlin:20270409T180000\r\n" in raw
    assert "DTSTART;TZID=America/New_York:20270401T080000\r\n" in raw
    # RFC 5545 3.3.10: with a TZID DTSTART, UNTIL is UTC (the whole local day 2027-04-10, EDT).
    assert "RRULE:FREQ=DAILY;UNTIL=20270411T035959Z\r\n" in raw
    cal = icalendar.Calendar.from_ical(raw)
    assert sorted(str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")) == ["America/New_York", "Europe/Berlin"]
    series = events(cal, f"recurring-{berlin}@")
    assert len(series) == 2 and "RECURRENCE-ID" in series[1]


def test_uids_and_body_are_stable_across_fetches(client, user):
    create(client, user["headers"])
    client.post(
        "/api/v1/tasks", json={"title": "t", "due_at": "2027-03-01T00:00:00Z"}, headers=user["headers"]
    )
    path = new_feed(client, user["headers"])
    first, second = fetch(client, path), fetch(client, path)
    assert first.data == second.data
    assert first.headers["ETag"] == second.headers["ETag"]


def change_task(client, headers, ids):
    client.patch(f"/api/v1/tasks/{ids['task']}", json={"title": "renamed"}, headers=headers)


def rename_tag(client, headers, ids):
    tag = client.get("/api/v1/tags", headers=headers).get_json()["items"][0]
    client.patch(f"/api/v1/tags/{tag['id']}", json={"name": "other"}, headers=headers)


def skip(client, headers, ids):
    client.patch(ids["instance"], json={"skipped": True}, headers=headers)


def move(client, headers, ids):
    client.patch(ids["instance"], json={"occurs_at": "2027-03-05T17:00:00Z"}, headers=headers)


def add_task(client, headers, ids):
    client.post("/api/v1/tasks", json={"title": "new", "due_at": "2027-05-01T00:00:00Z"}, headers=headers)


@pytest.mark.parametrize("change", [change_task, rename_tag, skip, move, add_task])
def test_if_none_match_is_304_until_the_feed_changes(client, user, change):
    headers = user["headers"]
    task = client.post(
        "/api/v1/tasks",
        json={"title": "t", "due_at": "2027-03-01T00:00:00Z", "tags": ["home"]},
        headers=headers,
    ).get_json()
    definition_id = create(client, headers)
    instance = items(
        client, headers, definition_id, start="2027-03-02T00:00:00Z", end="2027-03-03T00:00:00Z"
    )[0]
    ids = {"task": task["id"], "instance": f"{BASE}/{definition_id}/instances/{instance['id']}"}
    path = new_feed(client, headers)
    etag = fetch(client, path).headers["ETag"]
    unchanged = fetch(client, path, **{"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.data == b""
    assert unchanged.headers["ETag"] == etag
    # Reading more instances stores them, which changes nothing in the feed.
    items(client, headers, definition_id, start="2027-03-01T00:00:00Z", end="2027-06-01T00:00:00Z")
    assert fetch(client, path, **{"If-None-Match": etag}).status_code == 304
    change(client, headers, ids)
    changed = fetch(client, path, **{"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert fetch(client, path, **{"If-None-Match": changed.headers["ETag"]}).status_code == 304


def test_the_request_log_shows_the_route_never_the_secret(client, user, caplog):
    path = new_feed(client, user["headers"])
    secret = path.removeprefix("/calendar/").removesuffix(".ics")
    app_logger = logging.getLogger("app")
    app_logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    try:
        fetch(client, path)
        fetch(client, f"/calendar/{secret}")  # no route: still not logged
        fetch(client, "/calendar/" + "y" * 43 + ".ics")
    finally:
        app_logger.removeHandler(caplog.handler)
    access = [r for r in caplog.records if r.name == "app.access" and "/api/" not in r.fields["path"]]
    assert [r.fields["path"] for r in access] == [
        "/calendar/<secret>.ics",
        "/calendar/<unmatched>",
        "/calendar/<secret>.ics",
    ]
    assert secret not in caplog.text and "y" * 43 not in caplog.text


@pytest.fixture
def limited_client(monkeypatch, database_url):
    monkeypatch.setenv("RATELIMIT_ENABLED", "true")
    monkeypatch.setenv("RATELIMIT_AUTH", "3 per minute")
    config = type("LimitedConfig", (TestConfig,), {"RATELIMIT_KEY_PREFIX": uuid.uuid4().hex})
    app = create_app(config)
    yield app.test_client()
    with app.app_context():
        db.engine.dispose()


def test_the_feed_is_rate_limited_per_address(limited_client):
    client = limited_client
    client.post("/api/v1/auth/register", json={"email": "a@example.com", "password": "correct horse battery"})
    tokens = client.post(
        "/api/v1/auth/login", json={"email": "a@example.com", "password": "correct horse battery"}
    ).get_json()
    path = new_feed(client, {"Authorization": f"Bearer {tokens['access_token']}"})
    for _ in range(3):
        assert client.get(path, environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 200
    limited = client.get(path, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert_problem(limited, 429)
    assert int(limited.headers["Retry-After"]) > 0
    assert client.get(path, environ_base={"REMOTE_ADDR": "10.0.0.10"}).status_code == 200
