"""Date-only due dates (`due_date`): answered as sent, at most one due, and where such a task
stands in time in the user's current zone (filters, sorts, keyset pages, overdue), for users
at UTC+14 and UTC-11, across DST changes and around the user's midnight ("now" frozen)."""

import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from test_tasks_list import walk

import app.tasks
from app.extensions import db

from conftest import TASK_FIELDS, assert_problem

TASKS = "/api/v1/tasks"
KIRITIMATI, PAGO_PAGO, BERLIN = "Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Berlin"


def create(client, user, **body) -> dict:
    response = client.post(TASKS, json={"title": "a task", **body}, headers=user["headers"])
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def patch(client, user, task_id, **body):
    return client.patch(f"{TASKS}/{task_id}", json=body, headers=user["headers"])


def set_zone(client, user, zone: str) -> None:
    response = client.patch("/api/v1/auth/me", json={"timezone": zone}, headers=user["headers"])
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["timezone"] == zone


def ids(client, user, **params) -> list[int]:
    return [task["id"] for task in walk(client, user, **params)]


def freeze(monkeypatch, moment: datetime) -> None:
    """The list's "now" (for overdue) is `moment`: the tests never depend on the real clock."""
    monkeypatch.setattr(app.tasks, "now", lambda: moment)


def utc(*fields) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# The representation


def test_due_date_is_answered_exactly_as_sent(client, user):
    set_zone(client, user, KIRITIMATI)
    task = create(client, user, due_date="2027-01-01")
    assert set(task) == TASK_FIELDS
    assert task["due_date"] == "2027-01-01"
    assert task["due_at"] is None
    got = client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).get_json()
    assert got == task
    # Whatever zone the user moves to, the day stays the day.
    for zone in (PAGO_PAGO, BERLIN, "UTC"):
        set_zone(client, user, zone)
        assert (
            client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).get_json()["due_date"]
            == "2027-01-01"
        )
        assert [t["due_date"] for t in walk(client, user)] == ["2027-01-01"]


def test_a_task_without_due_date_answers_null(client, user):
    assert create(client, user)["due_date"] is None
    assert create(client, user, due_at="2027-01-01T10:00:00Z")["due_date"] is None


@pytest.mark.parametrize("day", ["0001-01-01", "2024-02-29", "9999-12-31"])
@pytest.mark.parametrize("zone", [KIRITIMATI, PAGO_PAGO, "Asia/Tokyo"])
def test_every_calendar_date_of_years_1_to_9999_is_accepted(client, user, day, zone):
    set_zone(client, user, zone)
    task = create(client, user, due_date=day)
    assert task["due_date"] == day
    assert [t["due_date"] for t in walk(client, user, sort="due_at", limit=1)] == [day]


@pytest.mark.parametrize(
    "value",
    [
        "2027-02-29",  # not a leap year
        "2027-13-01",
        "2027-04-31",
        "0000-01-01",
        "10000-01-01",
        "2027-1-1",
        "20270101",
        "2027-W01-1",
        "2027-001",
        "2027-01-01T00:00:00",
        "2027-01-01T00:00:00Z",
        "2027-01-01 00:00",
        " 2027-01-01",
        "2027-01-01\n",
        "\u0662\u0660\u0662\u0667-\u0660\u0661-\u0660\u0661",  # Arabic-Indic digits
        "",
        20270101,
        True,
        ["2027-01-01"],
    ],
)
def test_anything_but_a_calendar_date_is_422_on_due_date(client, user, value):
    body = assert_problem(
        client.post(TASKS, json={"title": "t", "due_date": value}, headers=user["headers"]), 422
    )
    assert set(body["errors"]) == {"due_date"}
    task = create(client, user)
    body = assert_problem(patch(client, user, task["id"], due_date=value), 422)
    assert set(body["errors"]) == {"due_date"}


