"""Speed of light for `GET /api/v1/tasks`: the same first page, as cheaply as Python can serve it.

Three rungs of one ladder, each served by the same gunicorn settings as the API, so that the
bench can say where the API's time goes in requests per second rather than in guesses:

- `/` is the speed of light proper: a bare WSGI callable, one hand-written SQL query through
  psycopg2 on a connection kept per worker (autocommit), `json.dumps`, no ORM, no framework,
  no auth. It serves the page of the user in BENCH_USER_ID.
- `/auth` adds what the contract asks of every authenticated request and nothing more: the
  bearer token is verified (PyJWT, HS256, `exp`, type `access`) and its session is checked to
  be live in the same single query; no token, a bad one or a revoked session is a 401.
- `/flask` is `/auth` as a route of a bare Flask app: the framework's own cost.

    DATABASE_URL=postgresql://... BENCH_USER_ID=1 JWT_SECRET_KEY=... gunicorn speed_of_light:app
"""

import base64
import json
import os
import threading
from datetime import UTC

import jwt
import psycopg2
import psycopg2.pool
from flask import Flask, request

PAGE = 50
COLUMNS = """t.id, t.title, t.description, t.completed, t.completed_at, t.due_at, t.due_date, p.name,
       ARRAY(SELECT g.name FROM task_tags tt JOIN tags g ON g.id = tt.tag_id
             WHERE tt.task_id = t.id ORDER BY lower(g.name), g.id),
       t.created_at, t.updated_at"""
PAGE_SQL = f"""
SELECT {COLUMNS}
FROM tasks t LEFT JOIN priorities p ON p.level = t.priority_level
WHERE t.user_id = %(user_id)s
ORDER BY t.created_at DESC, t.id DESC
LIMIT %(limit)s
"""
# The session's liveness and the page in one statement: no row means the session is not live;
# one row of nulls means it is, with no tasks.
AUTHENTICATED_PAGE_SQL = f"""
SELECT page.*
FROM sessions s
LEFT JOIN LATERAL (
    SELECT {COLUMNS}
    FROM tasks t LEFT JOIN priorities p ON p.level = t.priority_level
    WHERE t.user_id = s.user_id
    ORDER BY t.created_at DESC, t.id DESC
    LIMIT %(limit)s
) page ON true
WHERE s.id = %(session_id)s AND s.user_id = %(user_id)s
  AND s.revoked_at IS NULL AND s.expires_at > now()
"""
KEYS = (
    "id",
    "title",
    "description",
    "completed",
    "completed_at",
    "due_at",
    "due_date",
    "priority",
    "tags",
    "created_at",
    "updated_at",
)


class Unauthorized(Exception):
    """No bearer token, a token that does not verify, or a session that is not live."""


def _utc(moment):
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _day(day):
    return day.isoformat() if day is not None else None


def _as_page(rows: list[tuple], limit: int) -> dict:
    """Rows (one more than `limit` when there is a next page) in the API's JSON shape."""
    items = [
        dict(
            zip(
                KEYS,
                (*row[:4], _utc(row[4]), _utc(row[5]), _day(row[6]), *row[7:9], _utc(row[9]), _utc(row[10])),
                strict=True,
            )
        )
        for row in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = base64.urlsafe_b64encode(f"{last['created_at']},{last['id']}".encode()).decode()
    return {"items": items, "next_cursor": next_cursor}


def page(connection, user_id: int, limit: int = PAGE) -> dict:
    """The first page of the user's tasks, newest first, in the API's JSON shape."""
    with connection.cursor() as cursor:
        cursor.execute(PAGE_SQL, {"user_id": user_id, "limit": limit + 1})
        return _as_page(cursor.fetchall(), limit)


def claims(authorization: str, key: str) -> tuple[int, str]:
    """(user id, session id) of a verified access token in an `Authorization: Bearer` header."""
    scheme, _, token = authorization.partition(" ")
    if scheme != "Bearer" or not token:
        raise Unauthorized
    try:
        payload = jwt.decode(token, key, algorithms=["HS256"])
        if payload["type"] != "access":
            raise Unauthorized
        return int(payload["sub"]), payload["sid"]
    except (jwt.InvalidTokenError, KeyError, ValueError, TypeError):
        raise Unauthorized from None


def authenticated_page(connection, authorization: str, key: str, limit: int = PAGE) -> dict:
    """The token holder's first page, the session checked in the page's own query."""
    user_id, session_id = claims(authorization, key)
    with connection.cursor() as cursor:
        cursor.execute(
            AUTHENTICATED_PAGE_SQL, {"user_id": user_id, "session_id": session_id, "limit": limit + 1}
        )
        rows = cursor.fetchall()
    if not rows:
        raise Unauthorized
    return _as_page([row for row in rows if row[0] is not None], limit)


def libpq_url(url: str) -> str:
    """The SQLAlchemy-style URL the API takes, as libpq wants it."""
    scheme, _, rest = url.partition("://")
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


_pool = None
_pool_lock = threading.Lock()


def _connections() -> psycopg2.pool.ThreadedConnectionPool:
    # Made on first use, so each gunicorn worker opens its own after the fork.
    global _pool
    with _pool_lock:
        if _pool is None:
            threads = int(os.environ.get("GUNICORN_THREADS", "1"))
            _pool = psycopg2.pool.ThreadedConnectionPool(
                1, max(1, threads), libpq_url(os.environ["DATABASE_URL"]), application_name="speed-of-light"
            )
        return _pool


def _serve(make_page) -> dict:
    pool = _connections()
    connection = pool.getconn()
    try:
        connection.autocommit = True
        return make_page(connection)
    finally:
        pool.putconn(connection)


def _respond(start_response, status: str, body: bytes, content_type: str = "application/json"):
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


flask_app = Flask(__name__)


@flask_app.get("/flask")
def flask_page():
    key = os.environ["JWT_SECRET_KEY"]
    authorization = request.headers.get("Authorization", "")
    try:
        return _serve(lambda connection: authenticated_page(connection, authorization, key))
    except Unauthorized:
        return {"title": "Unauthorized", "status": 401}, 401


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/flask":
        return flask_app(environ, start_response)
    if path == "/auth":
        key, authorization = os.environ["JWT_SECRET_KEY"], environ.get("HTTP_AUTHORIZATION", "")
        try:
            body = _serve(lambda connection: authenticated_page(connection, authorization, key))
        except Unauthorized:
            return _respond(start_response, "401 Unauthorized", b'{"status": 401}')
        return _respond(start_response, "200 OK", json.dumps(body).encode())
    if path == "/":
        user_id = int(os.environ["BENCH_USER_ID"])
        return _respond(start_response, "200 OK", json.dumps(_serve(lambda c: page(c, user_id))).encode())
    return _respond(start_response, "404 Not Found", b"", "text/plain")
