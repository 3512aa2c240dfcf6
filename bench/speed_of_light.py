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
- `/flask/api/v1/tasks/<id>` and `/flask/api/v1/auth/me` are the get and me references below
  as routes of the bare Flask app, on a connection checked out of a SQLAlchemy pool with the
  API's options (pre-ping included, as the contract keeps it): the floor of the prescribed stack.

References of other scenarios, on the API's own paths (the bench sends them the same requests):

- `GET /api/v1/tasks/<id>` and `GET /api/v1/auth/me`: bare WSGI, the token verified as for
  `/auth` and the session's liveness checked in the one query that reads the task or user.
- `GET /health`: a bare Flask route doing `SELECT 1` through a SQLAlchemy engine with the API's
  own pool settings (config.py: pre-ping on; autocommit, as the API's plain reads run).
- `POST /api/v1/tasks`: a hand-written create with the API's checks (token and session, title,
  description, completed, due_at, priority, tags) and its answer (201, Location, the task's
  JSON), in one round trip on an autocommit connection: the change stamp that every write
  draws for `GET /sync`, then one CTE with the session check, the missing tags (matched
  ignoring case), the task and its links, both in one message.

    DATABASE_URL=postgresql://... BENCH_USER_ID=1 JWT_SECRET_KEY=... gunicorn speed_of_light:app
"""

import base64
import hashlib
import json
import os
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import jwt
import psycopg2
import psycopg2.pool
from flask import Flask, request
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from config import Config  # the API's own pool settings

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


# One task of the token holder, the session checked in the same statement: no row means the
# session is not live; one row of nulls means the task is not theirs (404).
AUTHENTICATED_TASK_SQL = f"""
SELECT task.*
FROM sessions s
LEFT JOIN LATERAL (
    SELECT {COLUMNS}
    FROM tasks t LEFT JOIN priorities p ON p.level = t.priority_level
    WHERE t.id = %(task_id)s AND t.user_id = s.user_id
) task ON true
WHERE s.id = %(session_id)s AND s.user_id = %(user_id)s
  AND s.revoked_at IS NULL AND s.expires_at > now()
"""
AUTHENTICATED_USER_SQL = """
SELECT u.id, u.email, u.first_name, u.last_name, u.timezone, u.created_at
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.id = %(session_id)s AND s.user_id = %(user_id)s
  AND s.revoked_at IS NULL AND s.expires_at > now()
"""
USER_KEYS = ("id", "email", "first_name", "last_name", "timezone", "created_at")
# The whole create in one round trip: the sync change stamp that every write of the contract
# draws (GET /sync must carry the new task), then one statement, sent as one message (one
# implicit transaction). A tag inserted here is invisible to this statement's SELECT of `tags`
# (one snapshot), hence the union with what the INSERT returned.
CREATE_TASK_SQL = """
UPDATE users SET sync_seq = sync_seq + 1
WHERE id = %(user_id)s AND EXISTS (
    SELECT FROM sessions s WHERE s.id = %(session_id)s AND s.user_id = %(user_id)s
      AND s.revoked_at IS NULL AND s.expires_at > now()
);
WITH s AS (
    SELECT s.user_id, u.sync_seq FROM sessions s JOIN users u ON u.id = s.user_id
    WHERE s.id = %(session_id)s AND s.user_id = %(user_id)s
      AND s.revoked_at IS NULL AND s.expires_at > now()
), new_tags AS (
    INSERT INTO tags (user_id, name, sync_seq)
    SELECT s.user_id, name, s.sync_seq FROM s, unnest(%(tags)s::text[]) AS name
    ON CONFLICT DO NOTHING
    RETURNING id, name
), task_tags_ AS (
    SELECT id, name FROM new_tags
    UNION
    SELECT g.id, g.name FROM tags g, s
    WHERE g.user_id = s.user_id AND lower(g.name) = ANY(%(lowered)s::text[])
), task AS (
    INSERT INTO tasks (user_id, title, description, completed, completed_at, due_at, priority_level, sync_seq)
    SELECT s.user_id, %(title)s, %(description)s, %(completed)s,
           CASE WHEN %(completed)s THEN statement_timestamp() END,
           CASE WHEN %(naive)s
                THEN %(due_at)s::timestamp AT TIME ZONE (SELECT timezone FROM users WHERE id = s.user_id)
                ELSE %(due_at)s::timestamptz END,
           %(priority)s, s.sync_seq
    FROM s
    RETURNING id, title, description, completed, completed_at, due_at, due_date, priority_level, created_at,
              updated_at
), links AS (
    INSERT INTO task_tags (task_id, tag_id) SELECT task.id, g.id FROM task, task_tags_ g
)
SELECT task.id, task.title, task.description, task.completed, task.completed_at, task.due_at, task.due_date,
       p.name, ARRAY(SELECT name FROM task_tags_ ORDER BY lower(name) COLLATE "C"),
       task.created_at, task.updated_at
