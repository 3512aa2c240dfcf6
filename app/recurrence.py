"""Blueprint "recurring_tasks": recurring definitions, their instances, and the RRULE expansion they need.

Occurrences are wall-clock times: the rule is expanded from a naive `dtstart`, and only then is
each occurrence placed in the definition's zone and converted to UTC. That is what keeps "every
day at 09:00 Europe/Berlin" at 09:00 local across daylight-saving changes.
"""

import re
from collections.abc import Iterator
from datetime import MAXYEAR, UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr, weekday
from flask import url_for
from flask.views import MethodView
from flask_jwt_extended import current_user, jwt_required
from flask_smorest import abort
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import selectinload

from app.api import Blueprint
from app.extensions import db
from app.models import RecurringTask, TaskInstance
from app.schemas.recurring import (
    InstanceWindowArgsSchema,
    RecurringTaskListSchema,
    RecurringTaskSchema,
    TaskInstanceListSchema,
    TaskInstanceSchema,
)
from app.tags import resolve_tags

blp = Blueprint(
    "recurring_tasks", __name__, url_prefix="/api/v1/recurring-tasks", description="Recurring tasks"
)

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


DEFAULT_WINDOW = timedelta(days=30)
MAX_WINDOW = timedelta(days=366)
MAX_WINDOW_OCCURRENCES = 1000
SCHEDULE = ("rrule", "dtstart", "timezone")


def _now() -> datetime:
    return datetime.now(UTC)


def _get_definition_or_404(definition_id: int, *, share_lock: bool = False) -> RecurringTask:
    query = select(RecurringTask).where(
        RecurringTask.id == definition_id, RecurringTask.user_id == current_user.id
    )
    if share_lock:
        # FOR SHARE: a reader storing instances and a PATCH changing the schedule wait for each
        # other, so no instance of the old schedule is stored after the change dropped them.
        query = query.with_for_update(read=True)
    definition = db.session.scalar(query)
    if definition is None:
        abort(404, message="Recurring task not found.")
    return definition


def _with_upcoming(definition: RecurringTask) -> RecurringTask:
    definition.next_occurrences = next_occurrences(definition, _now())
    return definition


def _apply(definition: RecurringTask, data: dict) -> None:
    """Copy a loaded body onto the definition; 422 on `rrule` when the schedule cannot be used."""
    for name in ("title", "description", "priority_level", "rrule", "timezone"):
        if name in data:
            setattr(definition, name, data[name])
    if "dtstart" in data:
        dtstart = data["dtstart"]
        if dtstart.tzinfo is not None:
            dtstart = dtstart.astimezone(ZoneInfo(definition.timezone)).replace(tzinfo=None)
        definition.dtstart = dtstart
    try:
        check_schedule(definition.rrule, definition.dtstart, definition.timezone)
    except RuleError as error:
        abort(422, message="Invalid value for: rrule.", errors={"rrule": [str(error)]})
    if "tags" in data:
        definition.tags = resolve_tags(current_user.id, data["tags"])


_DECISIONS = """Times: `dtstart` is wall-clock time in `timezone`; a `dtstart` sent with an offset
is converted to wall-clock time in the definition's `timezone`. Occurrences keep the wall-clock
time across daylight-saving changes. A wall-clock time that does not exist (in a spring-forward
gap, e.g. 02:30) happens the gap's length later (03:30 local, PEP 495 fold=0); an ambiguous one
(fall-back, e.g. 01:30) happens once, the first time (summer time). Occurrences meeting on the
same instant count once. `UNTIL` ending in `Z` is a UTC instant, compared in the definition's
zone; without `Z` it is wall-clock time in `timezone`; a date `UNTIL` includes that whole day.
`COUNT` (at most 10000) and `UNTIL` must not both be given; `INTERVAL` is 1 to 1000; a rule that
yields no occurrence at all is 422."""


@blp.route("")
class RecurringTasks(MethodView):
    decorators = [jwt_required()]

    @blp.response(200, RecurringTaskListSchema)
    def get(self):
        """List the caller's recurring tasks"""
        definitions = db.session.scalars(
            select(RecurringTask)
            .where(RecurringTask.user_id == current_user.id)
            .options(selectinload(RecurringTask.tags))
            .order_by(RecurringTask.id)
        )
        return {"items": [_with_upcoming(definition) for definition in definitions]}

    @blp.arguments(RecurringTaskSchema)
    @blp.response(201, RecurringTaskSchema, headers={"Location": {"schema": {"type": "string"}}})
    @blp.doc(description=_DECISIONS)
    def post(self, data):
        """Create a recurring task"""
        definition = RecurringTask(user_id=current_user.id, timezone=current_user.timezone)
        _apply(definition, data)
        db.session.add(definition)
        db.session.commit()
        location = url_for(".RecurringTaskById", recurring_task_id=definition.id)
        return _with_upcoming(definition), {"Location": location}


