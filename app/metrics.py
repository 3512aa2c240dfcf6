"""Blueprint "metrics": `GET /metrics` in Prometheus's text format, for the scraper only.

What is counted (the four golden signals, per route template):

- traffic and errors: `http_requests_total{route, method, status}`;
- latency: `http_request_duration_seconds{route, method}`, a histogram from the first
  before-request hook to the after-request hooks, in seconds;
- saturation: `db_pool_checkouts_total`, `db_pool_checkout_wait_seconds` (from the session
  asking for a connection to having one: waiting for a free one, opening one, the pre-ping),
  `db_pool_connections_in_use`, and `db_pool_connection_failures_total{kind}` (`connect`: a
  new connection failed; `lost`: one in use or being pre-pinged was found dead);
- the process: `process_resident_memory_bytes`, `process_cpu_seconds_total`, ...

`route` is the URL rule (`/api/v1/tasks/<id:task_id>`), never the raw path, and `unmatched`
when no route matched; a method outside HTTP's usual ones is `other`: a client cannot grow
the number of series. Scrapes of /metrics are not counted, so two scrapes with no traffic in
between agree.

Under gunicorn the workers count into files in `PROMETHEUS_MULTIPROC_DIR` (prometheus-client's
multiprocess mode, set up by gunicorn.conf.py) and any worker answers the totals of all of
them; the process metrics then carry a `pid` label, one series per live worker, refreshed at
most every PROCESS_REFRESH_SECONDS while it serves and whenever it answers a scrape. Without
that directory (`flask run`, the tests) each app counts in a registry of its own.
"""

import glob
import os
import threading
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from flask_sqlalchemy import SQLAlchemy
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import event

blp = Blueprint("metrics", __name__)

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds. The service answers in about 1-100 ms; the tail buckets catch pool waits and hangs.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CHECKOUT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)
PROCESS_REFRESH_SECONDS = 10
PROCESS_SAMPLES = (
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
)

# When this thread's session began asking for a connection (seconds, perf_counter).
_asking = threading.local()


class WorkerFiles:
    """prometheus-client's MultiProcessCollector, minus the files workers are still creating.

    A booting worker creates its files empty and sizes them a moment later; the library's
    own collector fails on such a file (struct.error), so a scrape during a worker's start
    would be a 500. An empty file holds no values yet: skipping it loses nothing."""

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self):
        files = []
        for path in glob.glob(os.path.join(self.path, "*.db")):
            try:
                if os.path.getsize(path) > 0:
                    files.append(path)
            except FileNotFoundError:  # a dead worker's live gauges, removed by child_exit
                pass
        return MultiProcessCollector.merge(files, accumulate=True)


