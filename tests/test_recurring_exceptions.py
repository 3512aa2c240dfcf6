"""One occurrence at a time: skip, move, move back, and what a schedule change does to them."""

import threading
from datetime import UTC, datetime, timedelta

from test_recurring_instances import BASE, create, items, window

from conftest import assert_problem, bearer, login, register

MARCH = {"start": "2027-03-01T00:00:00Z", "end": "2027-03-08T00:00:00Z"}


def patch(client, headers, definition_id, instance, body):
    response = client.patch(f"{BASE}/{definition_id}/instances/{instance['id']}", json=body, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def times(found):
    return [(i["occurs_at"], i["original_occurs_at"], i["skipped"]) for i in found]


def test_instances_carry_their_original_slot_and_are_not_skipped(client, user):
    definition_id = create(client, user["headers"])
    first = items(client, user["headers"], definition_id, **MARCH)[0]
    assert first["original_occurs_at"] == first["occurs_at"] == "2027-03-01T09:00:00+00:00"
    assert first["skipped"] is False


def test_skipping_lists_the_occurrence_as_skipped_and_false_restores_it(client, user):
    definition_id = create(client, user["headers"])
    second = items(client, user["headers"], definition_id, **MARCH)[1]
    skipped = patch(client, user["headers"], definition_id, second, {"skipped": True})
    assert (skipped["skipped"], skipped["occurs_at"]) == (True, second["occurs_at"])
    listed = items(client, user["headers"], definition_id, **MARCH)
    assert [i["skipped"] for i in listed] == [False, True, False, False, False, False, False]
    assert patch(client, user["headers"], definition_id, second, {"skipped": False})["skipped"] is False
    assert not any(i["skipped"] for i in items(client, user["headers"], definition_id, **MARCH))


def test_a_moved_occurrence_is_listed_by_its_new_time_and_its_slot_is_not_generated_again(client, user):
    definition_id = create(client, user["headers"])
    listed = items(client, user["headers"], definition_id, **MARCH)
    moved = patch(client, user["headers"], definition_id, listed[1], {"occurs_at": "2027-03-20T15:00:00Z"})
    assert (moved["occurs_at"], moved["original_occurs_at"]) == (
        "2027-03-20T15:00:00+00:00",
        "2027-03-02T09:00:00+00:00",
    )
    after = items(client, user["headers"], definition_id, **MARCH)
    assert [i["occurs_at"][:10] for i in after] == ["2027-03-01", *(f"2027-03-0{d}" for d in range(3, 8))]
    # Its original day alone: nothing, and nothing stored for that slot either.
    assert (
        items(
            client, user["headers"], definition_id, start="2027-03-02T00:00:00Z", end="2027-03-03T00:00:00Z"
        )
        == []
    )
    later = items(
        client, user["headers"], definition_id, start="2027-03-20T00:00:00Z", end="2027-03-21T00:00:00Z"
    )
    assert times(later) == [
        ("2027-03-20T09:00:00+00:00", "2027-03-20T09:00:00+00:00", False),
        ("2027-03-20T15:00:00+00:00", "2027-03-02T09:00:00+00:00", False),
    ]
    assert later[1]["id"] == listed[1]["id"]


def test_a_move_from_outside_a_window_is_listed_in_it_and_null_moves_it_back(client, user):
    definition_id = create(client, user["headers"])
    far = items(
        client, user["headers"], definition_id, start="2027-06-01T00:00:00Z", end="2027-06-02T00:00:00Z"
    )[0]
    patch(client, user["headers"], definition_id, far, {"occurs_at": "2027-03-03T12:00:00Z"})
    listed = items(client, user["headers"], definition_id, **MARCH)
    assert len(listed) == 8
    assert [i["id"] for i in listed if i["occurs_at"] == "2027-03-03T12:00:00+00:00"] == [far["id"]]
    back = patch(client, user["headers"], definition_id, far, {"occurs_at": None})
    assert back["occurs_at"] == back["original_occurs_at"] == "2027-06-01T09:00:00+00:00"
    assert len(items(client, user["headers"], definition_id, **MARCH)) == 7
    june = items(
        client, user["headers"], definition_id, start="2027-06-01T00:00:00Z", end="2027-06-02T00:00:00Z"
    )
    assert [i["id"] for i in june] == [far["id"]]


def test_a_naive_move_is_wall_clock_time_in_the_users_zone(client):
    register(client, timezone="Europe/Berlin")
    headers = bearer(login(client)["access_token"])
    definition_id = create(client, headers)
    first = items(client, headers, definition_id, **MARCH)[0]
    # 2027-03-30 is summer time in Berlin (UTC+2).
    moved = patch(client, headers, definition_id, first, {"occurs_at": "2027-03-30T18:00:00"})
    assert moved["occurs_at"] == "2027-03-30T16:00:00+00:00"
    moved = patch(client, headers, definition_id, first, {"occurs_at": "2027-03-04T18:00:00.987654+05:00"})
    assert moved["occurs_at"] == "2027-03-04T13:00:00+00:00"


def test_moving_onto_another_occurrence_lists_both_and_far_moves_are_allowed(client, user):
    definition_id = create(client, user["headers"])
    listed = items(client, user["headers"], definition_id, **MARCH)
    patch(client, user["headers"], definition_id, listed[0], {"occurs_at": listed[1]["occurs_at"]})
    same = [
        i
        for i in items(client, user["headers"], definition_id, **MARCH)
        if i["occurs_at"] == listed[1]["occurs_at"]
    ]
    assert sorted(i["id"] for i in same) == sorted([listed[0]["id"], listed[1]["id"]])
    far = patch(client, user["headers"], definition_id, listed[2], {"occurs_at": "2100-01-01T00:00:00Z"})
    assert far["occurs_at"] == "2100-01-01T00:00:00+00:00"
    both = patch(
        client,
        user["headers"],
        definition_id,
        listed[3],
        {"occurs_at": "2027-03-10T00:00:00Z", "skipped": True, "completed": True},
    )
    assert (both["skipped"], both["completed"], both["occurs_at"]) == (
        True,
        True,
        "2027-03-10T00:00:00+00:00",
    )


def test_a_schedule_change_drops_future_skipped_and_moved_ones_and_keeps_completed(client, user):
    now = datetime.now(UTC).replace(microsecond=0)
    dtstart = (now - timedelta(days=3)).replace(hour=9, minute=0, second=0, tzinfo=None)
    definition_id = create(client, user["headers"], dtstart=dtstart.isoformat())
    span = {"start": (now - timedelta(days=5)).isoformat(), "end": (now + timedelta(days=6)).isoformat()}
    listed = items(client, user["headers"], definition_id, **span)
    past, future = (
        [i for i in listed if i["occurs_at"] < now.isoformat()],
        [i for i in listed if i["occurs_at"] > now.isoformat()],
    )
    patch(client, user["headers"], definition_id, future[0], {"skipped": True})
    # Moved into the past, but its slot is future: it belongs to the old schedule's future.
    patch(
        client,
        user["headers"],
        definition_id,
        future[1],
        {"occurs_at": (now - timedelta(days=4)).isoformat()},
    )
    # Moved into the future from a past slot.
    patch(
        client, user["headers"], definition_id, past[0], {"occurs_at": (now + timedelta(days=4)).isoformat()}
    )
    # Completed and moved to a time where the new rule puts nothing: it stays.
    kept = patch(
        client,
        user["headers"],
        definition_id,
        future[2],
        {"completed": True, "occurs_at": (now + timedelta(days=5, minutes=7)).isoformat()},
    )
    response = client.patch(
        f"{BASE}/{definition_id}",
        json={"dtstart": dtstart.replace(hour=10).isoformat()},
        headers=user["headers"],
    )
    assert response.status_code == 200
    after = items(client, user["headers"], definition_id, **span)
    ids = {i["id"] for i in after}
    assert kept["id"] in ids
    assert not ids & {future[0]["id"], future[1]["id"], past[0]["id"]}
    assert {i["id"] for i in past[1:]} <= ids  # wholly past, not completed: kept
    new = [i for i in after if i["id"] not in {x["id"] for x in listed}]
    assert {i["occurs_at"][11:16] for i in new} == {"10:00"}
    assert not any(i["skipped"] for i in new)


def test_patching_an_instance_needs_a_valid_body_and_the_owner(client, user, other_user):
    definition_id = create(client, user["headers"])
    first = items(client, user["headers"], definition_id, **MARCH)[0]
    url = f"{BASE}/{definition_id}/instances/{first['id']}"
    assert_problem(client.patch(url, json={"skipped": True}, headers=other_user["headers"]), 404)
    assert_problem(
        client.patch(url, json={"occurs_at": "9999-12-31T23:00:00Z"}, headers=user["headers"]), 422
    )


def test_concurrent_readers_store_each_slot_once_with_a_moved_occurrence(app, user):
    client = app.test_client()
    definition_id = create(client, user["headers"], rrule="FREQ=HOURLY")
    first = items(
        client, user["headers"], definition_id, start="2027-03-01T09:00:00Z", end="2027-03-01T10:00:00Z"
    )[0]
    # Moved to a slot-free minute in the middle of the window the readers will store.
    patch(client, user["headers"], definition_id, first, {"occurs_at": "2027-03-05T12:30:00Z"})
    span = {"start": "2027-03-01T00:00:00Z", "end": "2027-03-11T00:00:00Z"}
    barrier = threading.Barrier(6)
    answers, errors = [], []

    def read():
        reader = app.test_client()
        try:
            barrier.wait(timeout=10)
            response = window(reader, user["headers"], definition_id, **span)
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
    assert {status for status, _ in answers} == {200} and len(answers) == 6
    assert len({tuple(found) for _, found in answers}) == 1
    found = answers[0][1]
    assert len(found) == 10 * 24 - 9  # every slot once: the moved one at its new time only
    assert [occurs_at for instance_id, occurs_at in found if instance_id == first["id"]] == [
        "2027-03-05T12:30:00+00:00"
    ]
    assert "2027-03-01T09:00:00+00:00" not in [occurs_at for _, occurs_at in found]
