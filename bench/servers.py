"""The processes a bench run starts: its own PostgreSQL, gunicorn instances, and a tiny HTTP client."""

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pg_cluster import PgCluster, free_port  # noqa: E402

BIN = Path(sys.executable).parent
# The API's own application_name (config.py); statement counting keys on it.
API_APPLICATION_NAME = "todo-api"
SETTINGS = """
# bench/servers.py: room for every worker, the app's name on each log line, no statement logging
# by default (the counting server turns it on for its own connections only).
max_connections = 300
shared_buffers = 512MB
log_line_prefix = '%a|'
log_statement = 'none'
"""


class BenchCluster(PgCluster):
    """PgCluster with the settings a benchmark wants (fsync is already off)."""

    def init(self) -> "BenchCluster":
        super().init()
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(SETTINGS)
        return self

    @property
    def log(self) -> Path:
        return self.base / "log"


def call(port: int, method: str, path: str, body=None, token: str | None = None) -> tuple[int, object]:
    """One HTTP request to 127.0.0.1:`port`; the status and the JSON answer (or None)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(raw) if raw else None
    except ValueError:
        return response.status, None


class Gunicorn:
    """A gunicorn serving `module` on a free port, its output in `log`."""

    def __init__(self, module: str, env: dict, log: Path, cwd: Path = ROOT, ready_path: str = "/health"):
        self.port = free_port()
        self.log = log
        env = {**env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        command = [str(BIN / "gunicorn"), module]
        if cwd != ROOT:
            # Not the API: none of its gunicorn.conf.py hooks, the same worker settings.
            command += ["--pythonpath", str(ROOT), "--bind", f"127.0.0.1:{self.port}"]
            command += ["--workers", env["WEB_CONCURRENCY"], "--threads", env.get("GUNICORN_THREADS", "1")]
            command += ["--keep-alive", "5"]
        with log.open("ab") as output:
            self.process = subprocess.Popen(command, env=env, cwd=cwd, stdout=output, stderr=output)
        self._wait_ready(ready_path)

    def _wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log}")
            try:
                if call(self.port, "GET", path)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout} s; see {self.log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def flask(env: dict, *args: str) -> None:
    """Run a flask CLI command against the bench database; stop the run if it fails."""
    result = subprocess.run(
        [str(BIN / "flask"), *args],
        env={**env, "FLASK_APP": "wsgi"},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        sys.exit(f"error: flask {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


def count_statements(log: Path, offset: int) -> tuple[int, int]:
    """(data statements, all round trips) the API logged in `log` after `offset`.

    BEGIN, COMMIT, ROLLBACK and the pool's pre-ping `SELECT 1` are round trips but not data statements.
    """
    queries = trips = 0
    marker = f"{API_APPLICATION_NAME}|LOG:  statement: "
    with log.open("rb") as raw:
        raw.seek(offset)
        for line in raw.read().decode(errors="replace").splitlines():
            if not line.startswith(marker):
                continue
            trips += 1
            statement = line.removeprefix(marker).strip().upper()
            if statement not in ("BEGIN", "COMMIT", "ROLLBACK", "SELECT 1"):
                queries += 1
    return queries, trips


def environment(**overrides: str) -> dict:
    base = {key: value for key, value in os.environ.items() if not key.startswith(("PG", "FLASK_"))}
    return {**base, **overrides}
