"""RFC 5545 recurrence rules: validation, and expansion in wall-clock time with python-dateutil.

Occurrences are wall-clock times: the rule is expanded from a naive `dtstart`, and only then is
each occurrence placed in the definition's zone and converted to UTC. That is what keeps "every
day at 09:00 Europe/Berlin" at 09:00 local across daylight-saving changes.
"""

import re
from collections.abc import Iterator
from datetime import MAXYEAR, UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr, weekday

MAX_INTERVAL = 1000
# COUNT rules are walked from their first occurrence on every expansion, so their length is capped.
MAX_COUNT = 10000
# Further than any UTC offset change (Samoa skipped a whole day): occurrences this far outside a
# window in wall-clock time cannot fall inside it in UTC.
SLACK = timedelta(days=2)
_RULE_TEXT = re.compile(r"[A-Za-z0-9=;,+-]+")
_INT_PARTS = {
    "BYSECOND": (0, 59, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTH": (1, 12, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYSETPOS": (1, 366, True),
}
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_BYDAY_ITEM = re.compile(r"([+-]?)(\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_UNTIL = re.compile(r"(\d{8})(T\d{6}(Z?))?")
_FREQS = {"YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY"}
_PARTS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY", *_INT_PARTS}


class RuleError(ValueError):
    """The rule cannot be used; the message is meant for the client."""


def _split_rule(text: str) -> dict[str, str]:
    """The rule's parts by name, checked against RFC 5545's grammar and value ranges."""
    if not _RULE_TEXT.fullmatch(text):
        raise RuleError(
            "Must be one RRULE value such as FREQ=WEEKLY;BYDAY=MO, without RRULE: or other lines."
        )
    parts: dict[str, str] = {}
    for pair in text.upper().split(";"):
        name, _, value = pair.partition("=")
        if name not in _PARTS:
            raise RuleError(f"Unknown rule part {name!r}.")
        if name in parts or not value:
            raise RuleError(f"{name} must be given once, with a value.")
        parts[name] = value
    _check_values(parts)
    return parts


def _check_values(parts: dict[str, str]) -> None:
    freq = parts.get("FREQ")
    if freq in {"MINUTELY", "SECONDLY"}:
        raise RuleError("FREQ must be HOURLY or coarser.")
    if freq not in _FREQS:
        raise RuleError("FREQ must be one of YEARLY, MONTHLY, WEEKLY, DAILY, HOURLY.")
    if "COUNT" in parts and "UNTIL" in parts:
        raise RuleError("COUNT and UNTIL must not both be given (RFC 5545).")
    for name, top in (("INTERVAL", MAX_INTERVAL), ("COUNT", MAX_COUNT)):
        value = parts.get(name, "1")
        if not (value.isdigit() and len(value) <= 6 and 1 <= int(value) <= top):
            raise RuleError(f"{name} must be a whole number from 1 to {top}.")
    for name, (low, high, signed) in _INT_PARTS.items():
        for item in parts.get(name, "").split(",") if name in parts else ():
            number = item.lstrip("+-") if signed else item
            if not (number.isdigit() and len(number) <= 3 and low <= int(number) <= high):
                raise RuleError(
                    f"{name} values must be whole numbers from {'-' if signed else ''}{low}..{high}."
                )
    for item in parts.get("BYDAY", "").split(",") if "BYDAY" in parts else ():
        match = _BYDAY_ITEM.fullmatch(item)
        if not match or (match[2] is not None and not 1 <= int(match[2]) <= 53):
            raise RuleError("BYDAY values must be weekdays such as MO, optionally numbered: 1MO, -1FR.")
    if parts.get("WKST", "MO") not in _DAYS:
        raise RuleError("WKST must be a weekday such as MO.")
    if "UNTIL" in parts and not _UNTIL.fullmatch(parts["UNTIL"]):
        raise RuleError("UNTIL must be a date (20271231) or date-time (20271231T235959 or ...Z).")


def _wall_clock_until(value: str, zone: ZoneInfo) -> str:
    """UNTIL as wall-clock time in the definition's zone: a `Z` value is a UTC instant and is
    converted; a floating value is taken as is; a date includes that whole day."""
    if len(value) == 8:
        return f"{value}T235959"
    if not value.endswith("Z"):
        return value
    instant = datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return instant.astimezone(zone).strftime("%Y%m%dT%H%M%S")


def build_rule(text: str, dtstart: datetime, timezone: str) -> rrule:
    """The definition's rule over naive wall-clock times; RuleError when it cannot be parsed."""
    parts = _split_rule(text)
    try:
        if "UNTIL" in parts:
            parts["UNTIL"] = _wall_clock_until(parts["UNTIL"], ZoneInfo(timezone))
        return rrulestr(";".join(f"{k}={v}" for k, v in parts.items()), dtstart=dtstart)
    except (ValueError, OverflowError):
        raise RuleError("Not a rule python-dateutil can expand.") from None


def check_schedule(text: str, dtstart: datetime, timezone: str) -> None:
    """RuleError when the rule cannot be parsed or yields no occurrence at all."""
    rule = build_rule(text, dtstart, timezone)
    try:
        empty = _is_empty(rule)
    except (ValueError, OverflowError):
        raise RuleError("Not a rule python-dateutil can expand.") from None
    if empty:
        raise RuleError("This rule yields no occurrence from dtstart on.")


def _is_empty(rule: rrule) -> bool:
    """Whether the rule yields nothing at all. dateutil finds that out by walking every period
    to the year 9999 (seconds for a daily rule); but the calendar repeats every 400 years, so
    the last 400 * INTERVAL years before 9999 yield something if any years do. Only then is
    the rule walked from dtstart, where its COUNT or UNTIL may still leave nothing."""
    probe = datetime(max(1, MAXYEAR - 400 * rule._interval - 1), 1, 1)
    endless = rule.replace(count=None, until=None)
    if next(iter(_fast_forward(endless, probe)), None) is None:
        return True
    return next(iter(rule), None) is None


def _period_start(rule: rrule, target: datetime) -> datetime:
    """The start of the latest period (year, month, week, day or hour of the rule's interval)
    that begins at or before `target`, counted from dtstart."""
    start, step, freq = rule._dtstart, rule._interval, rule._freq
    if freq == YEARLY:
        return datetime(start.year + (target.year - start.year) // step * step, 1, 1)
    if freq == MONTHLY:
        months = (target.year - start.year) * 12 + target.month - start.month
        year, month = divmod(start.month - 1 + months // step * step, 12)
        return datetime(start.year + year, month + 1, 1)
    if freq == WEEKLY:
        first = start.date() - timedelta(days=(start.weekday() - rule._wkst) % 7)
        weeks = (target.date() - first).days // 7 // step * step
        return datetime.combine(first + timedelta(weeks=weeks), time())
    if freq == DAILY:
        days = (target.date() - start.date()).days // step * step
        return datetime.combine(start.date() + timedelta(days=days), time())
    hour = start.replace(minute=0, second=0)
    return hour + timedelta(hours=(target - hour) // timedelta(hours=1) // step * step)


def _fast_forward(rule: rrule, target: datetime) -> rrule:
    """The same rule, restarted at the period holding `target`, so that expanding a window does
    not walk every period since dtstart. The BY parts dateutil derives from dtstart are made
    explicit so that the new start does not change them. COUNT rules are walked whole."""
    if rule._count is not None or target <= rule._dtstart:
        return rule
    period = _period_start(rule, target)
    if period <= rule._dtstart:
        return rule
    weekdays = [weekday(day) for day in rule._byweekday or ()]
    weekdays += [weekday(day, n) for day, n in rule._bynweekday or ()]
    return rule.replace(
        dtstart=period,
        bymonth=rule._bymonth,
        bymonthday=rule._bymonthday + rule._bynmonthday,
        byweekday=weekdays or None,
        byhour=None if rule._byhour is None else tuple(rule._byhour),
        byminute=tuple(rule._byminute),
        bysecond=tuple(rule._bysecond),
    )


def _occurrences(rule: rrule, zone: ZoneInfo, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    """(wall-clock, UTC) pairs from wall-clock `start` on, in wall-clock order.

    A wall-clock time in a spring-forward gap gets fold=0, i.e. the offset before the gap
    (PEP 495): 02:30 on that day becomes 03:30 local. An ambiguous time on a fall-back day
    also gets fold=0: its first occurrence, in summer time."""
    for local in _fast_forward(rule, start).xafter(start, inc=True):
        try:
            yield local, local.replace(tzinfo=zone).astimezone(UTC)
        except OverflowError:
            return


def occurrences_between(definition, start: datetime, end: datetime, limit: int) -> list[datetime]:
    """The UTC instants in [start, end), sorted and without duplicates (an hourly rule meets
    the same instant twice at a gap); RuleError when there are more than `limit`."""
    zone = ZoneInfo(definition.timezone)
    rule = build_rule(definition.rrule, definition.dtstart, definition.timezone)
    last = end.astimezone(zone).replace(tzinfo=None) + SLACK
    found: set[datetime] = set()
    for local, instant in _occurrences(rule, zone, start.astimezone(zone).replace(tzinfo=None) - SLACK):
        if local > last:
            break
        if start <= instant < end:
            found.add(instant)
            if len(found) > limit:
                raise RuleError(f"The window holds more than {limit} occurrences.")
    return sorted(found)


def next_occurrences(definition, now: datetime, count: int = 5) -> list[datetime]:
    """The first `count` UTC instants strictly after `now`."""
    zone = ZoneInfo(definition.timezone)
    rule = build_rule(definition.rrule, definition.dtstart, definition.timezone)
    found: set[datetime] = set()
    stop = None
    for local, instant in _occurrences(rule, zone, now.astimezone(zone).replace(tzinfo=None) - SLACK):
        if stop is not None and local > stop:
            break
        if instant > now:
            found.add(instant)
            if stop is None and len(found) >= count:
                stop = local + SLACK
    return sorted(found)[:count]


def _utc_text(local: datetime, zone: ZoneInfo) -> str:
    return local.replace(tzinfo=zone).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar_rule(definition) -> tuple[str, bool]:
    """The definition's rule as an iCalendar feed must publish it, and whether `dtstart` itself
    must be excluded (EXDATE) because the rule does not yield it.

    RFC 5545 3.3.10: with `DTSTART;TZID=` an UNTIL must be in UTC, so a wall-clock or date UNTIL
    is converted (a date includes its whole day, as here). A `dtstart` that the rule does not
    yield is an occurrence for RFC 5545 implementations, but not for python-dateutil (and so not
    for the instances route): it is excluded, and a COUNT, which RFC 5545 counts from `dtstart`,
    becomes the UNTIL of dateutil's last occurrence, so both readings give the same set."""
    zone = ZoneInfo(definition.timezone)
    parts = _split_rule(definition.rrule)
    if "UNTIL" in parts and not parts["UNTIL"].endswith("Z"):
        wall = datetime.strptime(_wall_clock_until(parts["UNTIL"], zone), "%Y%m%dT%H%M%S")
        parts["UNTIL"] = _utc_text(wall, zone)
    rule = build_rule(definition.rrule, definition.dtstart, definition.timezone)
    synchronized = next(iter(rule), None) == definition.dtstart
    if not synchronized and "COUNT" in parts:
        del parts["COUNT"]
        parts["UNTIL"] = _utc_text(list(rule)[-1], zone)
    return ";".join(f"{name}={value}" for name, value in parts.items()), not synchronized
