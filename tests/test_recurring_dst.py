"""Recurring tasks across time zones: wall-clock occurrences, DST gaps and folds, rule parts."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

BASE = "/api/v1/recurring-tasks"


def occurrences(client, headers, rrule, dtstart, timezone, start, end):
    response = client.post(
        BASE,
        json={"title": "t", "rrule": rrule, "dtstart": dtstart, "timezone": timezone},
        headers=headers,
    )
    assert response.status_code == 201, response.get_json()
    response = client.get(
        f"{BASE}/{response.get_json()['id']}/instances",
        query_string={"start": start, "end": end},
        headers=headers,
    )
    assert response.status_code == 200, response.get_json()
    return [datetime.fromisoformat(item["occurs_at"]) for item in response.get_json()["items"]]


def local(instants, timezone):
    return [instant.astimezone(ZoneInfo(timezone)).strftime("%m-%d %H:%M %z") for instant in instants]


@pytest.mark.parametrize(
    ("timezone", "spring", "autumn", "winter_offset", "summer_offset"),
    [
        ("Europe/Berlin", "2027-03-28", "2027-10-31", "+0100", "+0200"),
        ("America/New_York", "2027-03-14", "2027-11-07", "-0500", "-0400"),
    ],
)
def test_daily_nine_oclock_stays_nine_oclock_across_both_changes(
    client, user, timezone, spring, autumn, winter_offset, summer_offset
):
    instants = occurrences(
        client,
        user["headers"],
        "FREQ=DAILY",
        "2027-01-01T09:00:00",
        timezone,
        "2027-01-01T00:00Z",
        "2028-01-01T00:00Z",
    )
    assert len(instants) == 365
    shown = local(instants, timezone)
    assert {entry[6:11] for entry in shown} == {"09:00"}
    day_before_spring = shown.index(f"{spring[5:]} 09:00 {summer_offset}") - 1
    assert shown[day_before_spring].endswith(winter_offset)
    day_of_autumn = shown.index(f"{autumn[5:]} 09:00 {winter_offset}")
    assert shown[day_of_autumn - 1].endswith(summer_offset)
    utc_hours = {instant.astimezone(UTC).hour for instant in instants}
    assert len(utc_hours) == 2


def test_southern_hemisphere_changes_the_other_way(client, user):
    # Sydney: summer time ends 2027-04-04 (+11 -> +10) and starts 2027-10-03 (+10 -> +11).
    instants = occurrences(
        client,
        user["headers"],
        "FREQ=WEEKLY;BYDAY=SA",
        "2027-03-27T09:00:00",
        "Australia/Sydney",
        "2027-03-01T00:00Z",
        "2027-10-20T00:00Z",
    )
    utc = [instant.astimezone(UTC).strftime("%m-%d %H:%M") for instant in instants]
    assert utc[:2] == ["03-26 22:00", "04-02 22:00"]
    assert "04-09 23:00" in utc
    assert utc[-3:] == ["10-01 23:00", "10-08 22:00", "10-15 22:00"]
    assert {entry[6:11] for entry in local(instants, "Australia/Sydney")} == {"09:00"}


def test_a_time_in_the_spring_gap_moves_forward_by_the_gap(client, user):
    instants = occurrences(
        client,
        user["headers"],
        "FREQ=DAILY",
        "2027-03-27T02:30:00",
        "Europe/Berlin",
        "2027-03-27T00:00Z",
        "2027-03-30T00:00Z",
    )
    assert local(instants, "Europe/Berlin") == ["03-27 02:30 +0100", "03-28 03:30 +0200", "03-29 02:30 +0200"]


def test_an_ambiguous_time_on_fall_back_happens_once_the_first_time(client, user):
    instants = occurrences(
        client,
        user["headers"],
        "FREQ=DAILY",
        "2027-11-06T01:30:00",
        "America/New_York",
        "2027-11-06T00:00Z",
        "2027-11-09T00:00Z",
    )
    assert [i.isoformat() for i in instants] == [
        "2027-11-06T05:30:00+00:00",
        "2027-11-07T05:30:00+00:00",  # 01:30 EDT, the first of the two
        "2027-11-08T06:30:00+00:00",
    ]


def test_hourly_across_the_gap_counts_the_shared_instant_once(client, user):
    instants = occurrences(
        client,
        user["headers"],
        "FREQ=HOURLY",
        "2027-03-28T00:00:00",
        "Europe/Berlin",
        "2027-03-27T23:00Z",
        "2027-03-28T03:00Z",
    )
    # Local 00:00, 01:00, 02:00 (does not exist: 03:00 CEST), 03:00 CEST, 04:00 CEST.
    assert [i.strftime("%H:%M") for i in instants] == ["23:00", "00:00", "01:00", "02:00"]


def test_count_limits_the_occurrences(client, user):
    instants = occurrences(
        client,
        user["headers"],
        "FREQ=WEEKLY;COUNT=3",
        "2027-05-03T08:00:00",
        "UTC",
        "2027-01-01T00:00Z",
        "2027-12-31T00:00Z",
    )
    assert [i.strftime("%m-%d") for i in instants] == ["05-03", "05-10", "05-17"]


@pytest.mark.parametrize(
    ("until", "expected"),
    [
        ("20270105", ["01-01", "01-02", "01-03", "01-04", "01-05"]),  # a date includes the day
        ("20270105T090000", ["01-01", "01-02", "01-03", "01-04", "01-05"]),  # floating: Berlin wall clock
        ("20270105T075959Z", ["01-01", "01-02", "01-03", "01-04"]),  # 08:59:59 in Berlin
        ("20270105T080000Z", ["01-01", "01-02", "01-03", "01-04", "01-05"]),
    ],
)
def test_until_is_inclusive_and_a_z_value_is_utc(client, user, until, expected):
    instants = occurrences(
        client,
        user["headers"],
        f"FREQ=DAILY;UNTIL={until}",
        "2027-01-01T09:00:00",
        "Europe/Berlin",
        "2027-01-01T00:00Z",
        "2027-02-01T00:00Z",
    )
    assert [i.strftime("%m-%d") for i in instants] == expected


def test_byday_picks_weekdays(client, user):
    instants = occurrences(
        client,
        user["headers"],
        "FREQ=WEEKLY;BYDAY=TU,TH",
        "2027-06-01T18:00:00",
        "Asia/Tokyo",
        "2027-06-01T00:00Z",
        "2027-06-15T00:00Z",
    )
    assert local(instants, "Asia/Tokyo") == [
        "06-01 18:00 +0900",
        "06-03 18:00 +0900",
        "06-08 18:00 +0900",
        "06-10 18:00 +0900",
    ]


def test_bymonthday_31_skips_shorter_months(client, user):
    instants = occurrences(
        client,
        user["headers"],
        "FREQ=MONTHLY;BYMONTHDAY=31",
        "2027-01-31T12:00:00",
        "UTC",
        "2027-01-01T00:00Z",
        "2027-12-31T23:00Z",
    )
    assert [i.strftime("%m-%d") for i in instants] == [
        "01-31",
        "03-31",
        "05-31",
        "07-31",
        "08-31",
        "10-31",
        "12-31",
    ]


def test_yearly_on_29_february_happens_in_leap_years_only(client, user, app):
    response = client.post(
        BASE,
        json={"title": "t", "rrule": "FREQ=YEARLY", "dtstart": "2028-02-29T10:00:00", "timezone": "UTC"},
        headers=user["headers"],
    )
    assert [o[:10] for o in response.get_json()["next_occurrences"]] == [
        "2028-02-29",
        "2032-02-29",
        "2036-02-29",
        "2040-02-29",
        "2044-02-29",
    ]