def test_both_non_null_in_one_body_is_422_naming_both(client, user):
    both = {"due_at": "2027-01-01T10:00:00Z", "due_date": "2027-01-01"}
    body = assert_problem(client.post(TASKS, json={"title": "t", **both}, headers=user["headers"]), 422)
    assert set(body["errors"]) == {"due_at", "due_date"}
    task = create(client, user, due_date="2026-12-31")
    body = assert_problem(patch(client, user, task["id"], **both), 422)
    assert set(body["errors"]) == {"due_at", "due_date"}
    # Nothing changed.
    assert client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).get_json() == task


def test_one_non_null_and_the_other_null_is_fine(client, user):
    task = create(client, user, due_at=None, due_date="2027-01-01")
    assert (task["due_at"], task["due_date"]) == (None, "2027-01-01")
    task = create(client, user, due_at="2027-01-01T10:00:00Z", due_date=None)
    assert (task["due_at"], task["due_date"]) == ("2027-01-01T10:00:00+00:00", None)
    task = patch(client, user, task["id"], due_at=None, due_date="2027-02-02").get_json()
    assert (task["due_at"], task["due_date"]) == (None, "2027-02-02")


def test_setting_one_clears_the_other(client, user):
    task = create(client, user, due_at="2027-01-01T10:00:00Z")
    task = patch(client, user, task["id"], due_date="2027-01-01").get_json()
    assert (task["due_at"], task["due_date"]) == (None, "2027-01-01")
    task = patch(client, user, task["id"], due_at="2027-03-01T08:00:00Z").get_json()
    assert (task["due_at"], task["due_date"]) == ("2027-03-01T08:00:00+00:00", None)
    # As stored, not only as answered.
    assert client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).get_json() == task


def test_null_clears_only_its_own_field(client, user):
    timed = create(client, user, due_at="2027-01-01T10:00:00Z")
    assert patch(client, user, timed["id"], due_date=None).get_json()["due_at"] == "2027-01-01T10:00:00+00:00"
    dated = create(client, user, due_date="2027-01-01")
    assert patch(client, user, dated["id"], due_at=None).get_json()["due_date"] == "2027-01-01"
    assert patch(client, user, dated["id"], due_date=None).get_json()["due_date"] is None
    # A PATCH without either leaves the due alone.
    dated = create(client, user, due_date="2027-05-05")
    assert patch(client, user, dated["id"], title="renamed").get_json()["due_date"] == "2027-05-05"


def test_etag_changes_with_due_date(client, user):
    task = create(client, user, due_date="2027-01-01")
    first = client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).headers["ETag"]
    response = patch(client, user, task["id"], due_date="2027-01-02")
    assert response.headers["ETag"] != first
    assert (
        response.headers["ETag"]
        == client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).headers["ETag"]
    )
    stale = client.patch(
        f"{TASKS}/{task['id']}",
        json={"due_date": "2027-01-03"},
        headers={**user["headers"], "If-Match": first},
    )
    assert_problem(stale, 412)
    assert client.get(f"{TASKS}/{task['id']}", headers=user["headers"]).get_json()["due_date"] == "2027-01-02"


def test_openapi_types_due_date_as_a_nullable_date(client):
    spec = client.get("/openapi.json").get_json()
    field = spec["components"]["schemas"]["Task"]["properties"]["due_date"]
    assert (field["type"], field["format"], field["nullable"]) == ("string", "date", True)


def test_the_database_refuses_both_dues(app, client, user):
    task = create(client, user, due_date="2027-01-01")
    with app.app_context(), pytest.raises(IntegrityError, match="ck_tasks_one_due"):
        db.session.execute(text("UPDATE tasks SET due_at = now() WHERE id = :id"), {"id": task["id"]})
    with app.app_context(), pytest.raises(IntegrityError, match="ck_tasks_due_date_start_set"):
        db.session.execute(text("UPDATE tasks SET due_date_start = NULL WHERE id = :id"), {"id": task["id"]})


