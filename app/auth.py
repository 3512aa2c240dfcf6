"""Blueprint "auth": accounts, and logins (sessions) with their tokens."""

import uuid
from datetime import UTC, datetime, timedelta

from flask import current_app, g, request
from flask.views import MethodView
from flask_jwt_extended import get_jwt, jwt_required
from flask_smorest import abort
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError

from app.api import Blueprint, json_response
from app.extensions import db
from app.models import AuthSession, User
from app.openapi import answer_links
from app.passwords import burn_verification_time
from app.rate_limits import client_address, login_email_key, rate_limited
from app.schemas.auth import (
    ChangePasswordSchema,
    DeleteAccountSchema,
    LoginSchema,
    ProfileSchema,
    RegistrationSchema,
    SessionListSchema,
    TokenSchema,
    UserSchema,
)
from app.schemas.common import UTCDateTime
from app.tasks import move_date_only_tasks
from app.tokens import (
    LIVE_SESSION,
    checked_user,
    current_user,
    require_live_session,
    session_params,
    token_required,
    tokens_for,
)
from app.transactions import driver_sql, read_rows

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Accounts and sessions")

MAX_USER_AGENT = 512
# The User representation built by PostgreSQL (STYLE.md, "When a representation is built in
# SQL"), one line per UserSchema field; tests/test_sql_representations.py proves it equals
# UserSchema().dump of the same row.
USER_JSON = f"""json_build_object(
    'id', users.id,
    'email', users.email,
    'first_name', users.first_name,
    'last_name', users.last_name,
    'timezone', users.timezone,
    'created_at', {UTCDateTime.sql("users.created_at")}
)::text"""
# The caller's account, if the token's session is live (no row: 401): one statement.
ME = driver_sql(
    text(f"SELECT {USER_JSON} FROM sessions JOIN users ON users.id = sessions.user_id WHERE {LIVE_SESSION}")
)


def _now() -> datetime:
    return datetime.now(UTC)


def revoke_sessions(*conditions) -> None:
    """Revoke the live sessions matching `conditions`; the caller commits."""
    db.session.execute(
        update(AuthSession).where(AuthSession.revoked_at.is_(None), *conditions).values(revoked_at=func.now())
    )


@blp.route("/register")
class Register(MethodView):
    decorators = [rate_limited()]

    @blp.doc(security=[])
    @blp.arguments(RegistrationSchema)
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
    decorators = [rate_limited(client_address, login_email_key)]

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
    decorators = [token_required()]

    @blp.response(204)
    def post(self):
        """Log out: revoke the calling session and all its tokens"""
        revoke_sessions(AuthSession.id == g.session_id)
        db.session.commit()


@blp.route("/sessions")
class Sessions(MethodView):
    decorators = [token_required()]

    @blp.response(200, SessionListSchema)
    @blp.doc(
        **answer_links(
            200,
            "FirstSession",
            "/api/v1/auth/sessions/{session_id}",
            {"session_id": "$response.body#/items/0/id"},
            methods=("delete",),
        )
    )
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
    decorators = [token_required()]

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
    decorators = [token_required(session_check_in_statement=("GET",))]

    @blp.response(200, UserSchema)
    def get(self):
        """The caller's account"""
        rows = read_rows(ME, session_params())
        return json_response(require_live_session(rows[0] if rows else None)[0])

    @blp.arguments(ProfileSchema(partial=True), required=False)
    @blp.response(200, UserSchema)
    def patch(self, data):
        """Change the caller's names or time zone

        A new `timezone` moves the caller's date-only tasks (`due_date`) with it: each then
        stands at the start of its day in the new zone (for `due_after`, `due_before`, the
        `due_at` sorts and `overdue`), in the same transaction. Timed tasks do not move.
        """
        user = checked_user()
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
    decorators = [token_required()]

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
    user = checked_user()
    if not user.check_password(password):
        abort(400, message="The password is wrong.")
    return user
