"""gunicorn on a real PostgreSQL through real failures: the database goes away, a worker is
killed, the master is told to stop. What a client was told must match what was stored.
"""

import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psutil
import pytest
import requests
from procs import PASSWORD, Gunicorn, app_env, migrated_database, running_gunicorn

from pg_cluster import running_cluster

pytestmark = pytest.mark.slow

CONNECT_TIMEOUT = 2


@pytest.fixture(scope="module")
def cluster():
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def database(cluster):
    name = "todo_ops"
    return {"name": name, "url": migrated_database(cluster, name)}


@pytest.fixture
def env(database):
    return app_env(database["url"], DB_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT), DB_POOL_TIMEOUT="5")


@dataclass
class WriteLoad:
    """Threads registering users with unique emails until stopped; every answer is recorded."""

    server: Gunicorn
    threads: int = 3
    answers: list = field(default_factory=list)  # (email, status or None, seconds, retry_after)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _loop(self) -> None:
        with requests.Session() as http:
            while not self._stop.is_set():
                email = f"load-{uuid.uuid4().hex}@example.com"
                started = time.monotonic()
                try:
                    response = http.post(
                        self.server.url("/api/v1/auth/register"),
                        json={"email": email, "password": PASSWORD},
                        timeout=15,
                    )
                    status, retry_after = response.status_code, response.headers.get("Retry-After")
                except requests.RequestException:
                    status, retry_after = None, None
                    time.sleep(0.05)
                self.answers.append((email, status, time.monotonic() - started, retry_after))

    def __enter__(self) -> "WriteLoad":
        self._pool = ThreadPoolExecutor(self.threads)
        self._futures = [self._pool.submit(self._loop) for _ in range(self.threads)]
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for future in self._futures:
            future.result(timeout=30)
        self._pool.shutdown()

    def statuses(self, since: int = 0) -> list:
        return [answer[1] for answer in self.answers[since:]]


def stored_emails(cluster, database: str) -> set[str]:
    return {row[0] for row in cluster.execute("SELECT email FROM users", database=database)}


def wait_until(predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s")


def health(server: Gunicorn) -> tuple[int, float]:
    started = time.monotonic()
    response = requests.get(server.url("/health"), timeout=CONNECT_TIMEOUT + 5)
    return response.status_code, time.monotonic() - started


def test_database_outage_answers_503_then_recovers_without_a_restart(cluster, database, env, tmp_path):
    with running_gunicorn(env, tmp_path / "gunicorn.log", workers=2) as server, WriteLoad(server) as load:
        wait_until(lambda: load.statuses().count(201) >= 5, timeout=30)
        workers = server.worker_pids()

        cluster.stop()
        outage_starts = len(load.answers)
        status, seconds = health(server)
        assert status == 503
        assert seconds < CONNECT_TIMEOUT + 1
        assert requests.get(server.url("/health"), timeout=10).json() == {
            "status": "unavailable",
            "database": "unreachable",
        }
        wait_until(lambda: load.statuses(outage_starts).count(503) >= 5, timeout=30)

        cluster.start()
        recovered = wait_until(lambda: health(server)[0] == 200, timeout=10)
        assert recovered
        back = len(load.answers)
        wait_until(lambda: load.statuses(back).count(201) >= 5, timeout=15)
        assert server.worker_pids() == workers, "the service recovered by restarting workers"

    during = load.answers[outage_starts:back]
    assert all(status in (201, 503) for _, status, _, _ in during), during
    # A request that met the outage answered quickly, not after a hang.
    assert all(seconds < CONNECT_TIMEOUT + 5 for _, status, seconds, _ in during if status == 503)
    assert all(retry_after for _, status, _, retry_after in load.answers if status == 503)
    assert 500 not in load.statuses() and None not in load.statuses()
    stored = stored_emails(cluster, database["name"])
    assert {email for email, status, _, _ in load.answers if status == 201} <= stored
    assert not {email for email, status, _, _ in load.answers if status == 503} & stored


def test_a_killed_worker_is_replaced_and_no_acknowledged_write_is_lost(cluster, database, env, tmp_path):
    with running_gunicorn(env, tmp_path / "gunicorn.log", workers=2) as server, WriteLoad(server) as load:
        wait_until(lambda: load.statuses().count(201) >= 5, timeout=30)
        victim = server.worker_pids()[0]
        psutil.Process(victim).send_signal(signal.SIGKILL)
        killed_at = len(load.answers)

        def replaced():
            workers = server.worker_pids()
            return len(workers) == 2 and victim not in workers

        wait_until(replaced, timeout=20)
        wait_until(lambda: load.statuses(killed_at).count(201) >= 10, timeout=30)
        assert health(server)[0] == 200

    # Only the request the killed worker was serving may have lost its answer.
    assert load.statuses().count(None) <= 1
    assert 500 not in load.statuses()
    acknowledged = {email for email, status, _, _ in load.answers if status == 201}
    assert acknowledged <= stored_emails(cluster, database["name"])


def test_sigterm_finishes_in_flight_requests_then_disposes_the_pools(cluster, database, env, tmp_path):
    # A costly hash keeps the registrations in flight long enough to stop the server under them.
    slow_hashing = {**env, "ARGON2_TIME_COST": "8", "ARGON2_MEMORY_COST": str(64 * 1024)}
    server = Gunicorn(slow_hashing, tmp_path / "gunicorn.log", workers=2, threads=4).start()
    try:
        server.wait_ready()
        emails = [f"inflight-{uuid.uuid4().hex}@example.com" for _ in range(8)]

        def register(email):
            return requests.post(
                server.url("/api/v1/auth/register"), json={"email": email, "password": PASSWORD}, timeout=30
            ).status_code

        with ThreadPoolExecutor(len(emails)) as pool:
            futures = [pool.submit(register, email) for email in emails]
            # Eight costly argon2id hashes on two cores: the requests are accepted and still running.
            time.sleep(0.3)
            assert sum(not future.done() for future in futures) >= 2
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            with pytest.raises(requests.ConnectionError):
                requests.get(server.url("/health"), timeout=5)
            statuses = [future.result(timeout=40) for future in futures]
        assert statuses == [201] * len(emails)
        assert server.process.wait(timeout=40) == 0
    finally:
        server.stop()

    assert set(emails) <= stored_emails(cluster, database["name"])
    leftover = cluster.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'todo-api'", database="postgres"
    )
    assert leftover[0][0] == 0
