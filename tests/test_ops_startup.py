"""Fail fast: gunicorn and `flask run` refuse a bad configuration or database with one line.

Also the operator commands (`flask db upgrade`, `seed`, `check-db`) on an empty database.
"""

import subprocess
import time
import uuid

import pytest
import requests
from procs import BIN, ROOT, app_env, error_lines, flask, migrated_database, running_gunicorn, stop_process

from pg_cluster import free_port, running_cluster

pytestmark = pytest.mark.slow

# Start-up retries an unreachable database DB_STARTUP_RETRY (2 s here) with a
# connect timeout of 5 s per attempt; anything slower than this is a hang.
EXIT_WITHIN = 25


@pytest.fixture(scope="module")
def cluster():
    with running_cluster() as cluster:
        yield cluster


def start_until_exit(command: str, env: dict[str, str]) -> tuple[int, str, float]:
    """Start gunicorn or `flask run` and wait for it to give up; (exit code, stderr, seconds)."""
    argv = {
        "gunicorn": [str(BIN / "gunicorn"), "wsgi:app"],
        "flask run": [str(BIN / "flask"), "run", "--host", "127.0.0.1", "--port", str(free_port())],
    }[command]
    env = {**env, "HOST": "127.0.0.1", "PORT": str(free_port()), "WEB_CONCURRENCY": "2"}
    started = time.monotonic()
    process = subprocess.Popen(
        argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _, stderr = process.communicate(timeout=EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        stop_process(process.pid, timeout=5)
        process.communicate(timeout=5)
        pytest.fail(f"{command} still running after {EXIT_WITHIN} s: it did not fail fast")
    return process.returncode, stderr.decode(errors="replace"), time.monotonic() - started


@pytest.fixture(scope="module")
def bad_environments(cluster) -> dict[str, tuple[dict[str, str], str]]:
    """name -> (environment, what the one error line must say); one empty database for all."""
    empty = cluster.create_database(f"empty_{uuid.uuid4().hex[:8]}")
    closed_port = f"postgresql://postgres:x@127.0.0.1:{free_port()}/todo"
    return {
        "missing": (app_env(None), "DATABASE_URL is not set"),
        "sqlite": (app_env("sqlite:///x.db"), "SQLite"),
        "unreachable": (app_env(closed_port, DB_STARTUP_RETRY="2"), "cannot connect to the database"),
        "wrong password": (
            app_env(cluster.url("postgres", password="wrong-password")),
            "password authentication failed",
        ),
        "schema behind": (app_env(empty), "run flask db upgrade"),
        "production without secrets": (
            app_env(cluster.url(), SECRET_KEY="", JWT_SECRET_KEY=""),
            "SECRET_KEY is not set",
        ),
        "unknown url parameter": (app_env(asyncpg_url(cluster, "pgbouncer=true")), "parameter pgbouncer is"),
        "ssl conflict": (
            app_env(asyncpg_url(cluster, "ssl=true&sslmode=disable")),
            "ssl and sslmode disagree",
        ),
        # The test server has no TLS: asyncpg's ssl=require must not quietly connect in plaintext.
        "ssl required, server without": (
            app_env(asyncpg_url(cluster, "ssl=require")),
            "server does not support SSL, but SSL was required",
        ),
    }


def asyncpg_url(cluster, query: str, database: str = "postgres") -> str:
    """The cluster's URL as an asyncpg config spells it."""
    return cluster.url(database).replace("postgresql://", "postgresql+asyncpg://", 1) + f"?{query}"


@pytest.mark.parametrize("command", ["gunicorn", "flask run"])
@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "sqlite",
        "unreachable",
        "wrong password",
        "schema behind",
        "production without secrets",
        "unknown url parameter",
        "ssl conflict",
        "ssl required, server without",
    ],
)
def test_refuses_to_start_with_one_clear_line(bad_environments, command, case):
    env, expected = bad_environments[case]
    code, stderr, elapsed = start_until_exit(command, env)
    assert code != 0, stderr
    errors = error_lines(stderr)
    assert len(errors) == 1, stderr
    assert expected in errors[0], stderr
    assert "s3cret" not in stderr and "wrong-password" not in stderr
    if command == "gunicorn":
        # The check runs in the master: no worker was ever booted, so none restarted in a loop.
        assert "Booting worker" not in stderr, stderr
    assert elapsed < EXIT_WITHIN


def test_operator_commands_work_on_an_empty_database(cluster):
    url = cluster.create_database(f"fresh_{uuid.uuid4().hex[:8]}")
    env = app_env(url)

    before = flask("check-db", env=env)
    assert before.returncode == 1
    assert "pending" in before.stderr and "run flask db upgrade" in before.stderr
    assert "server version: PostgreSQL 16" in before.stdout

    assert flask("db", "upgrade", env=env).returncode == 0
    first = flask("seed", env=env)
    second = flask("seed", env=env)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    # The migration already inserts the priorities; seed tops up whatever is missing.
    assert "seeded" in first.stdout
    assert "seeded 0 priorities (4 already present)" in second.stdout
    rows = cluster.execute(
        "SELECT name, level FROM priorities ORDER BY level", database=url.rsplit("/", 1)[1]
    )
    assert [tuple(row) for row in rows] == [("low", 1), ("medium", 2), ("high", 3), ("urgent", 4)]

    after = flask("check-db", env=env)
    assert after.returncode == 0, after.stderr
    assert "server version: PostgreSQL" in after.stdout
    assert "round trip:" in after.stdout and " ms" in after.stdout
    assert "ok: the schema is at the latest migration" in after.stdout


def test_check_db_names_an_unreachable_database(cluster):
    result = flask("check-db", env=app_env(f"postgresql://postgres:x@127.0.0.1:{free_port()}/todo"))
    assert result.returncode == 1
    assert "cannot connect to the database" in result.stderr


def test_an_asyncpg_url_connects_through_psycopg2_with_one_warning(cluster, tmp_path):
    url = migrated_database(cluster, f"asyncpg_{uuid.uuid4().hex[:8]}")
    name = url.rsplit("/", 1)[1]
    env = app_env(asyncpg_url(cluster, "ssl=prefer&prepared_statement_cache_size=0&command_timeout=30", name))

    checked = flask("check-db", env=env)
    assert checked.returncode == 0, checked.stderr
    assert "ok: the schema is at the latest migration" in checked.stdout
    warned = [line for line in checked.stderr.splitlines() if "DatabaseUrlWarning" in line]
    assert len(warned) == 1, checked.stderr
    assert "command_timeout, prepared_statement_cache_size" in warned[0]

    with running_gunicorn(env, tmp_path / "gunicorn.log") as server:
        assert requests.get(server.url("/health"), timeout=10).json() == {"status": "ok", "database": "ok"}
    assert server.log().count("DatabaseUrlWarning") == 1, server.log()
