"""The API suite through PgBouncer in transaction pooling mode, as behind Neon's `-pooler` host.

Each transaction may run on a different server connection, so any session state
(SET, session advisory locks, server-side prepared statements, temp tables) that
the app relied on across transactions would break these tests.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from procs import PGBOUNCER, ROOT, PgBouncer, app_env, migrated_database, running_gunicorn

from pg_cluster import running_cluster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(PGBOUNCER).exists() and not os.environ.get("CI"),
        reason="pgbouncer is not installed (apt-get install pgbouncer); CI always runs this",
    ),
]

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def bouncer():
    with running_cluster() as cluster:
        bouncer = PgBouncer(cluster).start()
        try:
            yield bouncer
        finally:
            bouncer.stop()


def api_test_files() -> list[str]:
    """Every test file that drives the API in-process (the ops tests start processes of their own)."""
    return sorted(
        str(path.relative_to(ROOT))
        for path in TESTS.glob("test_*.py")
        if not path.name.startswith("test_ops_")
    )


def test_the_api_suite_passes_through_pgbouncer_in_transaction_mode(bouncer):
    env = {**os.environ, "TEST_DATABASE_URL": bouncer.url("postgres")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *api_test_files()],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # the suite grows with every feature; under load it passed 300 s
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout


def test_gunicorn_serves_through_pgbouncer(bouncer, tmp_path):
    url = migrated_database(bouncer.cluster, "todo_pooled")
    pooled = url.replace(f":{bouncer.cluster.port}/", f":{bouncer.port}/")
    with running_gunicorn(app_env(pooled), tmp_path / "gunicorn.log", workers=2) as server:
        http = requests.Session()
        body = {"email": "pooled@example.com", "password": "correct horse battery"}
        assert http.post(server.url("/api/v1/auth/register"), json=body, timeout=30).status_code == 201
        tokens = http.post(server.url("/api/v1/auth/login"), json=body, timeout=30).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        for _ in range(10):
            assert http.get(server.url("/api/v1/auth/me"), headers=headers, timeout=10).status_code == 200
        assert http.post(server.url("/api/v1/auth/logout"), headers=headers, timeout=10).status_code == 204
        assert http.get(server.url("/api/v1/auth/me"), headers=headers, timeout=10).status_code == 401