# Where a date-only task stands in time


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        (KIRITIMATI, utc(2026, 12, 31, 10)),  # 2027-01-01 00:00 at +14
        (PAGO_PAGO, utc(2027, 1, 1, 11)),  # 2027-01-01 00:00 at -11
        ("UTC", utc(2027, 1, 1)),
    ],
)
def test_a_date_only_task_stands_at_the_start_of_its_day(client, user, zone, start):
    set_zone(client, user, zone)
    task = create(client, user, due_date="2027-01-01")
    micro = timedelta(microseconds=1)
    assert ids(client, user, due_after=z(start)) == [task["id"]]  # inclusive
    assert ids(client, user, due_after=z(start + micro)) == []
    assert ids(client, user, due_before=z(start)) == []  # exclusive
    assert ids(client, user, due_before=z(start + micro)) == [task["id"]]
    # "Due today", spelled as the contract does, in the user's wall-clock time.
    today = {"due_after": "2027-01-01T00:00:00", "due_before": "2027-01-02T00:00:00"}
    assert ids(client, user, **today) == [task["id"]]
    assert ids(client, user, due_after="2027-01-02T00:00:00") == []
    assert ids(client, user, due_before="2027-01-01T00:00:00") == []


def test_due_today_holds_the_date_only_and_timed_tasks_of_the_local_day(client, user):
    set_zone(client, user, KIRITIMATI)
    day = create(client, user, due_date="2027-06-15")
    create(client, user, due_date="2027-06-14")
    create(client, user, due_date="2027-06-16")
    # 23:30 on the 15th at +14 is 09:30 UTC on the 15th; 00:30 on the 16th is 10:30 UTC.
    late = create(client, user, due_at="2027-06-15T09:30:00Z")
    create(client, user, due_at="2027-06-15T10:30:00Z")
    create(client, user)
    today = {"due_after": "2027-06-15T00:00:00", "due_before": "2027-06-16T00:00:00"}
    assert ids(client, user, sort="due_at", **today) == [day["id"], late["id"]]


def test_the_due_sorts_place_date_only_tasks_by_the_users_zone(client, user):
    set_zone(client, user, KIRITIMATI)
    timed = create(client, user, due_at="2027-01-01T05:00:00Z")
    dated = create(client, user, due_date="2027-01-01")
    undue = create(client, user)
    # At +14 the day began at 10:00 UTC the day before: before the timed task.
    assert ids(client, user, sort="due_at") == [dated["id"], timed["id"], undue["id"]]
    assert ids(client, user, sort="-due_at") == [timed["id"], dated["id"], undue["id"]]
    # The user moves to -11: the day now begins at 11:00 UTC, after the timed task.
    set_zone(client, user, PAGO_PAGO)
    assert ids(client, user, sort="due_at") == [timed["id"], dated["id"], undue["id"]]
    assert ids(client, user, sort="-due_at") == [dated["id"], timed["id"], undue["id"]]
    # The timed task did not move, the date-only one kept its date.
    assert ids(client, user, due_after="2027-01-01T05:00:00Z", due_before="2027-01-01T05:00:01Z") == [
        timed["id"]
    ]
    assert ids(client, user, due_after="2027-01-01T11:00:00Z", due_before="2027-01-01T11:00:01Z") == [
        dated["id"]
    ]
    assert (
        client.get(f"{TASKS}/{dated['id']}", headers=user["headers"]).get_json()["due_date"] == "2027-01-01"
    )


