"""Blueprint "password_reset": a single-use reset link by mail, and a new password with its token.

Tokens are `secrets.token_urlsafe(32)`; only their SHA-256 is stored, so a copy of the
database holds no usable link. A token is live while `used_at` is NULL and `expires_at`
is ahead; a newer request and a successful reset both set `used_at` on the older ones.
"""

import hashlib
import logging
import secrets
from datetime import timedelta
from functools import partial

from flask import Flask, after_this_request, current_app
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy import LargeBinary, func, insert, literal, select, update

from app.api import Blueprint
from app.auth import revoke_sessions
from app.extensions import db
from app.mail import send_mail
from app.models import AuthSession, PasswordResetToken, User
from app.passwords import hash_password
from app.rate_limits import rate_limited
from app.schemas.auth import AcceptedSchema, PasswordResetConfirmSchema, PasswordResetRequestSchema

blp = Blueprint("password_reset", __name__, url_prefix="/api/v1/auth", description="Password reset by mail")

log = logging.getLogger(__name__)

TOKEN_BYTES = 32
ACCEPTED = {"detail": "If an account has this email, a password reset mail is on its way."}
SUBJECT = "Reset your password"
BODY = """\
Someone asked to reset the password of the account {email}.

To choose a new password, open this link within {minutes} minutes:

{url}

The link works once. If you did not ask for it, ignore this mail: your password stays as it is.
"""


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@blp.route("/password-reset")
class PasswordReset(MethodView):
    decorators = [rate_limited()]

    @blp.doc(security=[])
    @blp.arguments(PasswordResetRequestSchema)
    @blp.response(202, AcceptedSchema)
    @blp.problem_response(429, "Too many attempts (RATELIMIT_AUTH); see Retry-After")
    def post(self, data):
        """Mail a password reset link, if an account has this email"""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        # The same two statements run whether or not the account exists, so neither the
        # answer nor its timing tells which emails are registered.
        account = select(User.id).where(func.lower(User.email) == data["email"])
        db.session.execute(
            update(PasswordResetToken)
            .where(
                PasswordResetToken.user_id == account.scalar_subquery(), PasswordResetToken.used_at.is_(None)
            )
            .values(used_at=func.now())
        )
        ttl = timedelta(seconds=current_app.config["PASSWORD_RESET_TTL"])
        created = db.session.execute(
            insert(PasswordResetToken)
            .from_select(
                ["user_id", "token_hash", "expires_at"],
                account.add_columns(literal(_token_hash(token), LargeBinary), func.now() + ttl),
            )
            .returning(PasswordResetToken.user_id)
        ).first()
        db.session.commit()
        if created is not None:
            _deliver(data["email"], token)
        return ACCEPTED


@blp.route("/password-reset/confirm")
class PasswordResetConfirm(MethodView):
    @blp.doc(security=[])
    @blp.arguments(PasswordResetConfirmSchema)
    @blp.response(204)
    @blp.problem_response(400, "The token is unknown, malformed, expired or already used")
    def post(self, data):
        """Set a new password with the token from the reset mail; all sessions are revoked

        A token that is not a string, empty, over 256 characters or outside the URL-safe
        alphabet (NUL included) is malformed: 400, like an unknown, expired or used one. A
        body without `token`, or with an invalid `new_password`, is 422 naming the field.
        """
        # Hashed before the token is looked at: a bad token costs what a good one does.
        password_hash = hash_password(data["new_password"])
        user_id = _spend(data["token"])
        if user_id is None:
            abort(400, message="The reset token is invalid, expired or already used.")
        db.session.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))
        db.session.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.user_id == user_id, PasswordResetToken.used_at.is_(None))
            .values(used_at=func.now())
        )
        revoke_sessions(AuthSession.user_id == user_id)
        db.session.commit()


def _spend(token: str | None) -> int | None:
    """Mark a live token used and return its user; None if there is no live token.

    `token` is None when it was malformed (PasswordResetConfirmSchema). One UPDATE both checks
    and spends it: a concurrent confirm of the same token waits for the row lock, then finds
    `used_at` set and gets None.
    """
    if token is None:
        return None
    return db.session.scalar(
        update(PasswordResetToken)
        .where(
            PasswordResetToken.token_hash == _token_hash(token),
            PasswordResetToken.used_at.is_(None),
            PasswordResetToken.expires_at > func.now(),
        )
        .values(used_at=func.now())
        .returning(PasswordResetToken.user_id)
    )


def _deliver(email: str, token: str) -> None:
    config = current_app.config
    body = BODY.format(
        email=email,
        minutes=max(1, config["PASSWORD_RESET_TTL"] // 60),
        url=config["PASSWORD_RESET_URL"].replace("{token}", token),
    )
    send = partial(_send_reset_mail, current_app._get_current_object(), email, body)
    if config["MAIL_BACKEND"] != "smtp":
        send()
        return

    # A mail server's latency would tell registered emails apart: send once the answer is out.
    @after_this_request
    def _send_after_response(response):
        response.call_on_close(send)
        return response


def _send_reset_mail(app: Flask, email: str, body: str) -> None:
    with app.app_context():
        try:
            send_mail(email, SUBJECT, body)
        except Exception as exc:
            # The type only: an exception's text may quote the message, and with it the token.
            log.error("password reset mail could not be sent: %s", type(exc).__name__)
