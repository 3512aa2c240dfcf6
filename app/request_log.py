"""Per-request plumbing: the request id, one log line per request, security headers."""

import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
AUTH_PREFIX = "/api/v1/auth/"
# JSON answers load nothing and may not be framed. /docs (HTML that runs scripts) sets its own.
JSON_CSP = "default-src 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)

# Paths that carry a credential (the calendar feed's secret URL): logged by their route
# template, never as requested.
SECRET_PATH_PREFIXES = ("/calendar/",)

access_log = logging.getLogger("app.access")


def loggable_path() -> str:
    """The request's path as logs may show it: a path under SECRET_PATH_PREFIXES becomes its
    route template (`/calendar/<secret>.ics`), or the prefix alone when no route matched."""
    path = request.path
    prefix = next((prefix for prefix in SECRET_PATH_PREFIXES if path.startswith(prefix)), None)
    if prefix is None:
        return path
    return request.url_rule.rule if request.url_rule is not None else f"{prefix}<unmatched>"


class RequestIdFilter(logging.Filter):
    """Stamp every record with the current request id (or "-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str, fmt: str) -> None:
    """Send the app's logs to stderr, plain or JSON, each line with its request id."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
        )
    root = logging.getLogger("app")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _start_request():
    g.started = time.perf_counter()
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _VALID_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def _finish_request(response):
    response.headers[REQUEST_ID_HEADER] = g.get("request_id") or uuid.uuid4().hex
    if response.status_code == 204:
        # No content, so no content type (flask-smorest labels every answer JSON).
        response.headers.pop("Content-Type", None)
    _add_security_headers(response)
    if not access_log.isEnabledFor(logging.INFO):
        return response  # LOG_LEVEL above INFO: no line, so nothing to measure or format
    duration_ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
    path = loggable_path()
    access_log.info(
        "%s %s %s %.1fms",
        request.method,
        path,
        response.status_code,
        duration_ms,
        extra={
            "fields": {
                "method": request.method,
                "path": path,
                "status": response.status_code,
                "duration_ms": round(duration_ms, 1),
            }
        },
    )
    return response


def _add_security_headers(response) -> None:
    headers = response.headers
    # What the view set stays; the rest is appended (one pass, not a search per header).
    present = {name.lower() for name, _ in headers.items()}
    for name, value in SECURITY_HEADERS:
        if name.lower() not in present:
            headers.add(name, value)
    if response.is_json and "content-security-policy" not in present:  # JSON and problem+json
        headers.add("Content-Security-Policy", JSON_CSP)
    if request.path.startswith(AUTH_PREFIX):
        # Tokens and account data must not stay in a browser's or a proxy's cache.
        headers["Cache-Control"] = "no-store"


def init_request_log(app: Flask) -> None:
    app.before_request(_start_request)
    app.after_request(_finish_request)
