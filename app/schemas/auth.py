"""Schemas of the auth resource: users, logins, tokens, sessions; and the health document."""

from flask import g
from marshmallow import Schema, fields, post_load, validate

from app.schemas.common import Email, TimeZone, TrimmedString, UTCDateTime, normalize_email

PASSWORD_LENGTH = validate.Length(min=8, max=128)
NAME_LENGTH = validate.Length(max=100)


class ProfileSchema(Schema):
    """The fields of a user that the user may change."""

    first_name = TrimmedString(validate=NAME_LENGTH)
    last_name = TrimmedString(validate=NAME_LENGTH)
    timezone = TimeZone(metadata={"description": "IANA time zone name", "example": "Europe/Berlin"})


class UserSchema(ProfileSchema):
    """A user as answered: never a password."""

    id = fields.Integer(dump_only=True)
    email = Email(required=True, metadata={"example": "ada@example.com"})
    created_at = UTCDateTime(dump_only=True)


class RegistrationSchema(UserSchema):
    """A new user: a User with a password. A schema of its own, so that the document's User
    (an answer) has no required password that a generated client would look for."""

    password = fields.String(required=True, load_only=True, validate=PASSWORD_LENGTH)


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
    # Whether the session is the caller's: known only in the request, not on the row.
    current = fields.Function(
        lambda session: session.id == g.session_id,
        metadata={"type": "boolean", "description": "Whether the calling token belongs to it"},
    )


class SessionListSchema(Schema):
    items = fields.Nested(SessionSchema, many=True)


class PasswordResetRequestSchema(Schema):
    email = Email(required=True, metadata={"example": "ada@example.com"})


class PasswordResetConfirmSchema(Schema):
    token = fields.String(
        required=True, load_only=True, metadata={"description": "The token from the reset mail"}
    )
    new_password = fields.String(required=True, load_only=True, validate=PASSWORD_LENGTH)


class ChangePasswordSchema(Schema):
    current_password = fields.String(required=True, load_only=True)
    new_password = fields.String(required=True, load_only=True, validate=PASSWORD_LENGTH)


class DeleteAccountSchema(Schema):
    password = fields.String(required=True, load_only=True, metadata={"description": "The current password"})


class AcceptedSchema(Schema):
    detail = fields.String()


class HealthSchema(Schema):
    status = fields.String(metadata={"example": "ok"})
    database = fields.String(metadata={"example": "ok"})
