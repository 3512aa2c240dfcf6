"""RFC 9457 problem details: one builder, and the handlers that route every error through it."""

import json
import logging

from flask import Flask, current_app, request
from marshmallow import Schema, fields
from psycopg2 import errorcodes
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from app.request_log import loggable_path

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"
RETRY_AFTER_SECONDS = "2"
# SQLSTATEs that mean "the server is not there right now", not "your statement was wrong".
_UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300"}


class ProblemSchema(Schema):
    """An RFC 9457 problem details document."""

    # Every problem has these four (the schema is only ever an answer, never loaded).
    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True, metadata={"example": "Unprocessable Entity"})
    status = fields.Integer(required=True, metadata={"example": 422})
    detail = fields.String(required=True, metadata={"example": "The request body is invalid."})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Validation messages by field (dotted paths for nested fields)."},
    )


def problem_body(status: int, detail: str | None = None, errors=None) -> dict:
    """The RFC 9457 document of an error: {type, title, status, detail[, errors]}.

    The one place the keys are decided: `problem` answers it from the app, and the gunicorn
    workers (app/gunicorn_workers.py) for the errors the HTTP server answers before the app.
    """
    title = HTTP_STATUS_CODES.get(status, "Error")
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail or title}
    if errors:
        body["errors"] = errors
    return body


def problem(status: int, detail: str | None = None, *, errors=None, headers=None):
    """Build the `application/problem+json` response every error answers with."""
    body = problem_body(status, detail, errors)
    response = current_app.response_class(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    response.headers.update(headers or {})
    return response


def flatten_messages(messages, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into {"dotted.path": [messages]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_messages(value, path))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = list(messages)
    elif isinstance(messages, list):
        for item in messages:
            for key, value in flatten_messages(item, prefix).items():
                flat.setdefault(key, []).extend(value)
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


def validation_errors(data: dict) -> dict[str, list[str]]:
    # webargs nests messages under the location ("json", "query"); clients want the field.
    messages = data.get("errors") or data.get("messages") or {}
    if isinstance(messages, dict) and set(messages) <= {"json", "query", "headers", "view_args"}:
        merged: dict[str, list[str]] = {}
        for location_messages in messages.values():
            merged.update(flatten_messages(location_messages))
        return merged
    return flatten_messages(messages)


def default_detail(status: int, errors, error: HTTPException) -> str:
    if errors:
        fields_ = ", ".join(sorted(errors))
        return f"Invalid value for: {fields_}."
    if status == 400 and "json" in (getattr(error, "description", "") or "").lower():
        return "The request body is not valid JSON."
    return error.description or HTTP_STATUS_CODES.get(status, "Error")


def is_connection_error(exc: DBAPIError) -> bool:
    """True when the database could not be reached, as opposed to rejecting a statement."""
    if exc.connection_invalidated:
        return True
    code = getattr(exc.orig, "pgcode", None)
    if code is None:
        return exc.__class__.__name__ == "OperationalError"
    return code.startswith("08") or code in _UNAVAILABLE_SQLSTATES


def _handle_database_error(exc: DBAPIError):
    if is_connection_error(exc):
        log.warning("database unavailable: %s", exc.orig.__class__.__name__)
        return problem(
            503,
            "The database is unavailable right now; retry shortly.",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    if isinstance(exc, IntegrityError):
        return _handle_integrity_error(exc)
    return _handle_unexpected(exc)


def _handle_integrity_error(exc: IntegrityError):
    code = getattr(exc.orig, "pgcode", None)
    if code == errorcodes.UNIQUE_VIOLATION:
        return problem(409, "The resource conflicts with an existing one.")
    if code == errorcodes.CHECK_VIOLATION:
        return problem(422, "A value is outside its allowed range.")
    return _handle_unexpected(exc)


def _handle_pool_timeout(exc: PoolTimeoutError):
    log.warning("database pool exhausted")
    return problem(503, "The service is busy; retry shortly.", headers={"Retry-After": RETRY_AFTER_SECONDS})


def _handle_unexpected(exc: Exception):
    # The traceback goes to the log, tagged with the request id; the client sees none of it.
    log.error("unhandled error on %s %s", request.method, loggable_path(), exc_info=exc)
    return problem(500, "The server could not complete the request.")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DBAPIError, _handle_database_error)
    app.register_error_handler(PoolTimeoutError, _handle_pool_timeout)
    app.register_error_handler(InternalServerError, _handle_internal_server_error)


def _handle_internal_server_error(error: InternalServerError):
    original = getattr(error, "original_exception", None)
    if isinstance(original, DBAPIError):
        return _handle_database_error(original)
    if isinstance(original, PoolTimeoutError):
        return _handle_pool_timeout(original)
    return problem(500, "The server could not complete the request.")
