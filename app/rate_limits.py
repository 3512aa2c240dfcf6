"""Rate limits of the auth routes (register, login, password-reset): one Flask-Limiter per app.

Design. `init_rate_limits(app)` builds a `Limiter` for that app alone in `create_app` and keeps
it in `app.extensions["rate_limits"]`, so its storage, switch, key prefix and in-memory
fallback are that app's (the tests build apps with limits on and off, in memory and in
Redis, in one process) without reaching into the extension's private attributes. The views
say what they need with `@rate_limited(...)`, a marker that names the keys and nothing else;
at start-up each marked view is wrapped once by that app's `limiter.limit(...)` (the library's
public decorator), and at request time the marker calls the wrapped view of the current app.
Limits are therefore applied at registration, per app, and a route without the marker never
reaches the limiter's decorator.

Flask-Limiter 4 always adds a `before_request` hook (for default and application limits; it
has no `auto_check` switch any more). We have neither, so its `request_filter` exempts every
request the marker has not flagged, which ends that hook after a dictionary look-up instead of
resolving limits for every route; measured in README, Performance. With RATELIMIT_ENABLED off
no hook is installed at all.
"""

import hashlib
from collections.abc import Callable
from functools import reduce, wraps

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from app.schemas.common import normalize_email

RATE_LIMITED = "Too many attempts; retry after the number of seconds in Retry-After."
EXTENSION = "rate_limits"

# (view, key functions) of every view marked with @rate_limited; wrapped per app at start-up.
_MARKED: list[tuple[Callable, tuple[Callable[[], str], ...]]] = []


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


def rate_limited(*key_funcs: Callable[[], str]):
    """Mark a view: `RATELIMIT_AUTH` on it, counted on its own per each of `key_funcs`
    (the client address if none). Over the limit the view answers 429 with Retry-After."""
    keys = key_funcs or (get_remote_address,)

    def mark(view):
        @wraps(view)
        def limited(*args, **kwargs):
            limited_views = current_app.extensions[EXTENSION].views
            if not limited_views:  # RATELIMIT_ENABLED off
                return view(*args, **kwargs)
            g.rate_limited = True  # lets this request past the limiter's request filter
            return limited_views[view](*args, **kwargs)

        _MARKED.append((view, keys))
        return limited

    return mark


class RateLimits:
    """One app's limiter and its marked views, each wrapped by that limiter's `limit()`."""

    def __init__(self, app: Flask) -> None:
        self.limiter = Limiter(key_func=get_remote_address)
        self.limiter.request_filter(lambda: not g.get("rate_limited", False))
        self.limiter.init_app(app)  # reads RATELIMIT_* from this app's config
        self.views: dict[Callable, Callable] = {}
        if app.config["RATELIMIT_ENABLED"]:
            self.views = {view: reduce(self._limit, keys, view) for view, keys in _MARKED}

    def _limit(self, view: Callable, key_func: Callable[[], str]) -> Callable:
        return self.limiter.limit(auth_limit, key_func=key_func, error_message=RATE_LIMITED)(view)


def init_rate_limits(app: Flask) -> None:
    """Build the app's limiter and wrap the marked views (call after the blueprints' import)."""
    app.extensions[EXTENSION] = RateLimits(app)


def rate_limits() -> RateLimits:
    """The current app's limiter and limited views."""
    return current_app.extensions[EXTENSION]
