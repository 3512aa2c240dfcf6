"""The JWTs of a login: minted for its session, and checked against it on every request.

Every token carries its session's id (`sid`); one indexed query per request checks that the
session is still live and loads its user, so revoking the row revokes its tokens on every
worker at once. A route declared with `token_required(session_check_in_statement=...)` makes
that check part of the one statement that reads its data instead (`LIVE_SESSION`; no row is a
401 through `require_live_session`).

flask-jwt-extended mints both kinds of token and checks refresh tokens (`POST /refresh`, with
the loaders at the end of this module). Access tokens, on every other protected route, are
checked here with one PyJWT decode under the same settings (`JWT_SECRET_KEY`,
`JWT_ALGORITHM`, `JWT_DECODE_LEEWAY`, audience, issuer): flask-jwt-extended's
`verify_jwt_in_request` decodes each token four times (twice unverified, for its loaders'
benefit), and PyJWT 2.15 checks every base64url character of every decode in Python, which
made the token a quarter of a `GET /me`'s time (README, Performance). The header is read as
flask-jwt-extended reads it, and each failure answers the 401 its loader answered before.
"""

import re
import uuid
from collections.abc import Iterable
from functools import wraps

import jwt as pyjwt
from flask import current_app, g, request
from flask_jwt_extended import create_access_token, create_refresh_token
from sqlalchemy import bindparam, func, select
from werkzeug.local import LocalProxy

from app.errors import problem
from app.extensions import db, jwt
from app.models import AuthSession, User

MISSING_TOKEN = "Missing bearer token."
INVALID_TOKEN = "Invalid token."
EXPIRED_TOKEN = "The token has expired."
REVOKED_TOKEN = "The token has been revoked."
_HEADER_VALUES = re.compile(r",\s*")


class TokenRejected(Exception):
    """The request's access token cannot authenticate it: answered 401 with `detail`."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


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


def bearer_token() -> str:
    """The JWT of the request's `Authorization: Bearer <JWT>` header, read as flask-jwt-extended
    reads it (the header may list other schemes, comma-separated). Raises TokenRejected: no
    header, or not exactly one Bearer value, is MISSING_TOKEN; a Bearer value that is not one
    token is INVALID_TOKEN."""
    header = request.headers.get("Authorization", "").strip().strip(",")
    bearer = [value for value in _HEADER_VALUES.split(header) if value and value.split()[0] == "Bearer"]
    if len(bearer) != 1:
        raise TokenRejected(MISSING_TOKEN)
    parts = bearer[0].split()
    if len(parts) != 2:
        raise TokenRejected(INVALID_TOKEN)
    return parts[1]


def access_claims() -> dict:
    """The verified claims of the request's access token, decoded once per request.

    Checks, with one `jwt.decode` (RFC 7519 section 7.2) under flask-jwt-extended's settings:
    the signature with `JWT_ALGORITHM`, `exp`, `nbf` and `iat` with `JWT_DECODE_LEEWAY` seconds,
    the configured audience and issuer, the identity claim, and `type` "access" (a refresh token
    is INVALID_TOKEN, as flask-jwt-extended answers a wrong token type). Raises TokenRejected;
    the outcome, claims or rejection, is kept in `g` for the rest of the request."""
    outcome = g.get("access_claims")
    if outcome is None:
        try:
            outcome = _decode(bearer_token())
        except TokenRejected as rejected:
            outcome = rejected
        g.access_claims = outcome
    if isinstance(outcome, TokenRejected):
        raise outcome
    return outcome


def _decode(token: str) -> dict:
    config = current_app.config
    algorithm = config["JWT_ALGORITHM"]
    try:
        claims = pyjwt.decode(
            token,
            config["JWT_SECRET_KEY"],
            algorithms=config["JWT_DECODE_ALGORITHMS"] or [algorithm],
            audience=config["JWT_DECODE_AUDIENCE"],
            issuer=config["JWT_DECODE_ISSUER"],
            leeway=config["JWT_DECODE_LEEWAY"],
            options={"verify_aud": config["JWT_DECODE_AUDIENCE"] is not None, "verify_sub": False},
        )
    except pyjwt.ExpiredSignatureError:
        raise TokenRejected(EXPIRED_TOKEN) from None
    except pyjwt.InvalidTokenError:
        raise TokenRejected(INVALID_TOKEN) from None
    if config["JWT_IDENTITY_CLAIM"] not in claims or claims.get("type", "access") != "access":
        raise TokenRejected(INVALID_TOKEN)
    return claims


def token_is_valid() -> bool:
    """Whether the request carries an access token that verifies (its session not checked)."""
    try:
        access_claims()
    except TokenRejected:
        return False
    return True


def token_required(session_check_in_statement: Iterable[str] = ()):
    """A MethodView decorator: the request needs a valid access token whose session is live.

    The session is looked up (and the caller loaded) before the view runs, except under the
    HTTP methods in `session_check_in_statement`, whose views check it in their own statement
    (`LIVE_SESSION`, `require_live_session`). `current_user.id` is then the token's subject,
    not yet checked; any other attribute of `current_user` checks the session and loads the
    user first (one more statement). Any failure raises TokenRejected, a 401."""
    deferred = frozenset(session_check_in_statement)

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            claims = access_claims()
            try:
                g.session_id, g.user_id = uuid.UUID(claims["sid"]), int(claims["sub"])
            except (KeyError, ValueError, TypeError, AttributeError):
                raise TokenRejected(REVOKED_TOKEN) from None
            g.caller = UncheckedCaller(g.user_id) if request.method in deferred else checked_user()
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


# The authenticated caller of this request: a `User`, or an `UncheckedCaller` under a method
# whose view checks the session in its own statement. Only inside a `token_required` view.
current_user = LocalProxy(lambda: g.caller)


def session_params() -> dict:
    """The bind parameters of `LIVE_SESSION` for this request's token."""
    return {"session_id": str(g.session_id), "user_id": g.user_id}


