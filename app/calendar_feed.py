"""Blueprint "calendar_feed": a secret URL per user that calendar applications subscribe to.

Calendar applications poll a URL and cannot send a bearer token, so the URL carries the secret:
`secrets.token_urlsafe(32)`, of which only the SHA-256 is stored (a copy of the database holds
no usable URL). A user has at most one; a new one replaces it, DELETE revokes it.

The feed is one VCALENDAR built with the `icalendar` package: a VEVENT per open task with a due,
and a VEVENT per recurring task whose RRULE, EXDATEs (skipped occurrences), RDATEs (occurrences
kept across a schedule change) and RECURRENCE-ID overrides (moved occurrences) expand, in any
RFC 5545 implementation, to the occurrences the instances route answers. Only stored instances
can be exceptions; an occurrence never stored is the rule's, so the RRULE covers it. Every value
comes from the stored objects (DTSTAMP and LAST-MODIFIED are their `updated_at`), never from the
time of the request, so the body, and with it the ETag, changes when and only when the content
does.
"""

import hashlib
import re
import secrets
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Response, request, url_for
from flask.views import MethodView
from flask_smorest import abort
from icalendar import Calendar, Event, vRecur
from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert

from app.api import Blueprint
from app.extensions import db
from app.models import CalendarFeed, RecurringTask, Task, TaskInstance, User
from app.rate_limits import rate_limited
from app.rrules import calendar_rule
from app.schemas.calendar_feed import CalendarFeedSchema
from app.tokens import current_user, token_required

blp = Blueprint("calendar_feed", __name__, description="Calendar feed (iCalendar, RFC 5545)")

SECRET_BYTES = 32
# secrets.token_urlsafe's alphabet: anything else cannot be a secret, and is not looked up.
_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{43,256}")
PRODID = "-//Todo API//Calendar feed//EN"
CALENDAR_NAME = "Tasks"
# UIDs must not change with the host name the feed is fetched by.
UID_DOMAIN = "todo-api"
# VTIMEZONE components cover the feed's own times and, after them, this far: the rules go on.
ZONE_HORIZON = date(2100, 1, 1)
CALENDAR_TYPE = "text/calendar; charset=utf-8"
NOT_FOUND = "No calendar feed has this URL."


def _secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@blp.route("/api/v1/calendar-feed")
class CalendarFeeds(MethodView):
    decorators = [token_required()]

    @blp.response(201, CalendarFeedSchema)
    def post(self):
        """Make a new feed URL; the previous one stops working

        The answer is the only place the secret URL appears: it is not stored, only its hash."""
        secret = secrets.token_urlsafe(SECRET_BYTES)
        values = {"secret_hash": _secret_hash(secret), "created_at": func.now()}
        created_at = db.session.scalar(
            insert(CalendarFeed)
            .values(user_id=current_user.id, **values)
            .on_conflict_do_update(index_elements=["user_id"], set_=values)
            .returning(CalendarFeed.created_at)
        )
        db.session.commit()
        url = url_for("calendar_feed.CalendarFile", secret=secret, _external=True)
        return {"url": url, "created_at": created_at}

    @blp.response(200, CalendarFeedSchema)
    @blp.problem_response(404, "The user has no calendar feed")
    def get(self):
        """Whether the caller has a feed, and since when (the URL itself is not shown again)"""
        feed = db.session.get(CalendarFeed, current_user.id)
        if feed is None:
            abort(404, message="You have no calendar feed.")
        return feed

    @blp.response(204)
    def delete(self):
        """Revoke the feed URL (also when there is none: the answer is the same)"""
        db.session.execute(delete(CalendarFeed).where(CalendarFeed.user_id == current_user.id))
        db.session.commit()


@blp.route("/calendar/<secret>.ics")
class CalendarFile(MethodView):
    decorators = [rate_limited()]

    @blp.doc(security=[], responses={200: {"content": {"text/calendar": {"schema": {"type": "string"}}}}})
    @blp.response(
        200,
        content_type="text/calendar",
        description="The feed, `text/calendar; charset=utf-8`",
        headers={"ETag": {"description": "A hash of the body", "schema": {"type": "string"}}},
    )
    @blp.alt_response(304, description="The feed is unchanged since the `If-None-Match` ETag")
    @blp.problem_response(404, "Unknown or revoked feed URL")
    @blp.problem_response(429, "Too many requests from this address (RATELIMIT_AUTH); see Retry-After")
    def get(self, secret):
        """The calendar feed (no token: the secret URL is the credential)

        `ETag` is a hash of the body; `If-None-Match` answers 304 until the content changes.
        `Cache-Control: private`, `Referrer-Policy: no-referrer`; the request log shows the route,
        never the secret. Limited per client address like the auth routes (`RATELIMIT_AUTH`).

        UIDs are `task-<id>@todo-api` and `recurring-<id>@todo-api`; DTSTAMP and LAST-MODIFIED
        are the object's `updated_at`. Events have no DTEND (an instant; a `due_date` is one
        day). A recurring task in a zone that is UTC (`UTC`, `Etc/UTC`) is written in UTC
        (`...Z`), RFC 5545's own form for it. EXDATE and RECURRENCE-ID are wall-clock times in
        the task's zone, except a time that the zone's clock shows twice the second time
        round, written in UTC. A `dtstart` that the rule itself does not yield (python-dateutil
        leaves it out; RFC 5545 counts it) is an EXDATE, and with COUNT the rule is published
        with the UNTIL of its last occurrence. Occurrences kept across a schedule change are
        RDATEs. Subscribed calendars are read-only: changes go through the API."""
        body = build_calendar(_feed_owner_or_404(secret))
        response = Response(body, content_type=CALENDAR_TYPE)
        response.set_etag(hashlib.sha256(body).hexdigest()[:32])
        response.headers["Cache-Control"] = "private"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response.make_conditional(request)


