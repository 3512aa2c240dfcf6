"""PostgreSQL clusters of the tests' own, from the pgserver wheel's binaries.

`embedded_server` is the throwaway server most tests use (Unix socket, trust
auth). `PgCluster` is a second kind the start-up and outage tests need: TCP on
127.0.0.1 with a password, which a test can stop and start again.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pgserver
from pgserver.utils import ensure_prefix_permissions, ensure_user_exists
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"
SYSTEM_USER = "pgserver"  # PostgreSQL refuses to run as root; pgserver uses this account


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_postgres_user() -> dict:
    if os.geteuid() != 0:
        return {}
    entry = ensure_user_exists(SYSTEM_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid}


class PgCluster:
    """A cluster on 127.0.0.1:`port` with password authentication."""

    def __init__(self, base: Path, password: str = "s3cret-test-password") -> None:
        self.base = base
        self.data = base / "data"
        self.password = password
        self.port = free_port()
        self._run_as = as_postgres_user()

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        return f"postgresql://postgres:{password or self.password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [str(BIN / args[0]), *args[1:]], capture_output=True, text=True, **self._run_as
        )
        if result.returncode:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr or result.stdout}")

    def init(self) -> "PgCluster":
        self.base.mkdir(parents=True, exist_ok=True)
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._run_as:
            ensure_prefix_permissions(self.base)
            for path in (self.base, pwfile):
                os.chown(path, self._run_as["user"], self._run_as["group"])
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            "--auth-local=trust",
            f"--pwfile={pwfile}",
            "--encoding=utf8",
        )
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.base / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def pid(self) -> int | None:
        pidfile = self.data / "postmaster.pid"
        return int(pidfile.read_text().split()[0]) if pidfile.exists() else None

    def running(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def execute(self, sql: str, database: str = "postgres") -> list:
        """Run one statement outside any transaction block; return its rows (if any)."""
        engine = create_engine(
            self.url(database).replace("postgresql:", "postgresql+psycopg2:", 1),
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
        )
        try:
            with engine.connect() as connection:
                result = connection.execute(text(sql))
                return result.all() if result.returns_rows else []
        finally:
            engine.dispose()

    def create_database(self, name: str) -> str:
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def private_dir(prefix: str) -> Path:
    """A new directory that PostgreSQL's system user can reach.

    Not under pytest's tmp_path: every pytest run on the machine (a developer's,
    a nested one) resets /tmp/pytest-of-<user> to 0700, locking that user out.
    """
    return Path(tempfile.mkdtemp(prefix=prefix))


@contextlib.contextmanager
def running_cluster():
    """A started PgCluster for a `with` block (a module fixture); stopped and removed after."""
    base = private_dir("pgcluster-")
    cluster = PgCluster(base).init()
    cluster.start()
    try:
        yield cluster
    finally:
        if cluster.running():
            cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