FROM task LEFT JOIN priorities p ON p.level = task.priority_level
"""
TITLE_MAX, DESCRIPTION_MAX, TAG_NAME_MAX, TAGS_MAX = 200, 10_000, 50, 20
PRIORITIES = {"low": 1, "medium": 2, "high": 3, "urgent": 4}
TASK_BODY_KEYS = {"title", "description", "completed", "due_at", "priority", "tags"}


class Unauthorized(Exception):
    """No bearer token, a token that does not verify, or a session that is not live."""


class Invalid(Exception):
    """A create body the API would answer 422; the argument maps fields to messages."""


def _utc(moment):
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _day(day):
    return day.isoformat() if day is not None else None


def _as_task(row: tuple) -> dict:
    return dict(
        zip(
            KEYS,
            (*row[:4], _utc(row[4]), _utc(row[5]), _day(row[6]), *row[7:9], _utc(row[9]), _utc(row[10])),
            strict=True,
        )
    )


def etag(task: dict) -> str:
    """The API's strong ETag of a task: a hash of its representation."""
    return f'"{hashlib.sha256(json.dumps(task, sort_keys=True).encode()).hexdigest()[:32]}"'


def _as_page(rows: list[tuple], limit: int) -> dict:
    """Rows (one more than `limit` when there is a next page) in the API's JSON shape."""
    items = [_as_task(row) for row in rows[:limit]]
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


def _one_row(connection, sql: str, authorization: str, key: str, **params) -> tuple:
    """The row of `sql` for the token holder (the session checked in `sql` itself)."""
    user_id, session_id = claims(authorization, key)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"user_id": user_id, "session_id": session_id, **params})
        row = cursor.fetchone()
    if row is None:
        raise Unauthorized
    return row


def authenticated_task(connection, authorization: str, key: str, task_id: int) -> dict | None:
    """The token holder's task `task_id`, or None when it is not theirs."""
    row = _one_row(connection, AUTHENTICATED_TASK_SQL, authorization, key, task_id=task_id)
    return None if row[0] is None else _as_task(row)


def authenticated_user(connection, authorization: str, key: str) -> dict:
    """The token holder's user object."""
    row = _one_row(connection, AUTHENTICATED_USER_SQL, authorization, key)
    return dict(zip(USER_KEYS, (*row[:5], _utc(row[5])), strict=True))


def _text(body: dict, name: str, errors: dict, low: int, high: int, default=None):
    value = body.get(name, default)
    if not isinstance(value, str):
        errors[name] = ["Not a valid string."]
        return None
    value = value.strip() if name == "title" else value
    if not low <= len(value) <= high:
        errors[name] = [f"Length must be between {low} and {high}."]
    return value


def _tags(value, errors: dict) -> list[str]:
    """Trimmed names, repeats ignoring case counted once (first spelling wins)."""
    if not isinstance(value, list) or len(value) > TAGS_MAX:
        errors["tags"] = [f"Not a list of at most {TAGS_MAX} names."]
        return []
    names: dict[str, str] = {}
    for i, name in enumerate(value):
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= TAG_NAME_MAX:
            errors[f"tags.{i}"] = [f"Length must be between 1 and {TAG_NAME_MAX}."]
            continue
        names.setdefault(name.strip().lower(), name.strip())
    return list(names.values())


def _due_at(value, errors: dict) -> tuple[str | None, bool]:
    """(RFC 3339 text, whether it has no offset) of `due_at`."""
    if value is None:
        return None, False
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except (AttributeError, ValueError):
        errors["due_at"] = ["Not a valid datetime."]
        return None, False
    return parsed.isoformat(), parsed.tzinfo is None


def task_params(body) -> dict:
    """The create body checked as the API checks it, as CREATE_TASK_SQL's parameters."""
    if not isinstance(body, dict):
        raise Invalid({"_schema": ["Invalid input type."]})
    errors = {name: ["Unknown field."] for name in body if name not in TASK_BODY_KEYS}
    if "title" not in body:
        errors["title"] = ["Missing data for required field."]
    title = _text(body, "title", errors, 1, TITLE_MAX, "")
    description = _text(body, "description", errors, 0, DESCRIPTION_MAX, "")
    completed = body.get("completed", False)
    if not isinstance(completed, bool):
        errors["completed"] = ["Not a valid boolean."]
    priority = body.get("priority")
    if priority is not None and priority not in PRIORITIES:
        errors["priority"] = [f"Must be one of: {', '.join(PRIORITIES)}."]
    tags = _tags(body.get("tags", []), errors)
    due_at, naive = _due_at(body.get("due_at"), errors)
    if errors:
        raise Invalid(errors)
    return {
        "title": title,
        "description": description,
        "completed": completed,
        "priority": PRIORITIES.get(priority),
        "tags": tags,
        "lowered": [name.lower() for name in tags],
        "due_at": due_at,
        "naive": naive,
    }


