"""Fields and schemas that several resources share."""

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, available_timezones

from email_validator import EmailNotValidError, validate_email
from marshmallow import ValidationError, fields, validate

MAX_EMAIL_LENGTH = 254
TAG_NAME_MAX = 50
TAGS_PER_ITEM_MAX = 20
# The priorities table's rows, by name; the seed and the first migration insert exactly these.
PRIORITY_LEVELS = {"low": 1, "medium": 2, "high": 3, "urgent": 4}
PRIORITY_NAMES = {level: name for name, level in PRIORITY_LEVELS.items()}
# The document's component for a priority name; app/__init__.py adds it to the document.
PRIORITY_NAME_SCHEMA = {"type": "string", "enum": list(PRIORITY_LEVELS), "description": "A priority by name"}
PRIORITY_NAME_REF = "#/components/schemas/PriorityName"
_TIMEZONES = frozenset(available_timezones())
# For the OpenAPI document: a string with a character that is not whitespace. Trimmed fields with
# a minimum length refuse a value of spaces only, whatever its length before trimming.
NOT_BLANK = r"\S"


def with_metadata(kwargs: dict, **defaults) -> dict:
    """Field keyword arguments whose `metadata` (the field's OpenAPI properties) has `defaults`
    under what the caller gave: how a custom field tells the document what it checks."""
    return {**kwargs, "metadata": {**defaults, **kwargs.get("metadata", {})}}


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def normalize_email(value: str) -> str:
    return value.strip().lower()


class Email(fields.String):
    """An email address: trimmed, lower-cased, syntactically valid, at most 254 characters."""

    def __init__(self, **kwargs):
        super().__init__(
            **with_metadata(
                kwargs,
                format="email",
                maxLength=MAX_EMAIL_LENGTH,
                description="Trimmed and lower-cased; checked for syntax only (no DNS look-up)",
            )
        )

    def _deserialize(self, value, attr, data, **kwargs):
        email = normalize_email(super()._deserialize(value, attr, data, **kwargs))
        if len(email) > MAX_EMAIL_LENGTH:
            raise ValidationError(f"Must be at most {MAX_EMAIL_LENGTH} characters.")
        try:
            # Syntax only: test_environment also admits the reserved .test domain (RFC 2606).
            validate_email(email, check_deliverability=False, test_environment=True)
        except EmailNotValidError:
            raise ValidationError("Not a valid email address.") from None
        return email


class TimeZone(fields.String):
    """An IANA time zone name such as Europe/Berlin."""

    def __init__(self, **kwargs):
        super().__init__(
            **with_metadata(
                kwargs,
                description="An IANA time-zone name, e.g. Europe/Berlin; any other name is 422",
                example="Europe/Berlin",
            )
        )

    def _deserialize(self, value, attr, data, **kwargs):
        name = super()._deserialize(value, attr, data, **kwargs).strip()
        if name not in _TIMEZONES:
            raise ValidationError("Not a known IANA time zone name.")
        return name


class TrimmedString(fields.String):
    """A string with surrounding whitespace removed before validation."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class JsonBoolean(fields.Boolean):
    """A JSON `true` or `false` in a body; "yes", 1 or "true" are not booleans there."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class QueryBoolean(fields.Boolean):
    """`true` or `false` in a query string (any case); "1" or "yes" are a 422, not a guess."""

    truthy = {"true", "True", "TRUE"}
    falsy = {"false", "False", "FALSE"}


class UTCDateTime(fields.AwareDateTime):
    """An RFC 3339 datetime, answered in UTC whatever the database session's zone."""

    def _serialize(self, value, attr, obj, **kwargs):
        # isoformat() is the field's own "iso" format, called directly: four of these per task.
        return None if value is None else value.astimezone(UTC).isoformat()

    @staticmethod
    def sql(column: str) -> str:
        """SQL formatting the timestamptz `column` as `_serialize` does: UTC, "+00:00", and
        microseconds only when not zero (isoformat()); NULL stays NULL."""
        utc = f"({column} AT TIME ZONE 'UTC')"
        return (
            f"to_char({utc}, CASE WHEN date_trunc('second', {utc}) = {utc}"
            """ THEN 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"' END)"""
        )


