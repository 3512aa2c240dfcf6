"""Speed of light for `GET /api/v1/tasks`: the same first page, as cheaply as Python can serve it.

A bare WSGI callable, one hand-written SQL query through psycopg2 on a connection kept
per worker, `json.dumps`, no ORM, no framework, no auth. Served by the same gunicorn
settings as the API, its throughput is the ceiling the API's list page is measured against.

    DATABASE_URL=postgresql://... BENCH_USER_ID=1 gunicorn speed_of_light:app
"""

import base64
import json
import os
import threading
from datetime import UTC

import psycopg2
import psycopg2.pool

PAGE = 50
PAGE_SQL = """
SELECT t.id, t.title, t.description, t.completed, t.completed_at, t.due_at, p.name,
       ARRAY(SELECT g.name FROM task_tags tt JOIN tags g ON g.id = tt.tag_id
             WHERE tt.task_id = t.id ORDER BY lower(g.name), g.id),
       t.created_at, t.updated_at
FROM tasks t LEFT JOIN priorities p ON p.level = t.priority_level
WHERE t.user_id = %s
ORDER BY t.created_at DESC, t.id DESC
LIMIT %s
"""
KEYS = (
    "id",
    "title",
    "description",
    "completed",
    "completed_at",
    "due_at",
    "priority",
    "tags",
    "created_at",
    "updated_at",
)


def _utc(moment):
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def page(connection, user_id: int, limit: int = PAGE) -> dict:
    """The first page of the user's tasks, newest first, in the API's JSON shape."""
    with connection.cursor() as cursor:
        cursor.execute(PAGE_SQL, (user_id, limit + 1))
        rows = cursor.fetchall()
    items = [
        dict(
            zip(
                KEYS,
                (*row[:4], _utc(row[4]), _utc(row[5]), *row[6:8], _utc(row[8]), _utc(row[9])),
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


def app(environ, start_response):
    pool = _connections()
    connection = pool.getconn()
    try:
        connection.autocommit = True
        body = json.dumps(page(connection, int(os.environ["BENCH_USER_ID"]))).encode()
    finally:
        pool.putconn(connection)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
