"""The API with a pyinstrument sampler around its requests, for `bench/run.py --profile`.

Served by one sync gunicorn worker, so every request runs on the thread being sampled.
`GET /__profile__/start` begins a profile; `GET /__profile__/stop?name=X` ends it, writes
bench/results/profile-X.html (flame chart) and profile-X.txt (call tree), and answers the
share of time per category. These two paths never reach the app.
"""

import json
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs

from pyinstrument import Profiler

from wsgi import app

RESULTS = Path(__file__).resolve().parent / "results"
# The innermost frame that matches decides where a sample's time goes; order matters.
CATEGORIES = (
    ("pool pre-ping (SELECT 1)", (":do_ping",)),
    ("PostgreSQL round trips", (":do_execute", "psycopg2/", "sqlalchemy/pool/")),
    ("argon2 hashing", ("argon2/",)),
    ("SQLAlchemy ORM/Core", ("sqlalchemy/",)),
    ("marshmallow/webargs/apispec", ("marshmallow/", "webargs/", "apispec/")),
    ("flask-smorest", ("flask_smorest/",)),
    ("JWT", ("flask_jwt_extended/", "jwt/")),
    ("Flask/Werkzeug", ("flask/", "werkzeug/", "flask_limiter/", "limits/", "flask_cors/")),
    ("logging", ("logging/",)),
    ("app code", ("/app/",)),
    ("json", ("json/",)),
    ("gunicorn (and waiting for requests)", ("gunicorn/",)),
)


def _category(stack: list[str]) -> str:
    for frame in reversed(stack):
        function, path = [*frame.split("\x00"), "", ""][:2]
        where = f"{path}:{function}"
        for name, markers in CATEGORIES:
            if any(marker in where for marker in markers):
                return name
    return "other"


def time_by_category(session) -> dict[str, float]:
    """Share of the sampled time per category, largest first."""
    totals: Counter = Counter()
    for stack, seconds in session.frame_records:
        totals[_category(stack)] += seconds
    whole = sum(totals.values()) or 1.0
    return {name: round(seconds / whole, 3) for name, seconds in totals.most_common()}


class Profiling:
    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.profiler: Profiler | None = None

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/__profile__/start":
            self.profiler = Profiler(interval=0.0005)
            self.profiler.start(caller_frame=sys._getframe(1))
            return self._answer(start_response, {"started": True})
        if path == "/__profile__/stop" and self.profiler is not None:
            session = self.profiler.stop()
            name = parse_qs(environ.get("QUERY_STRING", "")).get("name", ["profile"])[0]
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"profile-{name}.html").write_text(self.profiler.output_html())
            (RESULTS / f"profile-{name}.txt").write_text(
                self.profiler.output_text(unicode=True, color=False, show_all=False)
            )
            self.profiler = None
            return self._answer(start_response, time_by_category(session))
        return self.wsgi_app(environ, start_response)

    @staticmethod
    def _answer(start_response, body: dict):
        raw = json.dumps(body).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(raw)))])
        return [raw]


app.wsgi_app = Profiling(app.wsgi_app)
