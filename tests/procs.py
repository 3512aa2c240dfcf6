"""Real processes for the operations tests: the flask CLI, gunicorn and PgBouncer.

Everything listens on 127.0.0.1 only, every wait is bounded, and every process
is stopped by its PID (children included) when the test is done with it.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests

from pg_cluster import PgCluster, as_postgres_user, free_port, private_dir

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PGBOUNCER = "/usr/sbin/pgbouncer"
PASSWORD = "correct horse battery"
# Variables of the developer's shell that would change what the app under test does.
_APP_VARIABLES = (
    "DATABASE_URL",
    "TEST_DATABASE_URL",
    "APP_ENV",
    "SECRET_KEY",
    "JWT_SECRET_KEY",
    "PORT",
    "HOST",
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "METRICS_ENABLED",
    "PROMETHEUS_MULTIPROC_DIR",
)


def app_env(database_url: str | None, **overrides: str) -> dict[str, str]:
    """A production environment for the app: real secrets, no rate limits, quiet logs."""
    env = {k: v for k, v in os.environ.items() if k not in _APP_VARIABLES and not k.startswith("RATELIMIT_")}
    env.update(
        APP_ENV="production",
        SECRET_KEY="s" * 40,
        JWT_SECRET_KEY="j" * 40,
        # An empty value is "missing" to the app and keeps a developer's .env from filling it in.
        DATABASE_URL=database_url or "",
        FLASK_APP="wsgi",
        RATELIMIT_ENABLED="false",
        LOG_LEVEL="WARNING",
        DB_STARTUP_RETRY="2",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def flask(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `flask ARGS` to completion (killed past `timeout`)."""
    return subprocess.run(
        [str(BIN / "flask"), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def migrated_database(cluster: PgCluster, name: str) -> str:
    """A new database on `cluster`, upgraded and seeded by the CLI; its URL."""
    url = cluster.create_database(name)
    for command in (("db", "upgrade"), ("seed",)):
        result = flask(*command, env=app_env(url))
        assert result.returncode == 0, result.stderr
    return url


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def stop_process(pid: int, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
    """Signal `pid`, wait for it, SIGKILL it and its children past `timeout`; its exit code."""
    try:
        process = psutil.Process(pid)
        children = process.children(recursive=True)
        process.send_signal(sig)
        code = process.wait(timeout)
    except psutil.NoSuchProcess:
        return None
    except psutil.TimeoutExpired:
        process.kill()
        code = process.wait(10)
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    return code


def wait_for_port(port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Gunicorn:
    """`gunicorn wsgi:app` with the project's gunicorn.conf.py, on a free port of 127.0.0.1."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int = 2, threads: int = 1) -> None:
        self.port = free_port()
        self.env = {
            **env,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": str(threads),
        }
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> "Gunicorn":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "gunicorn"), "wsgi:app"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def wait_ready(self, timeout: float = 30) -> "Gunicorn":
        """Wait until every worker can answer /health."""
        wait_for_port(self.port, timeout, self.process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url("/health"), timeout=5).status_code == 200:
                    return self
            time.sleep(0.1)
        raise TimeoutError(f"gunicorn on {self.port} is not healthy:\n{self.log()}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def worker_pids(self) -> list[int]:
        return [child.pid for child in psutil.Process(self.process.pid).children()]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        stop_process(self.process.pid, sig, timeout)
        return self.process.wait(5)


@contextlib.contextmanager
def running_gunicorn(env: dict[str, str], log_path: Path, **kwargs):
    server = Gunicorn(env, log_path, **kwargs).start()
    try:
        yield server.wait_ready()
    finally:
        server.stop()


class PgBouncer:
    """PgBouncer in transaction pooling mode in front of `cluster`, any database name."""

    def __init__(self, cluster: PgCluster) -> None:
        self.base = private_dir("pgbouncer-")
        self.cluster = cluster
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def url(self, database: str = "postgres") -> str:
        return self.cluster.url(database).replace(f":{self.cluster.port}/", f":{self.port}/")

    def _write_config(self) -> Path:
        userlist = self.base / "userlist.txt"
        userlist.write_text(f'"postgres" "{self.cluster.password}"\n')
        ini = self.base / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={self.cluster.port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = scram-sha-256\n"
            f"auth_file = {userlist}\n"
            "admin_users = postgres\n"
            "pool_mode = transaction\n"
            "max_client_conn = 500\n"
            "default_pool_size = 20\n"
            # Clients may send these; a pooler cannot keep them per session.
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.base / 'pgbouncer.log'}\n"
        )
        run_as = as_postgres_user()
        if run_as:
            for path in (self.base, userlist, ini):
                os.chown(path, run_as["user"], run_as["group"])
            userlist.chmod(0o600)
        return ini

    def start(self) -> "PgBouncer":
        ini = self._write_config()
        # PgBouncer refuses to run as root; it runs as PostgreSQL's system user then.
        self.process = subprocess.Popen(
            [PGBOUNCER, str(ini)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **as_postgres_user(),
        )
        wait_for_port(self.port, 10, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process.pid, signal.SIGTERM, 10)
        shutil.rmtree(self.base, ignore_errors=True)
