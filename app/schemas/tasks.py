"""Schemas of tasks, their tags and priorities, and the task list's query string and cursor."""

import hashlib
import json
from datetime import datetime

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from app.schemas.common import (
    NOT_BLANK,
    TAG_NAME_MAX,
    TAGS_PER_ITEM_MAX,
    CalendarDate,
    JsonBoolean,
    Priority,
    QueryBoolean,
    TagNames,
    TrimmedString,
    UserDateTime,
    UTCDateTime,
)

TITLE_MAX = 200
DESCRIPTION_MAX = 10_000
SEARCH_MAX = 200
SORTS = (
    "created_at",
    "-created_at",
    "due_at",
    "-due_at",
    "priority",
    "-priority",
    "updated_at",
    "-updated_at",
)
DATETIME_SORT_KEYS = ("created_at", "updated_at", "due_at")
CURSOR_SALT = "tasks-cursor"
# What a cursor does not pin: the page size may change from one page to the next.
_NOT_PINNED = ("cursor", "limit")


class PrioritySchema(Schema):
    # Answer-only schemas mark every field required: it is in every answer.
    name = fields.String(required=True, metadata={"example": "high"})
    label = fields.String(required=True, metadata={"example": "High"})
    level = fields.Integer(required=True, metadata={"example": 3})


class PriorityListSchema(Schema):
    items = fields.Nested(PrioritySchema, many=True, required=True)


class TagSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = TrimmedString(
        required=True,
        validate=validate.Length(min=1, max=TAG_NAME_MAX),
        metadata={
            "description": "Unique per user, ignoring case (a taken name is 409); trimmed, so a name of "
            "spaces only is 422",
            "pattern": NOT_BLANK,
        },
    )
    color = fields.String(
        allow_none=True,
        validate=validate.Regexp(r"^#[0-9A-Fa-f]{6}\Z", error="Must be a color like #1A2B3C."),
        # The validator's \Z is Python's; the document's regular expressions are ECMA 262.
        metadata={"example": "#FF8800", "pattern": "^#[0-9A-Fa-f]{6}$"},
    )
    created_at = UTCDateTime(dump_only=True)


class TagListSchema(Schema):
    items = fields.Nested(TagSchema, many=True, required=True)


class TaskSchema(Schema):
    id = fields.Integer(dump_only=True)
    title = TrimmedString(
        required=True,
        validate=validate.Length(min=1, max=TITLE_MAX),
        metadata={"description": "Trimmed; a title of spaces only is 422", "pattern": NOT_BLANK},
    )
    description = fields.String(load_default="", validate=validate.Length(max=DESCRIPTION_MAX))
    completed = JsonBoolean(
        load_default=False,
        metadata={"description": "Setting it to true stamps completed_at with the server's time"},
    )
    completed_at = UTCDateTime(dump_only=True, allow_none=True)
    due_at = UserDateTime(
        allow_none=True,
        metadata={
            "description": "Due at an instant. RFC 3339; without an offset: wall-clock time in the "
            "user's `timezone`. Answered in UTC. An instant outside the years 1 to 9999 in UTC is 422. "
            "Setting it clears due_date"
        },
    )
    due_date = CalendarDate(
        allow_none=True,
        metadata={
            "description": "Due on a day, with no time: answered exactly as sent. It stands at the "
            "start of that day in the user's current time zone for due_after, due_before and the "
            "due_at sorts, and is overdue once the whole day has passed there. Setting it clears "
            "due_at; giving both non-null is a 422"
        },
    )
    priority = Priority(attribute="priority_level")
    tags = TagNames(
        attribute="tag_names",
        load_default=list,
        metadata={
            "description": f"Tag names, each trimmed, 1 to {TAG_NAME_MAX} characters; at most "
            f"{TAGS_PER_ITEM_MAX} once names repeated ignoring case count once (the first spelling "
            "wins). Unknown ones are created. Answered sorted by name"
        },
    )
    created_at = UTCDateTime(dump_only=True)
    updated_at = UTCDateTime(dump_only=True)

    @validates_schema
    def one_due(self, data, **kwargs):
        """A task is due at an instant or on a day, not both."""
        if data.get("due_at") is not None and data.get("due_date") is not None:
            message = "Give due_at or due_date, not both."
            raise ValidationError({"due_at": [message], "due_date": [message]})


class TaskListSchema(Schema):
    items = fields.Nested(TaskSchema, many=True, required=True)
    next_cursor = fields.String(
        required=True, allow_none=True, metadata={"description": "Pass as `cursor` for the next page"}
    )


class TaskQueryArgsSchema(Schema):
    completed = QueryBoolean()
    priority = Priority(allow_none=False)
    tag = fields.List(
        TrimmedString(validate=validate.Length(min=1, max=TAG_NAME_MAX), metadata={"pattern": NOT_BLANK}),
        validate=validate.Length(max=TAGS_PER_ITEM_MAX),
        metadata={"description": "Repeat to require every one of the tags (matched ignoring case)"},
    )
    due_after = UserDateTime(
        metadata={
            "description": "Due at or after this instant (a due_date: the start of its day). RFC 3339; "
            "no offset: the user's zone"
        }
    )
    due_before = UserDateTime(
        metadata={
            "description": "Due before this instant (a due_date: the start of its day). RFC 3339; "
            "no offset: the user's zone"
        }
    )
    overdue = QueryBoolean(
        metadata={
            "description": "true: not completed, and due_at has passed or the whole due_date has "
            "passed in the user's time zone"
        }
    )
    q = TrimmedString(
        validate=validate.Length(min=1, max=SEARCH_MAX),
        metadata={
            "description": "Full-text search (English) over title and description, web-search syntax; "
            "trimmed, so spaces only are 422",
            "pattern": NOT_BLANK,
        },
    )
    sort = fields.String(load_default="-created_at", validate=validate.OneOf(SORTS))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    cursor = fields.String(
        metadata={"description": "next_cursor of the previous page, with the same filters"}
    )

    @post_load
    def decode_cursor(self, args, **kwargs):
        if "cursor" in args:
            args["cursor"] = read_cursor(args)
        return args


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=CURSOR_SALT)


def _filters_digest(args: dict) -> str:
    """A short hash of the sort and the filters, which a cursor is only valid with."""
    pinned = {name: value for name, value in args.items() if name not in _NOT_PINNED}
    if "tag" in pinned:
        pinned["tag"] = sorted({name.lower() for name in pinned["tag"]})
    canonical = json.dumps(pinned, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def make_cursor(args: dict, key, task_id: int) -> str:
    """An opaque, signed cursor: after the row (key, task_id) of this sort and these filters."""
    if isinstance(key, datetime):
        key = key.isoformat()
    return _serializer().dumps([_filters_digest(args), key, task_id])


def read_cursor(args: dict) -> tuple:
    """(key, task_id) from a cursor; raises a validation error on `cursor` unless it is ours and
    was made for this very sort and these filters."""
    try:
        digest, key, task_id = _serializer().loads(args["cursor"])
        if key is not None and args["sort"].lstrip("-") in DATETIME_SORT_KEYS:
            key = datetime.fromisoformat(key)
    except (BadData, ValueError, TypeError):
        raise ValidationError("Not a valid cursor.", field_name="cursor") from None
    if digest != _filters_digest(args):
        raise ValidationError("The cursor belongs to another sort or other filters.", field_name="cursor")
    return key, task_id
