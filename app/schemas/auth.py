"""Schemas of the auth resource: users, logins, tokens, sessions; and the health document."""

import re

from flask import g
from marshmallow import Schema, fields, missing, post_load, validate

from app.schemas.common import Email, TimeZone, TrimmedString, UTCDateTime, normalize_email

PASSWORD_LENGTH = validate.Length(min=8, max=128)
NAME_LENGTH = validate.Length(max=100)
# secrets.token_urlsafe's alphabet, with room to spare in length: anything else cannot be a token.
RESET_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,256}")


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


class ResetToken(fields.String):
    """The token of a reset mail: any value sent loads, and one that cannot be a token loads as None.

    A token that is not a string, is empty or over-long, or holds characters outside the URL-safe
    alphabet (NUL and lone surrogates included) is malformed, and the contract answers a
    malformed token 400 like an unknown one, not 422. Only a missing token is a validation error.
    """

    # Only the token's hash reaches the database, so text PostgreSQL cannot store (NUL, lone
    # surrogates) is this field's to judge: the request parser lets it through (app/api.py).
    never_stored = True

    def deserialize(self, value, attr=None, data=None, **kwargs):
        if value is missing:
            return super().deserialize(value, attr, data, **kwargs)  # required: 422
        return value if isinstance(value, str) and RESET_TOKEN_SHAPE.fullmatch(value) else None


class PasswordResetConfirmSchema(Schema):
    token = ResetToken(
        required=True,
        load_only=True,
        metadata={
            "description": "The token from the reset mail. A token that is unknown, expired, already "
            "used or malformed (not a string, empty, longer than 256 characters, or with characters "
            "other than A-Z a-z 0-9 - _) is answered 400; a missing one 422."
        },
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
