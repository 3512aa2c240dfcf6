"""The application factory. It wires extensions and blueprints and does no database I/O."""

from datetime import timedelta

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from app.api import UnauthorizedPlugin, init_request_checks, schema_name
from app.database import MIGRATIONS_DIR
from app.extensions import api, cors, db, jwt, migrate
from app.openapi import DESCRIPTION
from app.rate_limits import init_rate_limits
from app.schemas.common import PRIORITY_NAME_SCHEMA
from app.tokens import init_tokens
from app.transactions import init_transactions
from config import Config

MAX_BIGINT = 2**63 - 1
# Answer headers a browser client may read across origins.
CORS_EXPOSED_HEADERS = [
    "X-Request-ID",
    "ETag",
    "Location",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
]
CORS_MAX_AGE = 600


class IdConverter(IntegerConverter):
    """A positive id that fits PostgreSQL's bigint; anything else is simply no route (404)."""

    def __init__(self, url_map):
        super().__init__(url_map, min=1, max=MAX_BIGINT)


class App(Flask):
    """Flask, with `ensure_sync` (the override point Flask documents for it) deciding once per
    function, not on every call, whether a view or hook is a coroutine: Flask asks `inspect`
    for each of the ~11 hooks and views of every request."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._ensured: dict = {}

    def ensure_sync(self, func):
        try:
            return self._ensured[func]
        except KeyError:
            ensured = self._ensured[func] = super().ensure_sync(func)
            return ensured
        except TypeError:  # an unhashable callable
            return super().ensure_sync(func)


def create_app(config_class: type[Config] = Config) -> Flask:
    app = App(__name__, instance_relative_config=True)
    app.config.from_object(config_class())
    app.config["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(seconds=app.config["JWT_ACCESS_TTL"])
    app.config["JWT_REFRESH_TOKEN_EXPIRES"] = timedelta(seconds=app.config["JWT_REFRESH_TTL"])
    app.url_map.converters["id"] = IdConverter
    if proxies := app.config["TRUSTED_PROXIES"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    app.url_map.strict_slashes = False

    from app.request_log import configure_logging, init_request_log

    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    init_request_log(app)

    db.init_app(app)
    init_transactions(app, db)
    # Imported here, not at the top: gunicorn's master imports this package (for its worker
    # class) before gunicorn.conf.py's on_starting sets PROMETHEUS_MULTIPROC_DIR, and
    # prometheus-client picks per-process or multiprocess counting when first imported.
    from app.metrics import init_metrics

    init_metrics(app, db)  # before the other hooks, so that it times and counts every request
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=False)
    jwt.init_app(app)
    init_tokens(app)
    if app.config["CORS_ORIGINS"]:
        cors.init_app(
            app,
            origins=app.config["CORS_ORIGINS"],
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=CORS_MAX_AGE,
        )
    api.init_app(
        app,
        spec_kwargs={
            "marshmallow_plugin": MarshmallowPlugin(schema_name_resolver=schema_name),
            "info": {"description": DESCRIPTION},
            "extra_plugins": [UnauthorizedPlugin()],
            "security": [{"bearerAuth": []}],
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                },
                "schemas": {"PriorityName": PRIORITY_NAME_SCHEMA},
            },
        },
    )

    from app import (
        auth,
        calendar_feed,
        docs,
        health,
        password_reset,
        priorities,
        recurrence,
        sync,
        tags,
        tasks,
    )
    from app.cli import register_commands
    from app.errors import register_error_handlers

    for module in (health, auth, password_reset, priorities, tags, tasks, recurrence, calendar_feed, sync):
        api.register_blueprint(module.blp)
    app.register_blueprint(docs.blp)  # a page, not an API route: kept out of /openapi.json
    init_rate_limits(app)
    init_request_checks(app, api)
    register_error_handlers(app)
    register_commands(app)
    return app