def _feed_owner_or_404(secret: str) -> User:
    if not _SECRET_SHAPE.fullmatch(secret):
        abort(404, message=NOT_FOUND)
    user = db.session.scalar(
        select(User).join(CalendarFeed).where(CalendarFeed.secret_hash == _secret_hash(secret))
    )
    if user is None:
        abort(404, message=NOT_FOUND)
    return user


def build_calendar(user: User) -> bytes:
    """The user's feed as iCalendar bytes (CRLF lines, folded, UTF-8); deterministic."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", CALENDAR_NAME)
    tasks = db.session.scalars(
        select(Task).where(Task.user_id == user.id, Task.completed.is_(False), _has_due()).order_by(Task.id)
    )
    for task in tasks:
        calendar.add_component(_task_event(task))
    definitions = db.session.scalars(
        select(RecurringTask).where(RecurringTask.user_id == user.id).order_by(RecurringTask.id)
    ).all()
    exceptions = _exceptions(user.id)
    for definition in definitions:
        for event in _series_events(definition, exceptions.get(definition.id, [])):
            calendar.add_component(event)
    first, last = _span(definitions, exceptions)
    calendar.add_missing_timezones(first_date=first, last_date=last)
    return calendar.to_ical()


def _span(definitions: list[RecurringTask], exceptions: dict[int, list[TaskInstance]]) -> tuple[date, date]:
    """The dates the VTIMEZONE components must cover: from the earliest time written with a
    TZID to ZONE_HORIZON (or past the latest such time). A day of margin either side."""
    days = [definition.dtstart.date() for definition in definitions]
    for rows in exceptions.values():
        days += [moment.date() for row in rows for moment in (row.occurs_at, row.original_occurs_at)]
    first, last = min(days, default=ZONE_HORIZON), max(days, default=ZONE_HORIZON)
    return first - timedelta(days=2), max(last + timedelta(days=2), ZONE_HORIZON)


# --- Tasks ---------------------------------------------------------------------------------


def _has_due():
    """SQL condition: the task has a due, an instant (`due_at`) or a day (`due_date`)."""
    return or_(Task.due_at.is_not(None), Task.due_date.is_not(None))


def _task_start(task: Task) -> datetime | date:
    """DTSTART of a task: `due_at` in UTC, else `due_date` as an all-day date (VALUE=DATE; RFC 5545
    3.6.1: an anniversary-like event with no time, the same day in every zone)."""
    if task.due_at is not None:
        return task.due_at.astimezone(UTC)
    return task.due_date


def _describe(event: Event, uid: str, item, modified: datetime) -> Event:
    event.add("uid", uid)
    event.add("dtstamp", modified.astimezone(UTC))
    event.add("last-modified", modified.astimezone(UTC))
    event.add("summary", item.title)
    event.add("description", item.description)
    if item.tag_names:
        event.add("categories", list(item.tag_names))
    return event


def _task_event(task: Task) -> Event:
    event = _describe(Event(), f"task-{task.id}@{UID_DOMAIN}", task, task.updated_at)
    event.add("dtstart", _task_start(task))
    return event


# --- Recurring tasks -----------------------------------------------------------------------


def _exceptions(user_id: int) -> dict[int, list[TaskInstance]]:
    """The user's stored instances that are not plainly the rule's: skipped, moved or detached."""
    rows = db.session.scalars(
        select(TaskInstance)
        .join(RecurringTask, RecurringTask.id == TaskInstance.recurring_task_id)
        .where(
            RecurringTask.user_id == user_id,
            or_(
                TaskInstance.skipped,
                TaskInstance.detached,
                TaskInstance.occurs_at != TaskInstance.original_occurs_at,
            ),
        )
        .order_by(TaskInstance.recurring_task_id, TaskInstance.original_occurs_at)
    )
    found: dict[int, list[TaskInstance]] = {}
    for row in rows:
        found.setdefault(row.recurring_task_id, []).append(row)
    return found


def _zoned(instant: datetime, zone: ZoneInfo) -> datetime:
    """`instant` as wall-clock time in `zone` (written with TZID) when that wall-clock time names
    it unambiguously for RFC 5545 (which reads an ambiguous time as the first one); else in UTC."""
    local = instant.astimezone(zone)
    if local.replace(fold=0).astimezone(UTC) == instant.astimezone(UTC):
        return local.replace(fold=0)
    return instant.astimezone(UTC)


def _series_events(definition: RecurringTask, exceptions: list[TaskInstance]) -> list[Event]:
    """The definition's master VEVENT, then one override per moved (and not skipped) occurrence."""
    zone = ZoneInfo(definition.timezone)
    uid = f"recurring-{definition.id}@{UID_DOMAIN}"
    rule, exclude_dtstart = calendar_rule(definition)
    master = _describe(Event(), uid, definition, definition.updated_at)
    master.add("dtstart", definition.dtstart.replace(tzinfo=zone))
    master.add("rrule", vRecur.from_ical(rule))
    excluded = [definition.dtstart.replace(tzinfo=zone)] if exclude_dtstart else []
    excluded += [_zoned(row.original_occurs_at, zone) for row in exceptions if row.skipped]
    for moment in excluded:
        master.add("exdate", moment)
    for row in exceptions:
        if row.detached:
            master.add("rdate", _zoned(row.original_occurs_at, zone))
    overrides = []
    for row in exceptions:
        if row.occurs_at != row.original_occurs_at and not row.skipped:
            override = _describe(Event(), uid, definition, definition.updated_at)
            override.add("recurrence-id", _zoned(row.original_occurs_at, zone))
            override.add("dtstart", _zoned(row.occurs_at, zone))
            overrides.append(override)
    return [master, *overrides]
