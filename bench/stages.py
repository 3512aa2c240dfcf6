"""In-process timings of the list page and of its stages, for `bench/run.py --stages`.

Run in a process of its own with the bench's environment (DATABASE_URL and the keys of the
API under test): it builds the app as gunicorn would, then times, in one thread with
PostgreSQL's waits included, the whole `GET /api/v1/tasks?limit=50` through the WSGI app and
each stage of it in isolation. Prints one JSON object: stage -> microseconds per call (the
median of 5 rounds).

    .venv/bin/python bench/stages.py --token ACCESS_TOKEN --user-id 1
"""

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import speed_of_light  # noqa: E402
from flask import Flask  # noqa: E402
from flask_jwt_extended import decode_token  # noqa: E402
from sqlalchemy import select  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

from app.extensions import db  # noqa: E402
from app.models import Task  # noqa: E402
from app.schemas.tasks import TaskListSchema  # noqa: E402
from app.tasks import TASK_JSON  # noqa: E402
from app.tokens import LIVE_SESSION_USER  # noqa: E402

PAGE_PATH = "/api/v1/tasks?limit=50"
# The API's page as PostgreSQL builds its JSON (app/tasks.py), without the session check.
SQL_JSON_PAGE = (
    f"SELECT {TASK_JSON} FROM tasks WHERE tasks.user_id = %(user_id)s"
    " ORDER BY tasks.created_at DESC, tasks.id DESC LIMIT 51"
)
ROUNDS = 5


def per_call_us(function, calls: int) -> float:
    """Microseconds per call: the median of ROUNDS rounds of `calls` calls, after a warm-up."""
    for _ in range(max(1, calls // 10)):
        function()
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(calls):
            function()
        rounds.append((time.perf_counter() - started) / calls * 1e6)
    return round(statistics.median(rounds), 1)


def whole_request(app: Flask, token: str):
    environ = EnvironBuilder(path=PAGE_PATH, headers={"Authorization": f"Bearer {token}"}).get_environ()

    def start_response(status, headers, exc_info=None):
        if not status.startswith("200"):
            raise RuntimeError(f"{PAGE_PATH} answered {status}")

    def request():
        for _ in app(dict(environ), start_response):
            pass

    return request


def stages(app: Flask, token: str, user_id: int, calls: int) -> dict[str, float]:
    """Microseconds per call of the whole list page and of each stage, for the token's user."""
    timings = {"whole request (WSGI app, in-process)": per_call_us(whole_request(app, token), calls)}
    with app.test_request_context(PAGE_PATH, headers={"Authorization": f"Bearer {token}"}):
        page = (
            select(Task)
            .where(Task.user_id == user_id)
            .order_by(Task.created_at.desc(), Task.id.desc())
            .limit(51)
        )
        tasks = db.session.scalars(page).all()[:50]
        schema, claims = TaskListSchema(), decode_token(token)
        dumped = schema.dump({"items": tasks, "next_cursor": None})
        driver = db.session.connection().connection.driver_connection
        session_id = uuid.UUID(claims["sid"])

        def psycopg2(sql: str, params=None):
            def run():
                with driver.cursor() as cursor:
                    cursor.execute(sql, params)
                    cursor.fetchall()

            return run

        timings.update(
            {
                "page query, ORM (51 Task objects)": per_call_us(
                    lambda: db.session.scalars(page).all(), calls
                ),
                "page query, psycopg2 (speed-of-light SQL)": per_call_us(
                    psycopg2(speed_of_light.PAGE_SQL, {"user_id": user_id, "limit": 51}), calls
                ),
                "page query, psycopg2 (the API's JSON built by PostgreSQL)": per_call_us(
                    psycopg2(SQL_JSON_PAGE, {"user_id": user_id}), calls
                ),
                "marshmallow dump of 50 tasks": per_call_us(
                    lambda: schema.dump({"items": tasks, "next_cursor": None}), calls
                ),
                "JSON encoding of the page": per_call_us(lambda: app.json.dumps(dumped), calls),
                "token decode (flask-jwt-extended)": per_call_us(lambda: decode_token(token), calls),
                "session check query (ORM)": per_call_us(
                    lambda: db.session.scalar(
                        LIVE_SESSION_USER, {"session_id": session_id, "user_id": user_id}
                    ),
                    calls,
                ),
                "one round trip (SELECT 1, psycopg2)": per_call_us(psycopg2("SELECT 1"), calls),
            }
        )
        db.session.rollback()
    return timings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--token", required=True, help="an access token of the bench user")
    parser.add_argument("--user-id", type=int, required=True)
    parser.add_argument("--calls", type=int, default=200, help="calls per round")
    args = parser.parse_args(argv)
    from wsgi import app  # the app as gunicorn builds it, from this process's environment

    print(json.dumps(stages(app, args.token, args.user_id, args.calls)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
