"""Schemas of the sync resource: its query string and its answer."""

from marshmallow import Schema, fields, validate

CHANGE_TYPES = ("instance", "recurring_task", "tag", "task")  # in code point order, as changes sort
SYNC_LIMIT_MAX = 1000


class SyncArgsSchema(Schema):
    since = fields.String(
        validate=validate.Length(min=1, max=1000),
        metadata={"description": "`next_since` of the previous answer; absent: a full sync"},
    )
    limit = fields.Integer(
        load_default=500,
        validate=validate.Range(min=1, max=SYNC_LIMIT_MAX),
        metadata={"description": "Changes per answer"},
    )


class ChangeSchema(Schema):
    # Answer-only schemas mark every field required: it is in every answer.
    type = fields.String(required=True, validate=validate.OneOf(CHANGE_TYPES))
    id = fields.Integer(required=True)
    deleted = fields.Boolean(required=True)
    data = fields.Dict(
        required=True,
        allow_none=True,
        metadata={
            "description": "The object as its own GET answers it (an instance: as the instances "
            "route lists it); null for a deletion"
        },
    )


class SyncSchema(Schema):
    changes = fields.Nested(ChangeSchema, many=True, required=True)
    next_since = fields.String(required=True, metadata={"description": "Pass as `since` on the next call"})
    has_more = fields.Boolean(
        required=True, metadata={"description": "true: call again at once with `next_since`"}
    )
