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
    timezone = TimeZone(
        metadata={
            "description": "An IANA time-zone name, e.g. Europe/Berlin (default UTC); any other name is 422"
        }
    )


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


# Answer-only schemas (tokens, sessions, health) mark every field required: it is in every answer,
# and a typed client then needs no "unset" case for it.
class TokenSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer", "enum": ["Bearer"]})
    expires_in = fields.Integer(
        required=True, metadata={"description": "Seconds until the access token expires"}
    )


class SessionSchema(Schema):
    id = fields.UUID(required=True)
    created_at = UTCDateTime(required=True)
    last_used_at = UTCDateTime(
        required=True, metadata={"description": "When the session last logged in or refreshed its tokens"}
    )
    user_agent = fields.String(required=True)
    # Whether the session is the caller's: known only in the request, not on the row.
    current = fields.Function(
        required=True,
        serialize=lambda session: session.id == g.session_id,
        metadata={"type": "boolean", "description": "Whether the calling token belongs to it"},
    )


class SessionListSchema(Schema):
    items = fields.Nested(SessionSchema, many=True, required=True)


class PasswordResetRequestSchema(Schema):
    email = Email(required=True, metadata={"example": "ada@example.com"})


class PasswordResetConfirmSchema(Schema):
    token = fields.String(
        required=True, load_only=True, metadata={"description": "The token from the reset mail"}
    )
    new_password = fields.String(required=True, load_only=True, validate=PASSWORD_LENGTH)


class ChangePasswordSchema(Schema):
    current_password = fields.String(
        required=True, load_only=True, metadata={"description": "A wrong one is 400"}
    )
    new_password = fields.String(required=True, load_only=True, validate=PASSWORD_LENGTH)


class DeleteAccountSchema(Schema):
    password = fields.String(
        required=True, load_only=True, metadata={"description": "The current password; a wrong one is 400"}
    )


class AcceptedSchema(Schema):
    detail = fields.String(required=True)


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok", "enum": ["ok", "unavailable"]})
    database = fields.String(required=True, metadata={"example": "ok", "enum": ["ok", "unreachable"]})
