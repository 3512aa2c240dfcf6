"""marshmallow schemas: one per resource, plus query-argument schemas.

They validate requests and document them in /openapi.json; a body field the
schema does not know is a 422 (marshmallow's RAISE, the default).
"""

from datetime import UTC
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email
from marshmallow import Schema, ValidationError, fields, post_load, validate

MAX_EMAIL_LENGTH = 254
PASSWORD_LENGTH = validate.Length(min=8, max=128)
NAME_LENGTH = validate.Length(max=100)
_TIMEZONES = frozenset(available_timezones())


def normalize_email(value: str) -> str:
    return value.strip().lower()


class Email(fields.String):
    """An email address: trimmed, lower-cased, syntactically valid, at most 254 characters."""

    def _deserialize(self, value, attr, data, **kwargs):
        email = normalize_email(super()._deserialize(value, attr, data, **kwargs))
        if len(email) > MAX_EMAIL_LENGTH:
            raise ValidationError(f"Must be at most {MAX_EMAIL_LENGTH} characters.")
        try:
            validate_email(email, check_deliverability=False)
        except EmailNotValidError:
            raise ValidationError("Not a valid email address.") from None
        return email


class TimeZone(fields.String):
    """An IANA time zone name such as Europe/Berlin."""

    def _deserialize(self, value, attr, data, **kwargs):
        name = super()._deserialize(value, attr, data, **kwargs).strip()
        if name not in _TIMEZONES:
            raise ValidationError("Not a known IANA time zone name.")
        return name


class UTCDateTime(fields.AwareDateTime):
    """An RFC 3339 datetime, answered in UTC whatever the database session's zone."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is not None:
            value = value.astimezone(UTC)
        return super()._serialize(value, attr, obj, **kwargs)


class TrimmedString(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class ProfileSchema(Schema):
    """The fields of a user that the user may change."""

    first_name = TrimmedString(validate=NAME_LENGTH)
    last_name = TrimmedString(validate=NAME_LENGTH)
    timezone = TimeZone(metadata={"description": "IANA time zone name", "example": "Europe/Berlin"})


class UserSchema(ProfileSchema):
    id = fields.Integer(dump_only=True)
    email = Email(required=True, metadata={"example": "ada@example.com"})
    password = fields.String(required=True, load_only=True, validate=PASSWORD_LENGTH)
    created_at = UTCDateTime(dump_only=True)


class LoginSchema(Schema):
    email = fields.String(required=True)
    password = fields.String(required=True, load_only=True)

    @post_load
    def normalize(self, data, **kwargs):
        data["email"] = normalize_email(data["email"])
        return data


class TokenSchema(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String(metadata={"example": "Bearer"})
    expires_in = fields.Integer(metadata={"description": "Seconds until the access token expires"})


class SessionSchema(Schema):
    id = fields.UUID()
    created_at = UTCDateTime()
    last_used_at = UTCDateTime(
        metadata={"description": "When the session last logged in or refreshed its tokens"}
    )
    user_agent = fields.String()
    current = fields.Boolean(metadata={"description": "Whether the calling token belongs to it"})


class SessionListSchema(Schema):
    items = fields.List(fields.Nested(SessionSchema))


class HealthSchema(Schema):
    status = fields.String(metadata={"example": "ok"})
    database = fields.String(metadata={"example": "ok"})