def parse_datetime(field: fields.Field, value) -> datetime:
    """An RFC 3339 / ISO 8601 string as a datetime, naive when it has no offset;
    otherwise the field's "invalid" error."""
    if not isinstance(value, str):
        raise field.make_error("invalid", input=value, obj_type="datetime")
    try:
        return datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise field.make_error("invalid", input=value, obj_type="datetime") from None


class UserDateTime(UTCDateTime):
    """A request datetime: with an offset it is that instant; without one it is
    wall-clock time in the calling user's time zone. Loaded as an aware UTC datetime."""

    def __init__(self, **kwargs):
        super().__init__(
            **with_metadata(
                kwargs,
                description=(
                    "RFC 3339. Answered in UTC. A request may leave out the offset: the time is then "
                    "wall-clock time in the user's `timezone`. An instant outside the years 1 to "
                    "9999 in UTC is 422"
                ),
            )
        )

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = parse_datetime(self, value)
        if parsed.tzinfo is None:
            from app.tokens import checked_user  # here: app.tokens imports the models, which import this

            parsed = parsed.replace(tzinfo=ZoneInfo(checked_user().timezone))
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # year 1 east of UTC, or 9999-12-31 west of it: no such instant in UTC
            raise ValidationError("Out of the range of representable datetimes.") from None


class CalendarDate(fields.Date):
    """A calendar date, exactly `YYYY-MM-DD` (years 0001 to 9999), with no time and no zone:
    answered exactly as sent. A datetime, a week date or `20270101` is invalid."""

    default_error_messages = {"invalid": "Not a valid date: YYYY-MM-DD."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
            raise self.make_error("invalid")
        try:
            return date.fromisoformat(value)
        except ValueError:  # 2027-02-30, year 0000
            raise self.make_error("invalid") from None


class Priority(fields.String):
    """A priority by name (low, medium, high, urgent) or null; stored as its level."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_none", True)
        # In the document: one named enum, or null (null spelled out in OpenAPI 3.0's way), so
        # that a generated client has one PriorityName type and None for the field.
        if kwargs["allow_none"]:
            metadata = {
                "anyOf": [{"$ref": PRIORITY_NAME_REF}, {"type": "string", "nullable": True, "enum": [None]}]
            }
        else:
            metadata = {"enum": list(PRIORITY_LEVELS)}
        super().__init__(**with_metadata(kwargs, **metadata))

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else PRIORITY_NAMES[value]

    @staticmethod
    def sql(column: str) -> str:
        """SQL naming the level in `column` as `_serialize` does; NULL stays NULL."""
        cases = " ".join(f"WHEN {level} THEN '{name}'" for level, name in PRIORITY_NAMES.items())
        return f"CASE {column} {cases} END"

    def _deserialize(self, value, attr, data, **kwargs):
        name = super()._deserialize(value, attr, data, **kwargs)
        if name not in PRIORITY_LEVELS:
            raise ValidationError(f"Must be one of: {', '.join(PRIORITY_LEVELS)}.")
        return PRIORITY_LEVELS[name]


class TagNames(fields.List):
    """A list of tag names: each trimmed, 1 to 50 characters; at most 20; repeats (ignoring
    case) count once, the first spelling winning. Dumped from a model's `tag_names`."""

    def __init__(self, **kwargs):
        name = TrimmedString(
            validate=validate.Length(min=1, max=TAG_NAME_MAX), metadata={"pattern": NOT_BLANK}
        )
        description = (
            f"Tag names, each trimmed, 1 to {TAG_NAME_MAX} characters; at most {TAGS_PER_ITEM_MAX} "
            "once names repeated ignoring case count once (the first spelling wins)"
        )
        super().__init__(name, **with_metadata(kwargs, maxItems=TAGS_PER_ITEM_MAX, description=description))

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else list(value)

    def _deserialize(self, value, attr, data, **kwargs):
        names = super()._deserialize(value, attr, data, **kwargs)
        first_spellings: dict[str, str] = {}
        for name in names:
            first_spellings.setdefault(name.lower(), name)
        unique = list(first_spellings.values())
        if len(unique) > TAGS_PER_ITEM_MAX:
            raise ValidationError(f"At most {TAGS_PER_ITEM_MAX} tags.")
        return unique