def test_a_timezone_change_moves_every_date_only_task_and_no_other_users(client, user, other_user):
    set_zone(client, user, KIRITIMATI)
    days = [create(client, user, due_date=f"2027-0{month}-01")["id"] for month in range(1, 6)]
    theirs = client.post(TASKS, json={"title": "t", "due_date": "2027-01-01"}, headers=other_user["headers"])
    set_zone(client, user, PAGO_PAGO)
    # Each now starts at 11:00 UTC of its date.
    for month, task_id in enumerate(days, start=1):
        start = z(utc(2027, month, 1, 11))
        assert ids(client, user, due_after=start, due_before=z(utc(2027, month, 1, 11, 0, 1))) == [task_id]
    # The other user (in UTC) still has theirs at midnight UTC.
    assert ids(client, other_user, due_after="2027-01-01T00:00:00Z", due_before="2027-01-01T00:00:01Z") == [
        theirs.get_json()["id"]
    ]


def test_ties_between_timed_and_date_only_tasks_break_by_id(client, user):
    set_zone(client, user, PAGO_PAGO)
    start = "2027-01-01T11:00:00Z"  # where 2027-01-01 starts at -11
    mixed = [
        create(client, user, **({"due_date": "2027-01-01"} if i % 2 else {"due_at": start}))["id"]
        for i in range(6)
    ]
    later = create(client, user, due_date="2027-01-02")["id"]
    undue = [create(client, user)["id"] for _ in range(2)]
    for limit in (1, 2, 3, 50):
        assert ids(client, user, sort="due_at", limit=limit) == [*mixed, later, *undue]
        assert ids(client, user, sort="-due_at", limit=limit) == [later, *mixed[::-1], *undue[::-1]]


# Overdue, with "now" frozen around the user's midnight


@pytest.mark.parametrize(
    ("zone", "day_ends"),
    [
        (KIRITIMATI, utc(2027, 1, 1, 10)),  # 2027-01-02 00:00 at +14
        (PAGO_PAGO, utc(2027, 1, 2, 11)),  # 2027-01-02 00:00 at -11
        (BERLIN, utc(2027, 1, 1, 23)),
    ],
)
def test_a_date_only_task_is_overdue_once_its_whole_day_has_passed(client, user, monkeypatch, zone, day_ends):
    set_zone(client, user, zone)
    task = create(client, user, due_date="2027-01-01")
    done = create(client, user, due_date="2027-01-01", completed=True)
    freeze(monkeypatch, day_ends - timedelta(microseconds=1))  # the last instant of the day
    assert ids(client, user, overdue="true") == []
    assert ids(client, user, overdue="false") == [done["id"], task["id"]]
    freeze(monkeypatch, day_ends)
    assert ids(client, user, overdue="true") == [task["id"]]
    assert ids(client, user, overdue="false") == [done["id"]]
    # Days after, a completed task is still not overdue.
    freeze(monkeypatch, day_ends + timedelta(days=400))
    assert ids(client, user, overdue="true") == [task["id"]]


def test_overdue_follows_the_users_current_zone(client, user, monkeypatch):
    set_zone(client, user, KIRITIMATI)
    task = create(client, user, due_date="2027-01-01")
    timed = create(client, user, due_at="2027-01-01T12:00:00Z")
    # 2027-01-02 02:00 at +14, 2027-01-01 01:00 at -11.
    freeze(monkeypatch, utc(2027, 1, 1, 12))
    assert ids(client, user, overdue="true") == [task["id"]]
    set_zone(client, user, PAGO_PAGO)
    assert ids(client, user, overdue="true") == []
    assert ids(client, user, overdue="false") == [timed["id"], task["id"]]
    # The timed one becomes overdue at its instant, in any zone.
    freeze(monkeypatch, utc(2027, 1, 1, 12, 0, 0, 1))
    assert ids(client, user, overdue="true") == [timed["id"]]


def test_tasks_without_a_due_are_never_overdue(client, user, monkeypatch):
    freeze(monkeypatch, utc(9999, 12, 31, 23))
    task = create(client, user)
    assert ids(client, user, overdue="true") == []
    assert ids(client, user, overdue="false") == [task["id"]]


# Days that are not 24 hours long, and days that do not start at 00:00