def create_task(connection, authorization: str, key: str, body) -> dict:
    """Create the token holder's task from a JSON body; its representation."""
    user_id, session_id = claims(authorization, key)
    params = task_params(body)
    with connection.cursor() as cursor:
        cursor.execute(CREATE_TASK_SQL, {"user_id": user_id, "session_id": session_id, **params})
        row = cursor.fetchone()
    if row is None:
        raise Unauthorized
    return _as_task(row)


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
_engine = None


def _health_engine():
    # The API's engine options (pre-ping included), on autocommit as the API's plain reads run.
    global _engine
    with _pool_lock:
        if _engine is None:
            config = Config()
            options = dict(config.SQLALCHEMY_ENGINE_OPTIONS)
            options["connect_args"] = {**options["connect_args"], "application_name": "speed-of-light"}
            _engine = create_engine(config.SQLALCHEMY_DATABASE_URI, isolation_level="AUTOCOMMIT", **options)
        return _engine


@flask_app.get("/health")
def health():
    with _health_engine().connect() as connection:
        connection.execute(text("SELECT 1"))
    return {"status": "ok", "database": "ok"}


def _pooled(make_answer):
    # A connection from the API's own pool settings (the pool pre-pings it), in autocommit.
    connection = _health_engine().raw_connection()
    try:
        connection.driver_connection.autocommit = True
        return make_answer(connection.driver_connection)
    finally:
        connection.close()


@flask_app.get("/flask/api/v1/auth/me")
def flask_me():
    key, authorization = os.environ["JWT_SECRET_KEY"], request.headers.get("Authorization", "")
    try:
        return _pooled(lambda connection: authenticated_user(connection, authorization, key))
    except Unauthorized:
        return {"title": "Unauthorized", "status": 401}, 401


@flask_app.get("/flask/api/v1/tasks/<int:task_id>")
def flask_task(task_id: int):
    key, authorization = os.environ["JWT_SECRET_KEY"], request.headers.get("Authorization", "")
    try:
        task = _pooled(lambda connection: authenticated_task(connection, authorization, key, task_id))
    except Unauthorized:
        return {"title": "Unauthorized", "status": 401}, 401
    if task is None:
        return {"status": 404}, 404
    return task, {"ETag": etag(task)}


@flask_app.get("/flask")
def flask_page():
    key = os.environ["JWT_SECRET_KEY"]
    authorization = request.headers.get("Authorization", "")
    try:
        return _serve(lambda connection: authenticated_page(connection, authorization, key))
    except Unauthorized:
        return {"title": "Unauthorized", "status": 401}, 401


def _json(start_response, status: str, body, headers=()) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers]
    )
    return [data]


def _task_answer(environ, start_response, path: str):
    key, authorization = os.environ["JWT_SECRET_KEY"], environ.get("HTTP_AUTHORIZATION", "")
    if environ["REQUEST_METHOD"] == "POST":
        size = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            body = json.loads(environ["wsgi.input"].read(size))
        except ValueError:
            return _json(start_response, "400 Bad Request", {"status": 400})
        task = _serve(lambda connection: create_task(connection, authorization, key, body))
        host = environ.get("HTTP_HOST") or environ["SERVER_NAME"]
        location = f"{environ['wsgi.url_scheme']}://{host}/api/v1/tasks/{task['id']}"
        return _json(start_response, "201 CREATED", task, [("Location", location)])
    task_id = int(path.rsplit("/", 1)[1])
    task = _serve(lambda connection: authenticated_task(connection, authorization, key, task_id))
    if task is None:
        return _json(start_response, "404 NOT FOUND", {"status": 404})
    return _json(start_response, "200 OK", task, [("ETag", etag(task))])


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path in ("/flask", "/health") or path.startswith("/flask/"):
        return flask_app(environ, start_response)
    key, authorization = os.environ["JWT_SECRET_KEY"], environ.get("HTTP_AUTHORIZATION", "")
    try:
        if path == "/auth":
            body = _serve(lambda connection: authenticated_page(connection, authorization, key))
            return _respond(start_response, "200 OK", json.dumps(body).encode())
        if path == "/api/v1/auth/me":
            user = _serve(lambda connection: authenticated_user(connection, authorization, key))
            return _json(start_response, "200 OK", user)
        if path == "/api/v1/tasks" or path.startswith("/api/v1/tasks/"):
            return _task_answer(environ, start_response, path)
    except Unauthorized:
        return _respond(start_response, "401 Unauthorized", b'{"status": 401}')
    except Invalid as invalid:
        return _json(start_response, "422 UNPROCESSABLE ENTITY", {"status": 422, "errors": invalid.args[0]})
    if path == "/":
        user_id = int(os.environ["BENCH_USER_ID"])
        return _respond(start_response, "200 OK", json.dumps(_serve(lambda c: page(c, user_id))).encode())
    return _respond(start_response, "404 Not Found", b"", "text/plain")
