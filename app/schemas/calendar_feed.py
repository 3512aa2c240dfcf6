"""Schema of the calendar-feed resource."""

from marshmallow import Schema, fields

from app.schemas.common import UTCDateTime


class CalendarFeedSchema(Schema):
    url = fields.String(
        dump_only=True,
        metadata={"description": "The subscription URL, secret included; answered only when it is made"},
    )
    created_at = UTCDateTime(dump_only=True)