@blp.route("/<id:recurring_task_id>")
class RecurringTaskById(MethodView):
    decorators = [jwt_required()]

    @blp.response(200, RecurringTaskSchema)
    def get(self, recurring_task_id):
        """Get a recurring task with its next 5 occurrences"""
        return _with_upcoming(_get_definition_or_404(recurring_task_id))

    @blp.arguments(RecurringTaskSchema(partial=True))
    @blp.response(200, RecurringTaskSchema)
    @blp.doc(
        description=f"""Partial; `tags` replaces the set; null clears
`priority`. Changing `rrule`, `dtstart` or `timezone` deletes the future instances not yet
completed; completed ones stay.\n\n{_DECISIONS}""",
    )
    def patch(self, data, recurring_task_id):
        """Change a recurring task"""
        definition = _get_definition_or_404(recurring_task_id)
        before = [getattr(definition, name) for name in SCHEDULE]
        _apply(definition, data)
        if before != [getattr(definition, name) for name in SCHEDULE]:
            db.session.execute(
                delete(TaskInstance).where(
                    TaskInstance.recurring_task_id == definition.id,
                    TaskInstance.completed.is_(False),
                    TaskInstance.occurs_at >= func.now(),
                )
            )
        definition.updated_at = func.now()
        db.session.commit()
        return _with_upcoming(definition)

    @blp.response(204)
    def delete(self, recurring_task_id):
        """Delete a recurring task and its instances"""
        db.session.delete(_get_definition_or_404(recurring_task_id))
        db.session.commit()


def _window(args: dict) -> tuple[datetime, datetime]:
    """The query's [start, end); 422 on `end` when it is reversed or too long."""
    start = args.get("start", _now())
    end = args.get("end", start + DEFAULT_WINDOW)
    if end < start:
        abort(422, message="Invalid value for: end.", errors={"end": ["Must not be before start."]})
    if end - start > MAX_WINDOW:
        abort(422, message="Invalid value for: end.", errors={"end": ["The window is at most 366 days."]})
    return start, end


@blp.route("/<id:recurring_task_id>/instances")
class TaskInstances(MethodView):
    decorators = [jwt_required()]

    @blp.arguments(InstanceWindowArgsSchema, location="query")
    @blp.response(200, TaskInstanceListSchema)
    def get(self, args, recurring_task_id):
        """List the occurrences in a window, storing them as instances on first read

        `start` is inclusive (default now), `end` exclusive (default start + 30 days); at most 366
        days and 1,000 occurrences. Instances stored before a schedule change (completed ones, past
        ones) are listed too."""
        definition = _get_definition_or_404(recurring_task_id, share_lock=True)
        start, end = _window(args)
        try:
            instants = occurrences_between(definition, start, end, MAX_WINDOW_OCCURRENCES)
        except RuleError as error:
            abort(422, message="Invalid value for: end.", errors={"end": [str(error)]})
        if instants:
            rows = [{"recurring_task_id": definition.id, "occurs_at": instant} for instant in instants]
            db.session.execute(
                insert(TaskInstance)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["recurring_task_id", "occurs_at"])
            )
        db.session.commit()
        # Read after the commit: one query that also sees rows stored by concurrent readers.
        items = db.session.scalars(
            select(TaskInstance)
            .where(
                TaskInstance.recurring_task_id == definition.id,
                TaskInstance.occurs_at >= start,
                TaskInstance.occurs_at < end,
            )
            .order_by(TaskInstance.occurs_at, TaskInstance.id)
        )
        return {"items": list(items)}


@blp.route("/<id:recurring_task_id>/instances/<id:instance_id>")
class TaskInstanceById(MethodView):
    decorators = [jwt_required()]

    @blp.arguments(TaskInstanceSchema)
    @blp.response(200, TaskInstanceSchema)
    def patch(self, data, recurring_task_id, instance_id):
        """Complete or reopen an instance

        `completed: true` sets `completed_at` to the server's now (an instance already completed
        keeps its time); `false` clears it."""
        instance = db.session.scalar(
            select(TaskInstance)
            .join(RecurringTask, RecurringTask.id == TaskInstance.recurring_task_id)
            .where(
                TaskInstance.id == instance_id,
                TaskInstance.recurring_task_id == recurring_task_id,
                RecurringTask.user_id == current_user.id,
            )
        )
        if instance is None:
            abort(404, message="Instance not found.")
        if data["completed"] != instance.completed:
            instance.completed = data["completed"]
            instance.completed_at = func.now() if data["completed"] else None
        db.session.commit()
        return instance
