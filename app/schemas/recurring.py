"""Schemas of the recurring-task resource: definitions, their instances and the instance window."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.schemas.common import (
    NOT_BLANK,
    JsonBoolean,
    Priority,
    TagNames,
    TimeZone,
    TrimmedString,
    UserDateTime,
    UTCDateTime,
    parse_datetime,
)

# Occurrences are converted to UTC; these bounds keep every conversion inside datetime's range.
MIN_YEAR, MAX_YEAR = 1900, 9998
MAX_RRULE_LENGTH = 1000
# The shape of every rule the validator accepts: NAME=VALUE parts joined by ";" (what the
# parts may be and how they combine is in the field's description).
RRULE_PATTERN = r"^[A-Za-z]+=[A-Za-z0-9,+-]+(;[A-Za-z]+=[A-Za-z0-9,+-]+)*$"


# What the document admits for a wall-clock time: a date and a time, and in a request an
# optional offset. Answers always have the first form, seconds included and no offset.
WALL_CLOCK_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$"


class WallClock(fields.String):
    """A local date and time without an offset, e.g. 2027-03-25T09:00:00 (seconds precision).

    A string in the OpenAPI document, not a `date-time`: RFC 3339 requires an offset, and a
    typed client would reject the answer. An offset in a request is kept on the loaded value;
    the view converts that instant to wall-clock time in the definition's time zone."""

    default_error_messages = {"invalid": "Not a valid datetime."}

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {})
        kwargs["metadata"] = {"pattern": WALL_CLOCK_PATTERN, **kwargs["metadata"]}
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else value.replace(tzinfo=None).isoformat(timespec="seconds")

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = parse_datetime(self, value)
        if not MIN_YEAR <= parsed.year <= MAX_YEAR:
            raise ValidationError(f"Must be between the years {MIN_YEAR} and {MAX_YEAR}.")
        return parsed.replace(microsecond=0)


class RecurringTaskSchema(Schema):
    id = fields.Integer(dump_only=True)
    title = TrimmedString(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Trimmed; a title of spaces only is 422", "pattern": NOT_BLANK},
    )
    description = fields.String(validate=validate.Length(max=10000))
    priority = Priority(attribute="priority_level")
    tags = TagNames(attribute="tag_names")
    rrule = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_RRULE_LENGTH),
        metadata={
            "description": (
                "An RFC 5545 RRULE value without the `RRULE:` prefix, answered as sent. FREQ is "
                "required and HOURLY or coarser; each part at most once; INTERVAL 1 to 1000; COUNT "
                "1 to 10000 and not with UNTIL; values in RFC 5545's ranges; a rule with no "
                "occurrence at all is 422"
            ),
            "example": "FREQ=WEEKLY;BYDAY=MO,WE",
            "pattern": RRULE_PATTERN,
        },
    )
    dtstart = WallClock(
        required=True,
        metadata={
            "description": (
                "First occurrence, as wall-clock time in `timezone`, years 1900 to 9998. Answered "
                "without an offset (YYYY-MM-DDThh:mm:ss). Sent with an offset, it is that instant "
                "read as wall-clock time in `timezone`; fractions of a second are dropped."
            ),
            "example": "2027-03-25T09:00:00",
        },
    )
    timezone = TimeZone(
        metadata={"description": "An IANA time-zone name (default: the user's); any other name is 422"}
    )
    created_at = UTCDateTime(dump_only=True)
    updated_at = UTCDateTime(dump_only=True)
    next_occurrences = fields.List(
        UTCDateTime(), dump_only=True, metadata={"description": "The next 5 occurrences after now, in UTC"}
    )


class RecurringTaskListSchema(Schema):
    items = fields.Nested(RecurringTaskSchema, many=True, required=True)


class WindowBound(UserDateTime):
    """A UserDateTime inside the years the expansion can convert (year 1 in a zone east of UTC
    is not a datetime in UTC at all)."""

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        if not MIN_YEAR <= moment.year <= MAX_YEAR:
            raise ValidationError(f"Must be between the years {MIN_YEAR} and {MAX_YEAR}.")
        return moment


class TaskInstanceSchema(Schema):
    """An occurrence; a PATCH body changes any of `completed`, `skipped` and `occurs_at`."""

    id = fields.Integer(dump_only=True)
    recurring_task_id = fields.Integer(dump_only=True)
    occurs_at = WindowBound(
        allow_none=True,
        metadata={
            "description": "Where the occurrence is, in UTC. In a PATCH: moves this one occurrence "
            "(without offset: wall-clock time in the user's zone); null moves it back to "
            "`original_occurs_at`"
        },
    )
    original_occurs_at = UTCDateTime(
        dump_only=True, metadata={"description": "Where the rule put the occurrence (its RECURRENCE-ID)"}
    )
    skipped = JsonBoolean(
        metadata={"description": "Skipped (an EXDATE in the calendar feed); false restores it"}
    )
    completed = JsonBoolean()
    completed_at = UTCDateTime(dump_only=True, allow_none=True)


class TaskInstanceListSchema(Schema):
    items = fields.Nested(TaskInstanceSchema, many=True, required=True)


class InstanceWindowArgsSchema(Schema):
    start = WindowBound(
        metadata={
            "description": "Inclusive; default: now. RFC 3339 (no offset: the user's zone), years 1900-9998"
        }
    )
    end = WindowBound(
        metadata={
            "description": "Exclusive; default: start + 30 days; not before start. At most 366 days "
            "and 1,000 occurrences after start (else 422)"
        }
    )

    @validates_schema
    def end_not_before_start(self, data, **kwargs):
        if "start" in data and "end" in data and data["end"] < data["start"]:
            raise ValidationError("Must not be before start.", "end")
