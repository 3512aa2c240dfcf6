"""gunicorn settings, read from the environment: `gunicorn wsgi:app`."""

import atexit
import glob
import os
import shutil
import sys
import tempfile

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# gunicorn's sync/gthread workers, answering the errors gunicorn itself answers (request line
# over limit_request_line: 414; a header over limit_request_field_size or more than
# limit_request_fields: 431; an unparsable request: 400) as problem+json like every other
# error, instead of text/html. The limits stay gunicorn's defaults (4094-byte request line,
# 100 fields of 8190 bytes): no route here needs a longer URL (cursors and ids are short) and
# a bearer token is well under 1 KiB; raising them would only let more bytes in before the
# answer is the same problem. A proxy in front usually has tighter limits anyway.
worker_class = f"app.gunicorn_workers.{'ProblemThreadWorker' if threads > 1 else 'ProblemSyncWorker'}"
# Longer than DB_POOL_TIMEOUT so a request waiting for a connection answers 503 itself.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# SIGTERM: stop accepting, let in-flight requests finish for up to this long.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
accesslog = None  # the app logs one line per request, with its request id
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# gunicorn 27's runtime control socket is one fixed path per user: several instances on one
# machine would fight over it, and nothing here uses it.
control_socket_disable = True


def on_starting(server):
    """Refuse to start, in the master, unless the configuration and database are good.

    Checking here rather than in each worker means a bad database stops gunicorn
    once with one line, instead of workers failing to boot in a loop.
    """
    prepare_metrics_dir()  # first: prometheus-client picks its storage when first imported
    from app import create_app
    from app.database import DatabaseNotReady, verify_database
    from config import ConfigError

    try:
        verify_database(create_app().config)
    except (ConfigError, DatabaseNotReady) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


def worker_exit(server, worker):
    """Close the worker's pooled database connections once its last request is done."""
    from app.extensions import db

    flask_app = getattr(worker, "wsgi", None)
    if flask_app is not None:
        with flask_app.app_context():
            db.engine.dispose()


def prepare_metrics_dir():
    """Give this instance an empty PROMETHEUS_MULTIPROC_DIR, inherited by every worker.

    app/metrics.py: the workers count into files there, so that any worker answers the totals.
    The operator's own directory is emptied of the last run's files; without one, a private
    temporary directory is made, and removed when the master exits (even on a failed start)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="todo-api-metrics-")
        atexit.register(_remove_in_master, path, os.getpid())
        return
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.remove(stale)


def _remove_in_master(path, master_pid):
    # Workers inherit the atexit handler, and they leave with sys.exit too.
    if os.getpid() == master_pid:
        shutil.rmtree(path, ignore_errors=True)


def child_exit(server, worker):
    """A worker is gone: drop its live gauges; its counters stay in the instance's totals."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
