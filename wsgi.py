"""Entry point for gunicorn (`gunicorn wsgi:app`) and the flask CLI (FLASK_APP=wsgi)."""

import sys

from app import create_app
from app.database import DatabaseNotReady, verify_database
from config import ConfigError

try:
    app = create_app()
    # `flask run` serves, so it needs a ready database; `flask db`, `seed` and
    # `check-db` exist to make it ready and must work on an empty one. Under
    # gunicorn the master checks once, in gunicorn.conf.py's on_starting.
    if "run" in sys.argv[1:]:  # `flask run`, also as `flask --app wsgi run`
        verify_database(app.config)
except (ConfigError, DatabaseNotReady) as exc:
    sys.exit(f"error: {exc}")
