"""Rate limits of the auth routes (register, login, password-reset), counted per app by `limits`.

Design. The contract limits three routes and nothing else, so the limit is a decorator on those
three views and costs nothing anywhere else: no `before_request`, `after_request` or
`teardown_request` hook at all. Flask-Limiter could not give that: its `init_app` always adds
those three hooks, which ran on every request (about 210 Python calls per request on `/health`,
measured with cProfile, even with a `request_filter` ending them early), and with one unbound
limiter for several apps in a process it keeps its storage on the extension object, so the
last app initialised decided for all of them. We use the library Flask-Limiter itself counts
with, `limits` (its public API: `storage_from_string`, `STRATEGIES`, `parse`, `hit`,
`get_window_stats`), and build one `RateLimits` per app in `create_app`, kept in
`app.extensions["rate_limits"]`: each app has its own store, switch and key prefix (the tests
build apps with limits on and off, in memory and in Redis, in one process).

Behaviour kept from Flask-Limiter's settings (RATELIMIT_* in config.py): a moving window per
route and key, `X-RateLimit-Limit`/`-Remaining`/`-Reset` on every answer of a limited route,
429 with `Retry-After` past the limit, and an in-memory count while a shared store (Redis) is
unreachable, retried every STORE_RETRY_SECONDS.
"""

import hashlib
import logging
import time
from collections.abc import Callable
from functools import wraps

from flask import Flask, after_this_request, current_app, request
from flask_smorest import abort
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import STRATEGIES

from app.schemas.common import normalize_email

RATE_LIMITED = "Too many attempts; retry after the number of seconds in Retry-After."
EXTENSION = "rate_limits"
STORE_RETRY_SECONDS = 30
log = logging.getLogger(__name__)


def client_address() -> str:
    """The client's address (ProxyFix has put the forwarded one there behind TRUSTED_PROXIES)."""
    return request.remote_addr or "127.0.0.1"


def login_email_key() -> str:
    """The login body's normalised email, hashed: one account is limited across addresses."""
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    if isinstance(email, str) and email.strip():
        return "email:" + hashlib.sha256(normalize_email(email).encode()).hexdigest()
    # No usable email: the body fails validation anyway; count it per address, apart from
    # the address limit's own key.
    return f"no-email:{client_address()}"


class RateLimits:
    """One app's auth limit (`RATELIMIT_AUTH`), its store and its in-memory fallback."""

    def __init__(self, config) -> None:
        self.enabled = config["RATELIMIT_ENABLED"]
        self.limit: RateLimitItem = parse(config["RATELIMIT_AUTH"])
        self.prefix = config["RATELIMIT_KEY_PREFIX"]
        strategy = STRATEGIES[config["RATELIMIT_STRATEGY"]]
        self.store = strategy(storage_from_string(config["RATELIMIT_STORAGE_URI"]))
        self.fallback = strategy(MemoryStorage()) if config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] else None
        self.store_failed_at: float | None = None
        self.swallow_errors = config["RATELIMIT_SWALLOW_ERRORS"]
        self.headers_enabled = config["RATELIMIT_HEADERS_ENABLED"]

    def _counter(self):
        if self.store_failed_at is not None and time.monotonic() - self.store_failed_at < STORE_RETRY_SECONDS:
            return self.fallback
        return self.store

    def hit(self, scope: str, key: str) -> tuple[bool, float, int]:
        """Count one request of `key` on `scope`: (allowed, window reset as epoch seconds, remaining)."""
        identifiers = (self.prefix, key, scope)
        counter = self._counter()
        try:
            allowed = counter.hit(self.limit, *identifiers)
            reset_time, remaining = counter.get_window_stats(self.limit, *identifiers)
        except Exception as exc:  # the store's client raises its own errors (redis, memcached, ...)
            if counter is not self.store or self.fallback is None:
                if not self.swallow_errors:
                    raise
                log.exception("rate limit not counted: the store failed")
                return True, time.time(), self.limit.amount
            log.warning("rate limit store unreachable (%s): counting in memory", exc.__class__.__name__)
            self.store_failed_at = time.monotonic()
            return self.hit(scope, key)
        if counter is self.store:
            self.store_failed_at = None
        return allowed, reset_time, remaining

    def check(self, key_funcs: tuple[Callable[[], str], ...]) -> None:
        """Count this request once per key; 429 on the first key past the limit. Every answer
        gets the headers of that key, or of the first one."""
        shown = None
        for key_func in key_funcs:
            allowed, reset_time, remaining = self.hit(request.endpoint, key_func())
            if shown is None or not allowed:
                shown = (reset_time, remaining)
            if not allowed:
                break
        reset_time, remaining = shown
        headers = {} if allowed else {"Retry-After": str(max(1, int(reset_time - time.time())))}
        if self.headers_enabled:
            headers["X-RateLimit-Limit"] = str(self.limit.amount)
            headers["X-RateLimit-Remaining"] = str(remaining)
            headers["X-RateLimit-Reset"] = str(int(reset_time))

        @after_this_request
        def add_headers(response):
            response.headers.update(headers)
            return response

        if not allowed:
            abort(429, message=RATE_LIMITED)


def rate_limited(*key_funcs: Callable[[], str]):
    """Decorate a view: `RATELIMIT_AUTH` on it, counted on its own per each of `key_funcs`
    (the client address if none). Over the limit the view answers 429 with Retry-After."""
    keys = key_funcs or (client_address,)

    def decorate(view):
        @wraps(view)
        def limited(*args, **kwargs):
            limits = current_app.extensions[EXTENSION]
            if limits.enabled:
                limits.check(keys)
            return view(*args, **kwargs)

        return limited

    return decorate


def init_rate_limits(app: Flask) -> None:
    """Give the app its own limits, from its config."""
    app.extensions[EXTENSION] = RateLimits(app.config)
