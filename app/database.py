"""Checks of the database at start-up and for operators: reachable, and at the latest migration."""

import time
from dataclasses import dataclass
from pathlib import Path

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class DatabaseNotReady(Exception):
    """The database cannot serve this version of the app; the message says why."""


@dataclass(frozen=True)
class DatabaseState:
    server_version: str
    round_trip_ms: float
    current: tuple[str, ...]
    head: tuple[str, ...]
    pending: int

    def problem(self) -> str | None:
        """Why the schema is not usable, or None when it is at the latest migration."""
        if self.pending < 0:
            return f"database is at unknown revision {', '.join(self.current)}: deploy the matching code"
        if self.pending:
            plural = "s" if self.pending != 1 else ""
            return f"{self.pending} migration{plural} pending: run flask db upgrade"
        return None


def _pending(script: ScriptDirectory, current: tuple[str, ...], head: tuple[str, ...]) -> int:
    if set(current) == set(head):
        return 0
    try:
        return len(list(script.iterate_revisions(head, current or "base")))
    except CommandError:
        return -1


def inspect_database(url: str, connect_timeout: int) -> DatabaseState:
    """Connect once (outside any pool) and read the server version and migration state."""
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": connect_timeout})
    try:
        with engine.connect() as connection:
            started = time.perf_counter()
            version = connection.execute(text("SHOW server_version")).scalar_one()
            round_trip_ms = (time.perf_counter() - started) * 1000
            current = tuple(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = tuple(script.get_heads())
    return DatabaseState(version, round_trip_ms, current, head, _pending(script, current, head))


def connection_failure(exc: DBAPIError) -> str:
    """The driver's first line of complaint: names the cause, never the password."""
    lines = [line.strip() for line in str(exc.orig).splitlines() if line.strip()]
    return lines[0] if lines else exc.orig.__class__.__name__


def wait_for_database(url: str, connect_timeout: int, retry_seconds: float) -> DatabaseState:
    """Inspect the database, retrying for `retry_seconds` while it cannot be reached.

    The retry covers a serverless compute (Neon) that scaled to zero and is waking up.
    """
    deadline = time.monotonic() + retry_seconds
    while True:
        try:
            return inspect_database(url, connect_timeout)
        except DBAPIError as exc:
            if time.monotonic() + 1 >= deadline:
                raise DatabaseNotReady(f"cannot connect to the database: {connection_failure(exc)}") from None
            time.sleep(1)


def verify_database(config) -> DatabaseState:
    """Raise DatabaseNotReady unless the database answers and is at the latest migration."""
    state = wait_for_database(
        config["SQLALCHEMY_DATABASE_URI"],
        config["DB_CONNECT_TIMEOUT"],
        config["DB_STARTUP_RETRY"],
    )
    if reason := state.problem():
        raise DatabaseNotReady(reason)
    return state
