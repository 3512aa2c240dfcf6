"""Configuration read from the environment (and `.env`), validated once.

There is deliberately no default database: a missing or non-PostgreSQL
`DATABASE_URL` stops the service instead of letting it write somewhere else.
"""

import os
import warnings
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from dotenv import load_dotenv
from psycopg2 import ProgrammingError
from psycopg2.extensions import parse_dsn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

load_dotenv()

ENVIRONMENTS = ("development", "testing", "production")
POSTGRES_SCHEMES = {
    "postgres": "postgresql+psycopg2",
    "postgresql": "postgresql+psycopg2",
    "postgresql+psycopg2": "postgresql+psycopg2",
    "postgresql+asyncpg": "postgresql+psycopg2",
}
# asyncpg's `ssl=` spelled as libpq's `sslmode`; a boolean means require or disable, as in asyncpg.
ASYNCPG_SSL_MODES = {
    "disable": "disable",
    "allow": "allow",
    "prefer": "prefer",
    "require": "require",
    "verify-ca": "verify-ca",
    "verify-full": "verify-full",
    "true": "require",
    "false": "disable",
}
# Keys that only asyncpg understands, and that only tune it: the keyword arguments of
# asyncpg.connect() that libpq has no word for, and those SQLAlchemy's asyncpg dialect takes
# from the URL. psycopg2 never prepares statements server-side, so the statement caches that
# PgBouncer users switch off have nothing to switch off here.
ASYNCPG_ONLY_KEYS = frozenset(
    {
        "timeout",
        "command_timeout",
        "statement_cache_size",
        "max_cached_statement_lifetime",
        "max_cacheable_statement_size",
        "server_settings",
        "direct_tls",  # how TLS starts (libpq: sslnegotiation), never whether: sslmode decides that
        "connection_class",
        "record_class",
        "loop",
        "prepared_statement_cache_size",  # SQLAlchemy's asyncpg dialect
        "prepared_statement_name_func",
        "async_fallback",
        "async_creator_fn",
    }
)
# Keys that other tools put in their connection strings, with what to do instead.
FOREIGN_KEY_HINTS = {
    "pgbouncer": "it is Prisma's flag; remove it (psycopg2 uses no prepared statements, so it needs none)",
}
MIN_SECRET_BYTES = 32


class ConfigError(Exception):
    """The environment cannot configure a working service."""


class DatabaseUrlWarning(UserWarning):
    """DATABASE_URL works, but part of it was dropped (asyncpg-only tuning keys)."""


def normalize_database_url(url: str | None) -> str:
    """Return `url` as a psycopg2 SQLAlchemy URL; raise ConfigError if it is not usable.

    Accepts postgres://, postgresql://, postgresql+psycopg2:// and postgresql+asyncpg://. The
    query is made libpq's (see `libpq_query`); user, password (percent-encoded or not), hosts,
    port and database are kept as they are.
    """
    if not url or not url.strip():
        raise ConfigError("DATABASE_URL is not set: point it at a PostgreSQL database")
    url = url.strip()
    scheme, sep, _rest = url.partition("://")
    if not sep:
        raise ConfigError("DATABASE_URL is not a URL: expected postgresql://user:pass@host/db")
    scheme = scheme.lower()
    if scheme.startswith("sqlite"):  # refused by name: there is no fallback database, ever
        raise ConfigError("DATABASE_URL points at SQLite, which is refused: use PostgreSQL")
    if scheme not in POSTGRES_SCHEMES:
        raise ConfigError(f"DATABASE_URL scheme {scheme!r} is not PostgreSQL")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError("DATABASE_URL is not a URL: expected postgresql://user:pass@host/db") from None
    query = libpq_query(parsed.query)
    return parsed.set(drivername=POSTGRES_SCHEMES[scheme], query=query).render_as_string(hide_password=False)


def libpq_query(query: Mapping[str, str | tuple[str, ...]]) -> dict[str, str | tuple[str, ...]]:
    """The query keys of DATABASE_URL as libpq connection parameters, for psycopg2.

    libpq's own keys (sslmode, channel_binding, options, target_session_attrs, ...) pass
    through; libpq itself says which keys it knows. asyncpg's `ssl` becomes `sslmode`, never
    a weaker mode. Keys that only tune asyncpg are dropped with one DatabaseUrlWarning naming
    them. Raises ConfigError, naming the key, for an `ssl` that asyncpg would not take, an
    `ssl` that disagrees with `sslmode`, and a key that neither libpq nor asyncpg knows.
    """
    params = dict(query)
    if "ssl" in params:
        params["sslmode"] = _sslmode_from_asyncpg(params.pop("ssl"), params.get("sslmode"))
    if unknown := sorted(
        key for key in params if key not in ASYNCPG_ONLY_KEYS and not _is_libpq_keyword(key)
    ):
        hint = FOREIGN_KEY_HINTS.get(unknown[0], "remove it (a server setting goes in options=-c name=value)")
        named = f"parameter {unknown[0]} is" if len(unknown) == 1 else f"parameters {', '.join(unknown)} are"
        raise ConfigError(f"DATABASE_URL {named} neither libpq's nor asyncpg's: {hint}")
    if dropped := sorted(key for key in params if key in ASYNCPG_ONLY_KEYS):
        warnings.warn(
            f"DATABASE_URL: ignoring asyncpg-only parameter {', '.join(dropped)} "
            "(psycopg2 drives the database)",
            DatabaseUrlWarning,
            stacklevel=1,
        )
    return {key: value for key, value in params.items() if key not in ASYNCPG_ONLY_KEYS}