class Metrics:
    """One app's metric objects, and the registry a scrape reads."""

    def __init__(self, multiprocess_dir: str | None) -> None:
        self.multiprocess = bool(multiprocess_dir)
        self.registry = CollectorRegistry()
        if self.multiprocess:
            # The workers' files are the source; metrics registered here too would count twice.
            self.registry.register(WorkerFiles(multiprocess_dir))
            own = None
        else:
            ProcessCollector(registry=self.registry)
            own = self.registry
        self.requests = Counter(
            "http_requests",
            "Requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=own,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to answer a request, by route template and method.",
            ["route", "method"],
            buckets=REQUEST_BUCKETS,
            registry=own,
        )
        self.checkouts = Counter("db_pool_checkouts", "Connections handed out by the pool.", registry=own)
        self.checkout_wait = Histogram(
            "db_pool_checkout_wait_seconds",
            "Time from a session asking for a connection to having one (wait, connect, pre-ping).",
            buckets=CHECKOUT_BUCKETS,
            registry=own,
        )
        self.in_use = Gauge(
            "db_pool_connections_in_use",
            "Connections checked out of the pool now.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.failures = Counter(
            "db_pool_connection_failures",
            "Database connections that failed: could not be opened (connect) or died in use (lost).",
            ["kind"],
            registry=own,
        )
        self._series: dict[tuple, tuple] = {}  # bounded: route templates x methods x statuses
        self._process_gauges: dict[str, Gauge] = {}
        self._process_refreshed = 0.0

    def start_request(self) -> None:
        """Before a request, ahead of every hook that may answer it: start its clock."""
        g.metrics_started = time.perf_counter()
        _asking.since = None

    def count_request(self, response):
        """After a request: count it under its route template, method and status, and time it."""
        rule = request.url_rule
        if rule is not None and rule.endpoint == "metrics.scrape":
            return response
        route = rule.rule if rule is not None else UNMATCHED
        method = request.method if request.method in METHODS else "other"
        key = (route, method, response.status_code)
        if (series := self._series.get(key)) is None:
            # labels() validates on every call; the labelled children are kept instead.
            series = self._series[key] = (
                self.requests.labels(route, method, str(response.status_code)),
                self.latency.labels(route, method),
            )
        series[0].inc()
        if (started := g.get("metrics_started")) is not None:
            series[1].observe(time.perf_counter() - started)
        if self.multiprocess and time.monotonic() - self._process_refreshed > PROCESS_REFRESH_SECONDS:
            self.refresh_process_gauges()
        return response

    def checkout(self, _dbapi_connection, _record, _proxy) -> None:
        """Pool event: a connection was handed out; how long the session waited for it."""
        self.checkouts.inc()
        self.in_use.inc()
        if (since := getattr(_asking, "since", None)) is not None:
            self.checkout_wait.observe(time.perf_counter() - since)
            _asking.since = None

    def asking_for_connection(self) -> None:
        """This thread is about to check a connection out of the pool outside the ORM session."""
        _asking.since = time.perf_counter()

    def count_failure(self, kind: str) -> None:
        """Outside SQLAlchemy's execution: a connection could not be opened ("connect") or was
        found lost ("lost")."""
        self.failures.labels(kind).inc()

    def checkin(self, _dbapi_connection, _record) -> None:
        """Pool event: a connection went back."""
        self.in_use.dec()

    def database_error(self, context) -> None:
        """Engine event `handle_error`: count a connection that could not be opened or was lost."""
        if context.connection is None and not context.is_pre_ping:
            self.failures.labels("connect").inc()
            _asking.since = None
        elif context.is_disconnect:
            self.failures.labels("lost").inc()

    def refresh_process_gauges(self) -> None:
        """Copy this worker's process metrics into its `pid`-labelled gauges (multiprocess mode)."""
        if not self._process_gauges:
            # Made on first use, in the worker: made in gunicorn's master they would leave a
            # series for the master's pid, which serves nothing.
            self._process_gauges = {
                name: Gauge(name, f"{name} of each live worker", registry=None, multiprocess_mode="liveall")
                for name in PROCESS_SAMPLES
            }
        for family in ProcessCollector(registry=None).collect():
            for sample in family.samples:
                if gauge := self._process_gauges.get(sample.name):
                    gauge.set(sample.value)
        self._process_refreshed = time.monotonic()

    def render(self) -> bytes:
        """The text exposition of everything this instance counted."""
        if self.multiprocess:
            self.refresh_process_gauges()
        return generate_latest(self.registry)


def _session_asks_for_connection(_session, transaction) -> None:
    # A root transaction is created just before the session checks a connection out.
    if transaction.parent is None:
        _asking.since = time.perf_counter()


def init_metrics(app: Flask, db: SQLAlchemy) -> None:
    """Count the app's requests and pool, and serve /metrics, unless METRICS_ENABLED is off."""
    if not app.config["METRICS_ENABLED"]:
        return
    metrics = Metrics(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    app.extensions["metrics"] = metrics
    app.before_request(metrics.start_request)
    app.after_request(metrics.count_request)
    with app.app_context():
        engine = db.engine  # created by init_app; nothing connects here
    event.listen(engine, "checkout", metrics.checkout)
    event.listen(engine, "checkin", metrics.checkin)
    event.listen(engine, "handle_error", metrics.database_error)
    # One listener for every app's session: it only notes the time, in this thread.
    if not event.contains(db.session, "after_transaction_create", _session_asks_for_connection):
        event.listen(db.session, "after_transaction_create", _session_asks_for_connection)
    app.register_blueprint(blp)  # not through the Api: kept out of /openapi.json


@blp.get("/metrics")
def scrape():
    """Prometheus text exposition of this instance's counters, across all its workers."""
    return Response(current_app.extensions["metrics"].render(), content_type=CONTENT_TYPE_LATEST)
