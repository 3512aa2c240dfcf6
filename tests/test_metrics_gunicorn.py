"""GET /metrics on a real 2-worker gunicorn: every worker answers the instance's totals.

A worker is paused with SIGSTOP so that the other one alone serves the requests, or answers
the scrape: the counts cannot depend on which worker answers.
"""

import contextlib
import os
import signal
import time

import pytest
import requests
from procs import app_env, migrated_database, running_gunicorn
from prometheus_client.parser import text_string_to_metric_families

from pg_cluster import running_cluster

pytestmark = pytest.mark.slow

TASK_ROUTE = "/api/v1/tasks/<id:task_id>"


@pytest.fixture(scope="module")
def cluster():
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def metrics_database(cluster):
    return migrated_database(cluster, "todo_metrics")


def scrape(server) -> dict:
    """{(sample name, frozenset of labels): value}, over a new connection (any worker may answer)."""
    response = requests.get(server.url("/metrics"), timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def counted(samples: dict, route: str, status: int, method: str = "GET") -> float:
    key = ("http_requests_total", frozenset({("route", route), ("method", method), ("status", str(status))}))
    return samples.get(key, 0.0)


def traffic(samples: dict) -> dict:
    """The request and pool counters of a scrape (not the gauges, which live with processes)."""
    names = ("http_requests_total", "http_request_duration_seconds_count", "db_pool_checkouts_total")
    return {key: v for key, v in samples.items() if key[0] in names}


def worker_pids_reporting(samples: dict) -> set[str]:
    return {dict(labels)["pid"] for name, labels in samples if name == "process_resident_memory_bytes"}


@contextlib.contextmanager
def paused(pid: int):
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def get(server, path: str, times: int, status: int) -> None:
    for _ in range(times):
        assert requests.get(server.url(path), timeout=10).status_code == status


def wait_until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not true within {timeout} s"
        time.sleep(0.1)


def test_every_worker_answers_the_same_totals_and_an_exited_worker_keeps_counts(metrics_database, tmp_path):
    metrics_dir = tmp_path / "metrics"
    env = app_env(metrics_database, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    with running_gunicorn(env, tmp_path / "first.log", workers=2) as server:
        first, second = server.worker_pids()
        before = scrape(server)
        with paused(second):
            get(server, "/health", 7, 200)
            get(server, "/api/v1/tasks/12345", 3, 401)
        with paused(first):
            get(server, "/health", 5, 200)
            get(server, "/api/v1/tasks/67890", 2, 401)
        with paused(second):
            by_first = scrape(server)
        with paused(first):
            by_second = scrape(server)
        assert counted(by_first, "/health", 200) - counted(before, "/health", 200) == 12
        assert counted(by_first, TASK_ROUTE, 401) - counted(before, TASK_ROUTE, 401) == 5
        assert not [key for key in by_first if any(v in ("12345", "67890") for _, v in key[1])]
        assert traffic(by_first) == traffic(by_second)
        assert all(traffic(scrape(server)) == traffic(by_first) for _ in range(6))
        pool = (
            by_first[("db_pool_checkouts_total", frozenset())]
            - before[("db_pool_checkouts_total", frozenset())]
        )
        assert pool >= 12
        assert worker_pids_reporting(by_second) == {str(first), str(second)}

        # TTOU: the master stops a worker; its requests stay counted, its live gauges go.
        os.kill(server.process.pid, signal.SIGTTOU)
        wait_until(lambda: len(server.worker_pids()) == 1, timeout=20)
        (survivor,) = server.worker_pids()
        after_exit = scrape(server)
        assert traffic(after_exit) == traffic(by_first)
        assert worker_pids_reporting(after_exit) == {str(survivor)}

    # The next run on the same directory starts from zero: the old files were removed at start.
    with running_gunicorn(env, tmp_path / "second.log", workers=2) as server:
        restarted = scrape(server)
        assert counted(restarted, TASK_ROUTE, 401) == 0
        assert counted(restarted, "/health", 200) < 12


def test_a_database_outage_is_counted_as_503s_and_failed_connections(cluster, metrics_database, tmp_path):
    env = app_env(metrics_database, DB_CONNECT_TIMEOUT="2", DB_POOL_TIMEOUT="5")
    with running_gunicorn(env, tmp_path / "gunicorn.log", workers=2) as server:
        before = scrape(server)
        cluster.stop()
        try:
            get(server, "/health", 4, 503)
            for _ in range(3):
                login = requests.post(
                    server.url("/api/v1/auth/login"),
                    json={"email": "a@example.com", "password": "x" * 10},
                    timeout=10,
                )
                assert login.status_code == 503
            during = scrape(server)
        finally:
            cluster.start()
        assert counted(during, "/health", 503) - counted(before, "/health", 503) == 4
        assert counted(during, "/api/v1/auth/login", 503, method="POST") == 3
        failures = sum(v for (name, _), v in during.items() if name == "db_pool_connection_failures_total")
        assert failures >= 7
        wait_until(lambda: requests.get(server.url("/health"), timeout=10).status_code == 200, timeout=15)
        assert counted(scrape(server), "/health", 200) > counted(during, "/health", 200)