def test_berlin_spring_forward_day_has_23_hours(client, user, monkeypatch):
    set_zone(client, user, BERLIN)
    # 2027-03-28, the last Sunday of March: 02:00 CET becomes 03:00 CEST.
    before, day, after = (create(client, user, due_date=f"2027-03-{d}")["id"] for d in (27, 28, 29))
    starts_28, starts_29 = utc(2027, 3, 27, 23), utc(2027, 3, 28, 22)
    assert ids(client, user, due_after=z(starts_28), due_before=z(starts_29)) == [day]
    assert ids(client, user, due_after="2027-03-28T00:00:00", due_before="2027-03-29T00:00:00") == [day]
    # A timed task at 23:30 local on the 28th (21:30 UTC, 22.5 hours in) sorts inside the day.
    late = create(client, user, due_at="2027-03-28T23:30:00")["id"]
    assert ids(client, user, sort="due_at") == [before, day, late, after]
    freeze(monkeypatch, starts_29 - timedelta(microseconds=1))
    assert ids(client, user, overdue="true", sort="due_at") == [before, late]
    freeze(monkeypatch, starts_29)
    assert ids(client, user, overdue="true", sort="due_at") == [before, day, late]


def test_berlin_fall_back_day_has_25_hours(client, user, monkeypatch):
    set_zone(client, user, BERLIN)
    # 2027-10-31, the last Sunday of October: 03:00 CEST becomes 02:00 CET.
    day = create(client, user, due_date="2027-10-31")["id"]
    starts_31, starts_next = utc(2027, 10, 30, 22), utc(2027, 10, 31, 23)
    assert ids(client, user, due_after=z(starts_31), due_before=z(starts_31 + timedelta(seconds=1))) == [day]
    freeze(monkeypatch, starts_next - timedelta(microseconds=1))  # 24h59m59.999999s into the day
    assert ids(client, user, overdue="true") == []
    freeze(monkeypatch, starts_next)
    assert ids(client, user, overdue="true") == [day]


@pytest.mark.parametrize(
    ("zone", "day", "start", "why"),
    [
        # Clocks spring forward at midnight: 00:00 does not exist, the day starts at 01:00 -03.
        ("America/Santiago", "2024-09-08", utc(2024, 9, 8, 4), "gap"),
        # Clocks fall back at 01:00 to 00:00: midnight happens twice, the day starts at the first
        # (00:00 -04; PostgreSQL's AT TIME ZONE would take the second, 05:00 UTC).
        ("America/Havana", "2024-11-03", utc(2024, 11, 3, 4), "fold"),
        # Clocks fall back at 24:00 to 23:00: the day before has 25 hours, this one starts once.
        ("America/Santiago", "2024-04-07", utc(2024, 4, 7, 4), "long eve"),
        ("Asia/Beirut", "2022-03-27", utc(2022, 3, 26, 22), "gap"),
        # Samoa skipped 2011-12-30 altogether: it starts (and ends) where the 31st starts.
        ("Pacific/Apia", "2011-12-30", utc(2011, 12, 30, 10), "skipped day"),
        ("Pacific/Apia", "2011-12-31", utc(2011, 12, 30, 10), "after the skipped day"),
    ],
)
def test_a_day_that_does_not_start_at_one_midnight_starts_at_its_first_instant(
    client, user, monkeypatch, zone, day, start, why
):
    set_zone(client, user, zone)
    task = create(client, user, due_date=day)["id"]
    micro = timedelta(microseconds=1)
    assert ids(client, user, due_after=z(start), due_before=z(start + micro)) == [task], why
    assert ids(client, user, due_before=z(start)) == [], why


def test_havana_day_before_the_double_midnight_is_overdue_at_the_first_one(client, user, monkeypatch):
    set_zone(client, user, "America/Havana")
    task = create(client, user, due_date="2024-11-02")["id"]
    freeze(monkeypatch, utc(2024, 11, 3, 4) - timedelta(microseconds=1))
    assert ids(client, user, overdue="true") == []
    freeze(monkeypatch, utc(2024, 11, 3, 4))
    assert ids(client, user, overdue="true") == [task]