def _sslmode_from_asyncpg(ssl: str | tuple[str, ...], sslmode: str | tuple[str, ...] | None) -> str:
    """libpq's sslmode for asyncpg's `ssl` value(s); ConfigError if invalid or in conflict."""
    modes = set()
    for value in (ssl,) if isinstance(ssl, str) else ssl:
        if (mode := ASYNCPG_SSL_MODES.get(value.strip().lower())) is None:
            raise ConfigError(
                f"DATABASE_URL parameter ssl={value} is not one of {', '.join(ASYNCPG_SSL_MODES)}"
            )
        modes.add(mode)
    modes.update((sslmode,) if isinstance(sslmode, str) else sslmode or ())
    if len(modes) > 1:
        raise ConfigError(
            f"DATABASE_URL parameters ssl and sslmode disagree ({' vs '.join(sorted(modes))}): keep one"
        )
    return modes.pop()


def _is_libpq_keyword(key: str) -> bool:
    """Whether libpq (the one psycopg2 is linked with) knows `key` as a connection parameter."""
    try:
        parse_dsn("postgresql:///?" + urlencode({key: ""}))
    except ProgrammingError:
        return False
    return True


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    if raw.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if raw.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


class Config:
    """Settings from the environment; instantiating it validates them."""

    MAX_CONTENT_LENGTH = 1024 * 1024
    API_TITLE = "Todo API"
    API_VERSION = "1.0.0"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/"
    OPENAPI_JSON_PATH = "openapi.json"
    JWT_TOKEN_LOCATION = ["headers"]
    # No cookies, so no CSRF claim: a shorter token is a faster decode (README, Performance).
    JWT_COOKIE_CSRF_PROTECT = False
    JWT_ERROR_MESSAGE_KEY = "detail"
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    FORCED_ENV: str | None = None
    ARGON2_DEFAULTS = (2, 19 * 1024, 1)  # time cost, memory cost in KiB, lanes
    # A moving window: "10 per minute" holds for any 60 s, with no double burst at a window edge.
    RATELIMIT_STRATEGY = "moving-window"
    # Namespaces the counters in a shared store (Redis) that other services may use too.
    RATELIMIT_KEY_PREFIX = "todo-api"
    # An unreachable store must not take logins down: count in process memory until it is back.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True

    def __init__(self) -> None:
        env = os.environ
        self.APP_ENV = self.FORCED_ENV or env.get("APP_ENV", "").strip().lower() or "production"
        if self.APP_ENV not in ENVIRONMENTS:
            raise ConfigError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, got {self.APP_ENV!r}")
        self.TESTING = self.APP_ENV == "testing"
        self.DEBUG = False

        self.SQLALCHEMY_DATABASE_URI = normalize_database_url(self.database_url())
        self.DB_CONNECT_TIMEOUT = _int("DB_CONNECT_TIMEOUT", 5, minimum=1)
        # How long start-up waits for an unreachable database (a Neon compute waking up).
        self.DB_STARTUP_RETRY = _int("DB_STARTUP_RETRY", 10)
        self.SQLALCHEMY_ENGINE_OPTIONS = {
            "pool_pre_ping": True,
            "pool_size": _int("DB_POOL_SIZE", 20, minimum=1),
            "max_overflow": _int("DB_MAX_OVERFLOW", 10),
            "pool_recycle": _int("DB_POOL_RECYCLE", 3600, minimum=1),
            "pool_timeout": _int("DB_POOL_TIMEOUT", 30, minimum=1),
            "connect_args": {
                "connect_timeout": self.DB_CONNECT_TIMEOUT,
                "application_name": "todo-api",
            },
        }

        self.SECRET_KEY = env.get("SECRET_KEY")
        self.JWT_SECRET_KEY = env.get("JWT_SECRET_KEY")
        self._check_secrets()
        self.JWT_ACCESS_TTL = _int("JWT_ACCESS_TTL", 900, minimum=1)
        self.JWT_REFRESH_TTL = _int("JWT_REFRESH_TTL", 30 * 24 * 3600, minimum=1)
        # Instances' clocks drift: a token minted on a faster one carries an `iat` in the future
        # of a slower one. PyJWT tolerates this many seconds on `iat`, `nbf` and also `exp`.
        self.JWT_LEEWAY = _int("JWT_LEEWAY", 10)
        self.JWT_DECODE_LEEWAY = self.JWT_LEEWAY
        # Seconds tombstones are kept for /sync; an older sync token is a 410.
        self.SYNC_RETENTION = _int("SYNC_RETENTION", 30 * 24 * 3600, minimum=1)

        # How many reverse proxies in front of the app set X-Forwarded-For/-Proto; 0 trusts none,
        # so a client cannot forge its address (the rate limits count per address).
        self.TRUSTED_PROXIES = _int("TRUSTED_PROXIES", 0)
        self.CORS_ORIGINS = [o.strip() for o in env.get("CORS_ORIGINS", "").split(",") if o.strip()]
        self.RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)
        self.RATELIMIT_STORAGE_URI = env.get("RATELIMIT_STORAGE_URI", "memory://")
        self.RATELIMIT_AUTH = env.get("RATELIMIT_AUTH", "10 per minute")
        self.RATELIMIT_HEADERS_ENABLED = True

        self.MAIL_BACKEND = env.get("MAIL_BACKEND", "console").strip().lower()
        if self.MAIL_BACKEND not in ("console", "file", "smtp"):
            raise ConfigError(f"MAIL_BACKEND must be console, file or smtp, got {self.MAIL_BACKEND!r}")
        self.MAIL_OUTBOX_DIR = env.get("MAIL_OUTBOX_DIR", "instance/outbox")
        self.MAIL_FROM = env.get("MAIL_FROM", "Todo API <no-reply@localhost>")
        self.SMTP_HOST = env.get("SMTP_HOST", "localhost")
        self.SMTP_PORT = _int("SMTP_PORT", 25, minimum=1)
        self.SMTP_USERNAME = env.get("SMTP_USERNAME") or None
        self.SMTP_PASSWORD = env.get("SMTP_PASSWORD") or None
        self.SMTP_STARTTLS = _bool("SMTP_STARTTLS", False)
        self.SMTP_TIMEOUT = _int("SMTP_TIMEOUT", 10, minimum=1)
        self.PASSWORD_RESET_URL = env.get(
            "PASSWORD_RESET_URL", "http://localhost:8000/reset-password?token={token}"
        )
        self.PASSWORD_RESET_TTL = _int("PASSWORD_RESET_TTL", 1800, minimum=1)

        # argon2id cost; the default is OWASP's Password Storage profile (19 MiB, 2 passes,
        # 1 lane). RFC 9106's "low memory" profile (64 MiB, 3 passes, 4 lanes) measured 4-6
        # logins/s on 2 cores, and a burst of logins then starved every other request.
        self.ARGON2_TIME_COST = _int("ARGON2_TIME_COST", self.ARGON2_DEFAULTS[0], minimum=1)
        self.ARGON2_MEMORY_COST = _int("ARGON2_MEMORY_COST", self.ARGON2_DEFAULTS[1], minimum=8)
        self.ARGON2_PARALLELISM = _int("ARGON2_PARALLELISM", self.ARGON2_DEFAULTS[2], minimum=1)

        self.LOG_LEVEL = env.get("LOG_LEVEL", "INFO").upper()
        self.LOG_FORMAT = env.get("LOG_FORMAT", "plain").lower()
        # GET /metrics for Prometheus (app/metrics.py); off, the route does not exist.
        self.METRICS_ENABLED = _bool("METRICS_ENABLED", True)

    def database_url(self) -> str | None:
        return os.environ.get("DATABASE_URL")

    def _check_secrets(self) -> None:
        if self.APP_ENV != "production":
            # Development and tests may run without configured keys; the process
            # then signs with a random key, so tokens die with it.
            self.SECRET_KEY = self.SECRET_KEY or os.urandom(32).hex()
            self.JWT_SECRET_KEY = self.JWT_SECRET_KEY or os.urandom(32).hex()
            return
        for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
            value = getattr(self, name)
            if not value:
                raise ConfigError(f"{name} is not set (required when APP_ENV=production)")
            if len(value.encode()) < MIN_SECRET_BYTES:
                raise ConfigError(f"{name} must be at least {MIN_SECRET_BYTES} bytes in production")

    def database_host(self) -> str:
        """The host part of the database URL, for messages (never the password)."""
        parts = urlsplit(self.SQLALCHEMY_DATABASE_URI)
        return parts.hostname or "local socket"


class TestConfig(Config):
    """Tests: the database named by TEST_DATABASE_URL, cheap hashing, no rate limits."""

    __test__ = False  # not a pytest test class, despite the name

    ARGON2_DEFAULTS = (1, 1024, 1)  # cheap hashing keeps the suite fast
    FORCED_ENV = "testing"

    def __init__(self) -> None:
        super().__init__()
        self.RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", False)

    def database_url(self) -> str | None:
        return os.environ.get("TEST_DATABASE_URL")
