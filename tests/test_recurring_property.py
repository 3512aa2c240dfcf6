"""Property: the instances answered for any rule, zone and window are exactly dateutil's own
expansion of the rule over wall-clock time, placed in the zone (fold=0) and converted to UTC."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BASE = "/api/v1/recurring-tasks"
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
]
FREQS = ["HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@st.composite
def rules(draw):
    freq = draw(st.sampled_from(FREQS))
    parts = [f"FREQ={freq}", f"INTERVAL={draw(st.integers(1, 3))}"]
    days = draw(st.lists(st.sampled_from(DAYS), unique=True, max_size=3))
    if days:
        parts.append("BYDAY=" + ",".join(days))
    if draw(st.booleans()):
        parts.append(f"COUNT={draw(st.integers(1, 60))}")
    return freq, ";".join(parts)


def expected(rule, dtstart, zone, start, end):
    """dateutil's occurrences in [start, end), walked plainly from dtstart."""
    found = set()
    for local in rrulestr(rule, dtstart=dtstart):
        if local > end.astimezone(zone).replace(tzinfo=None) + timedelta(days=2):
            break
        instant = local.replace(tzinfo=zone).astimezone(UTC)
        if start <= instant < end:
            found.add(instant)
    return sorted(found)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rule=rules(),
    zone_name=st.sampled_from(ZONES),
    dtstart=st.datetimes(datetime(2027, 1, 1), datetime(2030, 12, 31)).map(
        lambda d: d.replace(minute=d.minute // 30 * 30, second=0, microsecond=0)
    ),
    offset_hours=st.integers(-48, 24 * 365 * 6),
    length_hours=st.integers(0, 24 * 366),
)
def test_instances_match_dateutils_expansion(
    client, user, rule, zone_name, dtstart, offset_hours, length_hours
):
    freq, text = rule
    if freq == "HOURLY":
        offset_hours, length_hours = offset_hours % (24 * 400), length_hours % (24 * 45)
    zone = ZoneInfo(zone_name)
    start = dtstart.replace(tzinfo=UTC) + timedelta(hours=offset_hours)
    end = start + timedelta(hours=length_hours)
    response = client.post(
        BASE,
        json={"title": "p", "rrule": text, "dtstart": dtstart.isoformat(), "timezone": zone_name},
        headers=user["headers"],
    )
    assert response.status_code == 201, response.get_json()
    response = client.get(
        f"{BASE}/{response.get_json()['id']}/instances",
        query_string={"start": start.isoformat(), "end": end.isoformat()},
        headers=user["headers"],
    )
    want = expected(text, dtstart, zone, start, end)
    if len(want) > 1000:
        assert response.status_code == 422
        return
    assert response.status_code == 200, response.get_json()
    assert [datetime.fromisoformat(i["occurs_at"]) for i in response.get_json()["items"]] == want
