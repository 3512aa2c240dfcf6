"""Rate limits of the auth routes: a Flask-Limiter that keeps its settings per app, and the keys.

Flask-Limiter stores its storage, switch and key prefix on the extension object itself, so
with one unbound limiter and several apps in a process (the tests build apps with limits on
and off, in memory and in Redis) the app initialised last would decide for all of them.
`AppLimiter` keeps those attributes in `app.extensions` instead.
"""

import hashlib

from flask import current_app, has_app_context, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from app.schemas.common import normalize_email

RATE_LIMITED = "Too many attempts; retry after the number of seconds in Retry-After."

# Every attribute Flask-Limiter's init_app sets or its request hooks change.
_PER_APP_ATTRIBUTES = (
    "enabled",
    "initialized",
    "_storage",
    "_limiter",
    "_strategy",
    "_storage_dead",
    "_fallback_storage",
    "_fallback_limiter",
    "_in_memory_fallback_enabled",
    "_key_prefix",
    "_headers_enabled",
    "_header_mapping",
    "_retry_after",
    "_swallow_errors",
    "_fail_on_first_breach",
    "_request_identifier",
    "_on_breach",
    "_on_meta_breach",
)


class _PerApp:
    """An attribute read from the current app's settings, falling back to the constructor's value."""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, limiter, owner=None):
        if limiter is None:
            return self
        settings = _app_settings()
        if settings is not None and self.name in settings:
            return settings[self.name]
        return limiter._defaults.get(self.name)

    def __set__(self, limiter, value) -> None:
        settings = _app_settings()
        (limiter._defaults if settings is None else settings)[self.name] = value


def _app_settings() -> dict | None:
    return current_app.extensions.setdefault("limiter_settings", {}) if has_app_context() else None


class AppLimiter(Limiter):
    def __init__(self, *args, **kwargs) -> None:
        self._defaults: dict = {}
        super().__init__(*args, **kwargs)

    def init_app(self, app) -> None:
        with app.app_context():
            super().init_app(app)


for _name in _PER_APP_ATTRIBUTES:
    _attribute = _PerApp()
    _attribute.__set_name__(AppLimiter, _name)
    setattr(AppLimiter, _name, _attribute)


def auth_limit() -> str:
    return current_app.config["RATELIMIT_AUTH"]


def login_email_key() -> str:
    """The login body's normalised email, hashed: one account is limited across addresses."""
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    if isinstance(email, str) and email.strip():
        return "email:" + hashlib.sha256(normalize_email(email).encode()).hexdigest()
    # No usable email: the body fails validation anyway; count it per address, apart from
    # the address limit's own key.
    return f"no-email:{get_remote_address()}"
