"""The JWTs of a login: minted for its session, and checked against it on every request.

Every token carries its session's id (`sid`); one indexed query per request checks that the
session is still live and loads its user, so revoking the row revokes its tokens on every
worker at once. A route marked `@session_check_in_statement(...)` makes that check part of the
one statement that reads its data instead (`LIVE_SESSION`; no row is a 401 through
`require_live_session`). The loaders also answer each way a token can fail as a 401 problem.
"""

import uuid
from functools import wraps

from flask import current_app, g, request
from flask_jwt_extended import create_access_token, create_refresh_token, get_jwt, get_jwt_header
from flask_jwt_extended.exceptions import RevokedTokenError
from sqlalchemy import bindparam, func, select

from app.errors import problem
from app.extensions import db, jwt
from app.models import AuthSession, User


def tokens_for(session: AuthSession) -> dict:
    """Mint an access and a refresh token bound to `session`."""
    identity = str(session.user_id)
    claims = {"sid": str(session.id)}
    return {
        "access_token": create_access_token(identity, additional_claims=claims),
        "refresh_token": create_refresh_token(
            identity, additional_claims={**claims, "jti": str(session.refresh_jti)}
        ),
        "token_type": "Bearer",
        "expires_in": current_app.config["JWT_ACCESS_TTL"],
    }


# The token's user, if the token's session is still live: the session row is checked, not
# loaded (the routes that need it have its id from the token). Built once at import: it runs on
# every request, and building the select cost more Python time than executing it.
LIVE_SESSION_USER = (
    select(User)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        AuthSession.id == bindparam("session_id"),
        AuthSession.user_id == bindparam("user_id"),
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > func.now(),
    )
)


# The same check as a SQL condition on the table "sessions", for a statement that checks the
# token itself; its parameters are `session_params()`.
LIVE_SESSION = (
    "sessions.id = CAST(:session_id AS uuid) AND sessions.user_id = :user_id"
    " AND sessions.revoked_at IS NULL AND sessions.expires_at > now()"
)


def session_check_in_statement(*methods: str):
    """A MethodView decorator, listed after `jwt_required()`: under `methods` the token's
    signature, expiry and type are checked as usual, but its session is not looked up; the
    view's own statement checks it (`LIVE_SESSION`, `require_live_session`). `current_user.id`
    is then the token's subject, not yet checked; any other attribute of `current_user` checks
    the session and loads the user first (one more statement)."""
    deferred = frozenset(methods)

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            g.session_check_deferred = request.method in deferred
            return view(*args, **kwargs)

        return wrapper

    return decorator


class UncheckedCaller:
    """The caller of a view that checks the session in its own statement: `id` is the token's
    subject; reading any other attribute checks the session and loads the user (or is a 401)."""

    def __init__(self, user_id: int) -> None:
        self.id = user_id

    def __getattr__(self, name: str):
        return getattr(checked_user(), name)


def checked_user() -> User:
    """The caller, after checking that the token's session is live; a 401 otherwise."""
    if g.get("checked_user") is None:
        user = db.session.scalar(LIVE_SESSION_USER, {"session_id": g.session_id, "user_id": g.user_id})
        g.checked_user = require_live_session(user)
    return g.checked_user


def session_params() -> dict:
    """The bind parameters of `LIVE_SESSION` for this request's token."""
    return {"session_id": str(g.session_id), "user_id": g.user_id}


def require_live_session(row):
    """`row`, the answer of a statement that checked `LIVE_SESSION`; None (the session is dead,
    or not the token's user's) is the revoked-token 401."""
    if row is None:
        raise RevokedTokenError(get_jwt_header(), get_jwt())
    return row


@jwt.token_in_blocklist_loader
def _token_revoked(_header: dict, payload: dict) -> bool:
    try:
        session_id = uuid.UUID(payload["sid"])
        user_id = int(payload["sub"])
    except (KeyError, ValueError, TypeError):
        return True
    g.session_id, g.user_id = session_id, user_id
    if g.get("session_check_deferred"):
        g.token_user = UncheckedCaller(user_id)
        return False
    user = db.session.scalar(LIVE_SESSION_USER, {"session_id": session_id, "user_id": user_id})
    g.token_user = g.checked_user = user
    return user is None


@jwt.user_lookup_loader
def _load_user(_header: dict, _payload: dict) -> User:
    # The blocklist check already loaded the user along with checking the session.
    return g.token_user


def _unauthorized(detail: str):
    return problem(401, detail, headers={"WWW-Authenticate": "Bearer"})


@jwt.unauthorized_loader
def _missing_token(reason: str):
    return _unauthorized("Missing bearer token.")


@jwt.invalid_token_loader
def _invalid_token(reason: str):
    return _unauthorized("Invalid token.")


@jwt.expired_token_loader
def _expired_token(_header: dict, _payload: dict):
    return _unauthorized("The token has expired.")


@jwt.revoked_token_loader
def _revoked_token(_header: dict, _payload: dict):
    return _unauthorized("The token has been revoked.")


@jwt.user_lookup_error_loader
def _unknown_user(_header: dict, _payload: dict):
    return _unauthorized("The token's account no longer exists.")


@jwt.needs_fresh_token_loader
def _needs_fresh(_header: dict, _payload: dict):
    return _unauthorized("A fresh token is required.")
