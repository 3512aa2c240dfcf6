"""What counting costs a request: the same requests through two apps, metrics off and on.

    .venv/bin/python bench/metrics_overhead.py [--requests 2000] [--rounds 7]

In one process, as a gunicorn worker counts (prometheus-client's multiprocess mode, files in a
temporary PROMETHEUS_MULTIPROC_DIR), on a throwaway embedded PostgreSQL: each round times
`--requests` requests of `GET /health` and of an authenticated `GET /api/v1/auth/me` through
`app.test_client()` on the app with METRICS_ENABLED=false and on the one with it true, taking
turns every 100 requests so that the machine's other load falls on both alike. It prints the
median over the rounds of each one's per-request time, the difference, and the time of the
counting hooks alone (less noisy on a busy machine than a difference of two large numbers).
LOG_LEVEL=WARNING, so that no access line is in the request's time: the smaller the request,
the larger the share.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# prometheus-client chooses its storage when first imported, as under gunicorn.conf.py.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-overhead-")
sys.path.insert(0, str(ROOT))

import flask_migrate  # noqa: E402
import pgserver  # noqa: E402

from app import create_app  # noqa: E402
from config import Config  # noqa: E402

PASSWORD = "correct horse battery"
SLICE = 100


def make_app(metrics: bool):
    os.environ["METRICS_ENABLED"] = "true" if metrics else "false"
    return create_app(Config)


def token(client) -> str:
    response = client.post("/api/v1/auth/login", json={"email": "bench@example.com", "password": PASSWORD})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["access_token"]


def per_request_us(client, path: str, headers: dict, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        response = client.get(path, headers=headers)
        assert response.status_code == 200
    return (time.perf_counter() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    server = pgserver.get_server(Path(tempfile.mkdtemp(prefix="metrics-overhead-pg-")), cleanup_mode="delete")
    os.environ.update(
        DATABASE_URL=server.get_uri(),
        APP_ENV="development",
        LOG_LEVEL="WARNING",
        RATELIMIT_AUTH="1000 per minute",
    )
    apps = {"off": make_app(False), "on": make_app(True)}
    with apps["off"].app_context():
        flask_migrate.upgrade()
    clients = {name: app.test_client() for name, app in apps.items()}
    account = {"email": "bench@example.com", "password": PASSWORD}
    assert clients["off"].post("/api/v1/auth/register", json=account).status_code == 201
    # Each app signs with its own development key: a token per app.
    headers = {name: {"Authorization": f"Bearer {token(client)}"} for name, client in clients.items()}
    routes = {"GET /health": "/health", "GET /api/v1/auth/me": "/api/v1/auth/me"}
    times = {(route, name): [] for route in routes for name in apps}
    for name, client in clients.items():  # warm-up
        for path in routes.values():
            per_request_us(client, path, headers[name], 200)
    for _ in range(args.rounds):
        for route, path in routes.items():
            spent = {"off": 0.0, "on": 0.0}
            # Slices of 100, taking turns: a change in the machine's load falls on both alike.
            for slice_ in range(args.requests // SLICE):
                for name in ("off", "on") if slice_ % 2 == 0 else ("on", "off"):
                    spent[name] += per_request_us(clients[name], path, headers[name], SLICE) * SLICE
            for name in apps:
                times[route, name].append(spent[name] / (args.requests // SLICE * SLICE))
    print(f"{args.requests} requests x {args.rounds} rounds, median per request:")
    for route in routes:
        off, on = (statistics.median(times[route, name]) for name in ("off", "on"))
        shares = sorted(b / a - 1 for a, b in zip(times[route, "off"], times[route, "on"], strict=True))
        print(
            f"  {route:<22} off {off:7.1f} us   on {on:7.1f} us   {on - off:+6.1f} us ({on / off - 1:+.1%}; "
            f"rounds {shares[0]:+.1%} to {shares[-1]:+.1%})"
        )
    hooks = statistics.median(hooks_us(apps["on"], "/api/v1/auth/me") for _ in range(args.rounds))
    print(f"  the counting alone (request hooks + one pool checkout and checkin): {hooks:.1f} us per request")
    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def hooks_us(app, path: str, count: int = 20000) -> float:
    """Per-request time of what metrics add to a request, run alone: less noisy than the difference."""
    metrics = app.extensions["metrics"]
    response = app.response_class("{}", status=200)
    with app.test_request_context(path):
        started = time.perf_counter()
        for _ in range(count):
            metrics.start_request()
            metrics.checkout(None, None, None)
            metrics.checkin(None, None)
            metrics.count_request(response)
        return (time.perf_counter() - started) / count * 1e6


if __name__ == "__main__":
    main()
