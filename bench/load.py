"""Bench-only bulk loader: COPY a user's tasks and their tags straight into PostgreSQL.

Creating a million tasks through the API would take most of an hour; COPY takes
seconds. The rows satisfy every constraint the API's own rows do, with titles from
a small word list so full-text search (`q=`) finds matches at every size. Nothing
here commits: the caller owns the transaction.
"""

import io
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from app.models import local_day_start

# fmt: off
WORDS = (
    "report", "invoice", "meeting", "garden", "groceries", "dentist", "budget", "email", "review",
    "deploy", "backup", "taxes", "birthday", "car", "laundry", "plan", "call", "book", "fix",
    "write", "clean", "paint", "order", "renew", "cancel", "prepare", "schedule", "update",
    "refactor", "migrate", "test", "design", "draft", "send", "pay", "visit", "return", "repair",
)
# fmt: on
TAG_NAMES = ("work", "home", "errands", "health", "finance", "family", "someday", "reading")
PRIORITY_LEVELS = (None, 1, 2, 3, 4)
CHUNK = 100_000
NULL = r"\N"


def _reserve_ids(cursor, table: str, count: int) -> int:
    """Take `count` consecutive ids from the table's sequence; return the first."""
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,))
    sequence = cursor.fetchone()[0]
    cursor.execute("SELECT nextval(%s)", (sequence,))
    first = cursor.fetchone()[0]
    cursor.execute("SELECT setval(%s, %s)", (sequence, first + count - 1))
    return first


def _timestamp(moment: datetime) -> str:
    return moment.isoformat()


def _task_rows(
    user_id: int, first_id: int, count: int, rng: random.Random, now: datetime, zone: str = "UTC"
) -> Iterator[str]:
    """COPY text lines for `count` tasks, the oldest first, created over the past two years; 70 %
    have a due, a quarter of those a date-only one (standing at its day's start in `zone`)."""
    span = timedelta(days=730).total_seconds()
    for offset in range(count):
        created = now - timedelta(seconds=span * (count - offset) / count)
        title = " ".join(rng.choices(WORDS, k=3)).capitalize()
        description = " ".join(rng.choices(WORDS, k=rng.choice((0, 0, 5, 12))))
        completed = rng.random() < 0.3
        completed_at = _timestamp(created + timedelta(days=1)) if completed else NULL
        due = created + timedelta(days=rng.randint(-30, 400)) if rng.random() < 0.7 else None
        day = due.date() if due is not None and rng.random() < 0.25 else None
        if day is not None:
            due = None
        level = rng.choice(PRIORITY_LEVELS)
        yield "\t".join(
            (
                str(first_id + offset),
                str(user_id),
                title,
                description,
                "t" if completed else "f",
                completed_at,
                _timestamp(due) if due else NULL,
                day.isoformat() if day else NULL,
                _timestamp(local_day_start(day, zone)) if day else NULL,
                NULL if level is None else str(level),
                _timestamp(created),
                _timestamp(created),
            )
        )


def _copy(cursor, table: str, columns: str, lines: Iterator[str]) -> None:
    """COPY `lines` into `table` in chunks, so a million rows never sit in memory at once."""
    buffer = io.StringIO()
    for written, line in enumerate(lines, start=1):
        buffer.write(line)
        buffer.write("\n")
        if written % CHUNK == 0:
            buffer.seek(0)
            cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)
            buffer = io.StringIO()
    if buffer.tell():
        buffer.seek(0)
        cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)


TASK_COLUMNS = (
    "id, user_id, title, description, completed, completed_at, due_at, due_date, due_date_start, "
    "priority_level, created_at, updated_at"
)


def ensure_tags(connection, user_id: int, names=TAG_NAMES) -> list[int]:
    """The ids of the user's tags named `names`, creating the missing ones, in the order given."""
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(
                "INSERT INTO tags (user_id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING", (user_id, name)
            )
        cursor.execute(
            "SELECT lower(name), id FROM tags WHERE user_id = %s AND lower(name) = ANY(%s)",
            (user_id, [name.lower() for name in names]),
        )
        ids = dict(cursor.fetchall())
    return [ids[name.lower()] for name in names]


def load_tasks(connection, user_id: int, count: int, tag_ids: list[int] = (), seed: int = 0) -> range:
    """Insert `count` tasks for `user_id`, each with zero to two of `tag_ids`; return their ids."""
    if count <= 0:
        return range(0)
    rng = random.Random(seed)
    now = datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute("SELECT timezone FROM users WHERE id = %s", (user_id,))
        zone = cursor.fetchone()[0]
        first = _reserve_ids(cursor, "tasks", count)
        _copy(cursor, "tasks", TASK_COLUMNS, _task_rows(user_id, first, count, rng, now, zone))
        if tag_ids:
            _copy(cursor, "task_tags", "task_id, tag_id", _tag_rows(first, count, list(tag_ids), rng))
    return range(first, first + count)


def _tag_rows(first_id: int, count: int, tag_ids: list[int], rng: random.Random) -> Iterator[str]:
    for task_id in range(first_id, first_id + count):
        for tag_id in rng.sample(tag_ids, k=min(len(tag_ids), rng.choice((0, 1, 1, 2)))):
            yield f"{task_id}\t{tag_id}"


def load_other_users(
    connection, count: int, tasks_each: int, password_hash: str = "bench-no-login", seed: int = 1
) -> list[int]:
    """Create `count` users (who cannot log in) with `tasks_each` tasks each; return their ids."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO users (email, password_hash) "
            "SELECT 'bench-other-' || n || '-' || md5(random()::text) || '@example.com', %s "
            "FROM generate_series(1, %s) AS n RETURNING id",
            (password_hash, count),
        )
        user_ids = [row[0] for row in cursor.fetchall()]
        if not user_ids or tasks_each <= 0:
            return user_ids
        first = _reserve_ids(cursor, "tasks", count * tasks_each)

        def rows() -> Iterator[str]:
            for index, user_id in enumerate(user_ids):
                yield from _task_rows(user_id, first + index * tasks_each, tasks_each, rng, now)

        _copy(cursor, "tasks", TASK_COLUMNS, rows())
    return user_ids


@contextmanager
def indexes_dropped(connection, tables: tuple[str, ...] = ("tasks", "task_tags")):
    """Drop the plain secondary indexes of `tables` for a bulk load, and build them again after.

    Building an index once over a million rows is several times faster than updating it
    row by row. Primary keys and unique indexes stay, so the load is checked as usual.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indrelid = ANY(%s::regclass[]) AND NOT indisunique AND NOT indisprimary",
            (list(tables),),
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            cursor.execute(definition)