def require_live_session(row):
    """`row`, the answer of a statement that checked `LIVE_SESSION`; None (the session is dead,
    or not the token's user's) raises TokenRejected, the revoked-token 401."""
    if row is None:
        raise TokenRejected(REVOKED_TOKEN)
    return row


def _unauthorized(detail: str):
    return problem(401, detail, headers={"WWW-Authenticate": "Bearer"})


def init_tokens(app) -> None:
    """Answer TokenRejected as a 401 problem with `WWW-Authenticate: Bearer`."""
    app.register_error_handler(TokenRejected, lambda rejected: _unauthorized(rejected.detail))


# flask-jwt-extended's loaders, for the refresh token of `POST /refresh` (`jwt_required(refresh=True)`).
@jwt.token_in_blocklist_loader
def _token_revoked(_header: dict, payload: dict) -> bool:
    try:
        session_id = uuid.UUID(payload["sid"])
        user_id = int(payload["sub"])
    except (KeyError, ValueError, TypeError, AttributeError):
        return True
    g.session_id, g.user_id = session_id, user_id
    user = db.session.scalar(LIVE_SESSION_USER, {"session_id": session_id, "user_id": user_id})
    g.caller = g.checked_user = user
    return user is None


@jwt.user_lookup_loader
def _load_user(_header: dict, _payload: dict) -> User:
    # The blocklist check already loaded the user along with checking the session.
    return g.caller


@jwt.unauthorized_loader
def _missing_token(reason: str):
    return _unauthorized(MISSING_TOKEN)


@jwt.invalid_token_loader
def _invalid_token(reason: str):
    return _unauthorized(INVALID_TOKEN)


@jwt.expired_token_loader
def _expired_token(_header: dict, _payload: dict):
    return _unauthorized(EXPIRED_TOKEN)


@jwt.revoked_token_loader
def _revoked_token(_header: dict, _payload: dict):
    return _unauthorized(REVOKED_TOKEN)


@jwt.user_lookup_error_loader
def _unknown_user(_header: dict, _payload: dict):
    return _unauthorized("The token's account no longer exists.")


@jwt.needs_fresh_token_loader
def _needs_fresh(_header: dict, _payload: dict):
    return _unauthorized("A fresh token is required.")
