"""Blueprint "auth": accounts, and logins (sessions) with their tokens."""

import uuid
from datetime import UTC, datetime, timedelta

from flask import current_app, g, request
from flask.views import MethodView
from flask_jwt_extended import current_user, get_current_user, get_jwt, jwt_required
from flask_limiter.util import get_remote_address
from flask_smorest import abort
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from app.api import Blueprint
from app.extensions import db, limiter
from app.models import AuthSession, User
from app.passwords import burn_verification_time
from app.rate_limits import RATE_LIMITED, auth_limit, login_email_key
from app.schemas.auth import (
    ChangePasswordSchema,
    DeleteAccountSchema,
    LoginSchema,
    ProfileSchema,
    SessionListSchema,
    TokenSchema,
    UserSchema,
)
from app.tasks import move_date_only_tasks
from app.tokens import tokens_for

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Accounts and sessions")

MAX_USER_AGENT = 512


def _now() -> datetime:
    return datetime.now(UTC)


def auth_rate_limit(key_func=get_remote_address):
    """`RATELIMIT_AUTH` on one route, counted per `key_func` (the client address by default)."""
    return limiter.limit(auth_limit, key_func=key_func, error_message=RATE_LIMITED)


def revoke_sessions(*conditions) -> None:
    """Revoke the live sessions matching `conditions`; the caller commits."""
    db.session.execute(
        update(AuthSession).where(AuthSession.revoked_at.is_(None), *conditions).values(revoked_at=func.now())
    )


@blp.route("/register")
class Register(MethodView):
    decorators = [auth_rate_limit()]

    @blp.doc(security=[])
    @blp.arguments(UserSchema)
    @blp.response(201, UserSchema)
    @blp.problem_response(409, "The email is already registered")
    @blp.problem_response(429, "Too many attempts (RATELIMIT_AUTH); see Retry-After")
    def post(self, data):
        """Create an account"""
        password = data.pop("password")
        user = User(**data)
        user.set_password(password)
        db.session.add(user)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            abort(409, message="An account with this email already exists.")
        return user


@blp.route("/login")
class Login(MethodView):
    # Per address, and per account so that many addresses cannot guess one password together.
    decorators = [auth_rate_limit(), auth_rate_limit(key_func=login_email_key)]

    @blp.doc(security=[])
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenSchema)
    @blp.problem_response(401, "Unknown email or wrong password (one answer for both)")
    @blp.problem_response(429, "Too many attempts (RATELIMIT_AUTH); see Retry-After")
    def post(self, data):
        """Log in: open a session and get its tokens"""
        user = db.session.scalar(select(User).where(func.lower(User.email) == data["email"]))
        if user is None:
            burn_verification_time(data["password"])
        if user is None or not user.check_password(data["password"]):
            abort(401, message="Invalid email or password.")
        session = AuthSession(
            id=uuid.uuid4(),
            user_id=user.id,
            refresh_jti=uuid.uuid4(),
            user_agent=request.headers.get("User-Agent", "")[:MAX_USER_AGENT],
            expires_at=_now() + timedelta(seconds=current_app.config["JWT_REFRESH_TTL"]),
        )
        db.session.add(session)
        db.session.commit()
        return tokens_for(session)


@blp.route("/refresh")
class Refresh(MethodView):
    decorators = [jwt_required(refresh=True)]

    @blp.response(200, TokenSchema)
    @blp.problem_response(401, "Invalid, expired, revoked or already spent refresh token")
    def post(self):
        """Swap a refresh token for a new pair; the presented one is spent"""
        claims = get_jwt()
        # One statement spends the token, so two concurrent refreshes cannot both win.
        session = db.session.scalar(
            update(AuthSession)
            .where(AuthSession.id == g.session_id, AuthSession.refresh_jti == uuid.UUID(claims["jti"]))
            .values(refresh_jti=uuid.uuid4(), last_used_at=func.now())
            .returning(AuthSession)
        )
        if session is None:
            # A spent token came back: someone holds a copy. End the whole session.
            revoke_sessions(AuthSession.id == g.session_id)
            db.session.commit()
            abort(401, message="This refresh token was already used; the session is revoked.")
        db.session.commit()
        return tokens_for(session)


@blp.route("/logout")
class Logout(MethodView):
    decorators = [jwt_required()]

    @blp.response(204)
    def post(self):
        """Log out: revoke the calling session and all its tokens"""
        revoke_sessions(AuthSession.id == g.session_id)
        db.session.commit()


@blp.route("/sessions")
class Sessions(MethodView):
    decorators = [jwt_required()]

    @blp.response(200, SessionListSchema)
    def get(self):
        """List the caller's live sessions, newest first"""
        sessions = db.session.scalars(
            select(AuthSession)
            .where(
                AuthSession.user_id == current_user.id,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > func.now(),
            )
            .order_by(AuthSession.created_at.desc(), AuthSession.id.desc())
        )
        return {"items": sessions}


@blp.route("/sessions/<uuid:session_id>")
class SessionById(MethodView):
    decorators = [jwt_required()]

    @blp.response(204)
    @blp.problem_response(404, "No live session of the caller has this id")
    def delete(self, session_id):
        """Revoke one of the caller's sessions"""
        revoked = db.session.execute(
            update(AuthSession)
            .where(
                AuthSession.id == session_id,
                AuthSession.user_id == current_user.id,
                AuthSession.revoked_at.is_(None),
            )
            .values(revoked_at=func.now())
            .returning(AuthSession.id)
        ).first()
        if revoked is None:
            abort(404, message="Session not found.")
        db.session.commit()


@blp.route("/me")
class Me(MethodView):
    decorators = [jwt_required()]

    @blp.response(200, UserSchema)
    def get(self):
        """The caller's account"""
        return current_user

    @blp.arguments(ProfileSchema(partial=True))
    @blp.response(200, UserSchema)
    def patch(self, data):
        """Change the caller's names or time zone

        A new `timezone` moves the caller's date-only tasks (`due_date`) with it: each then
        stands at the start of its day in the new zone (for `due_after`, `due_before`, the
        `due_at` sorts and `overdue`), in the same transaction. Timed tasks do not move.
        """
        user = get_current_user()
        for field, value in data.items():
            setattr(user, field, value)
        if "timezone" in data:
            move_date_only_tasks(user)
        db.session.commit()
        return user

    @blp.arguments(DeleteAccountSchema)
    @blp.response(204)
    @blp.problem_response(400, "The password is wrong")
    def delete(self, data):
        """Delete the caller's account and all its data"""
        user = _current_user_with_password(data["password"])
        # Every table of user data hangs off users by ON DELETE CASCADE: one statement, one commit.
        db.session.execute(delete(User).where(User.id == user.id))
        db.session.commit()


@blp.route("/change-password")
class ChangePassword(MethodView):
    decorators = [jwt_required()]

    @blp.arguments(ChangePasswordSchema)
    @blp.response(204)
    @blp.problem_response(400, "The current password is wrong")
    def post(self, data):
        """Change the password; every session, the caller's included, is revoked"""
        user = _current_user_with_password(data["current_password"])
        user.set_password(data["new_password"])
        revoke_sessions(AuthSession.user_id == user.id)
        db.session.commit()


def _current_user_with_password(password: str) -> User:
    """The caller, after checking their password; a wrong one is a 400 (the token itself is fine)."""
    user = get_current_user()
    if not user.check_password(password):
        abort(400, message="The password is wrong.")
    return user
