"""The JWTs of a login: minted for its session, and checked against it on every request.

Every token carries its session's id (`sid`); one indexed query per request checks that the
session is still live and loads its user, so revoking the row revokes its tokens on every
worker at once. The loaders also answer each way a token can fail as a 401 problem.
"""

import uuid

from flask import current_app, g
from flask_jwt_extended import create_access_token, create_refresh_token
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


@jwt.token_in_blocklist_loader
def _token_revoked(_header: dict, payload: dict) -> bool:
    try:
        session_id = uuid.UUID(payload["sid"])
        user_id = int(payload["sub"])
    except (KeyError, ValueError, TypeError):
        return True
    user = db.session.scalar(LIVE_SESSION_USER, {"session_id": session_id, "user_id": user_id})
    g.session_id, g.token_user = session_id, user
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