def test_year_1_east_of_greenwich_stands_at_the_first_representable_instant(client, user):
    # 0001-01-01 00:00 in Tokyo (local mean time, +09:18:59) is in 1 BC in UTC.
    set_zone(client, user, "Asia/Tokyo")
    dated = create(client, user, due_date="0001-01-01")["id"]
    timed = create(client, user, due_at="0001-01-01T00:00:00Z")["id"]
    later = create(client, user, due_date="0001-01-02")["id"]
    assert ids(client, user, sort="due_at", limit=1) == [dated, timed, later]
    assert ids(client, user, sort="-due_at", limit=1) == [later, timed, dated]
    assert ids(client, user, due_before="0001-01-01T00:00:01Z") == [timed, dated]


# Writes: all or nothing, and no start in a zone the user just left


def test_a_failed_timezone_change_moves_nothing(app, client, user):
    set_zone(client, user, KIRITIMATI)
    task = create(client, user, due_date="2027-01-01")["id"]
    with app.app_context():
        db.session.execute(
            text(
                """
                CREATE FUNCTION fail_on_purpose() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'rejected' USING ERRCODE = 'check_violation'; END $$;
                CREATE TRIGGER fail_on_purpose BEFORE UPDATE OF due_date_start ON tasks
                    FOR EACH ROW EXECUTE FUNCTION fail_on_purpose();
                """
            )
        )
        db.session.commit()
    try:
        response = client.patch("/api/v1/auth/me", json={"timezone": PAGO_PAGO}, headers=user["headers"])
        assert_problem(response, 422)  # the trigger raises a check_violation
    finally:
        with app.app_context():
            db.session.execute(text("DROP TRIGGER fail_on_purpose ON tasks; DROP FUNCTION fail_on_purpose()"))
            db.session.commit()
    assert client.get("/api/v1/auth/me", headers=user["headers"]).get_json()["timezone"] == KIRITIMATI
    assert ids(client, user, due_after="2026-12-31T10:00:00Z", due_before="2026-12-31T10:00:01Z") == [task]


def test_a_due_date_written_during_a_timezone_change_stands_in_the_new_zone(app, client, user):
    """PATCH /me holds the users row while it moves the date-only tasks; a task written with a
    due_date meanwhile waits for it and then stands in the new zone, not the old one."""
    set_zone(client, user, KIRITIMATI)
    user_id = client.get("/api/v1/auth/me", headers=user["headers"]).get_json()["id"]
    created = {}

    def post():
        created["response"] = app.test_client().post(
            TASKS, json={"title": "meanwhile", "due_date": "2027-01-01"}, headers=user["headers"]
        )

    with app.app_context(), db.engine.connect() as other:
        # Another PATCH /me, half done: the users row is updated (and locked), not yet committed.
        other.execute(
            text("UPDATE users SET timezone = :zone WHERE id = :id"), {"zone": PAGO_PAGO, "id": user_id}
        )
        thread = threading.Thread(target=post)
        thread.start()
        time.sleep(1)
        assert thread.is_alive(), "the write did not wait for the timezone change"
        other.commit()
    thread.join(timeout=30)
    assert created["response"].status_code == 201, created["response"].get_json()
    task = created["response"].get_json()["id"]
    assert ids(client, user, due_after="2027-01-01T11:00:00Z", due_before="2027-01-01T11:00:01Z") == [task]


def test_creating_a_date_only_task_reads_the_zone_in_the_same_transaction(app, client, user):
    set_zone(client, user, PAGO_PAGO)
    with app.app_context():
        row = db.session.execute(
            text("SELECT due_date, due_date_start FROM tasks WHERE id = :id"),
            {"id": create(client, user, due_date="2027-01-01")["id"]},
        ).one()
    assert row == (date(2027, 1, 1), utc(2027, 1, 1, 11))
